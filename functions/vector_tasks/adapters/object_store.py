"""Reading an import's objects from S3: listing, and one streaming GET per object and step
(ranged for a plain object; gzip decompressed as it streams)."""

from __future__ import annotations

import zlib
from typing import Any

import boto3
from botocore.exceptions import ClientError

from vector_tasks.domain.sources import ObjectRead, ObjectReader, SourceObject, SourceUnreadable

_GZIP_MAGIC = b"\x1f\x8b"
# Bytes taken from the body stream, and produced by the decompressor, at a time.
_STREAM_PIECE = 1024 * 1024


def _unreadable(exc: ClientError, where: str) -> SourceUnreadable:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "error"))
    if code in ("PreconditionFailed", "412"):
        return SourceUnreadable(f"{where} changed after its import started (its ETag is not the one listed)")
    if code in ("NoSuchKey", "404", "NotFound"):
        return SourceUnreadable(f"{where} does not exist")
    message = error.get("Message") or code
    return SourceUnreadable(f"{where}: {code}: {message}")


class S3ObjectStore:
    def __init__(self, client: Any = None) -> None:
        self._client_instance = client

    @property
    def _client(self) -> Any:
        if self._client_instance is None:
            self._client_instance = boto3.client("s3")
        return self._client_instance

    def list_objects(self, bucket: str, key_or_prefix: str, limit: int) -> list[SourceObject]:
        """The object named `key_or_prefix` (HeadObject), else those under it (ListObjectsV2),
        without the zero-byte "folder" markers the console makes; at most `limit` + 1."""
        where = f"s3://{bucket}/{key_or_prefix}"
        if key_or_prefix and not key_or_prefix.endswith("/"):
            try:
                head = self._client.head_object(Bucket=bucket, Key=key_or_prefix)
                return [SourceObject(key_or_prefix, str(head["ETag"]), int(head["ContentLength"]))]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise _unreadable(exc, where) from exc
        found: list[SourceObject] = []
        arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": key_or_prefix}
        try:
            while len(found) <= limit:
                page = self._client.list_objects_v2(**arguments, MaxKeys=min(1000, limit + 1 - len(found)))
                for entry in page.get("Contents", []):
                    if entry["Key"].endswith("/") and int(entry["Size"]) == 0:
                        continue
                    found.append(SourceObject(entry["Key"], str(entry["ETag"]), int(entry["Size"])))
                if not page.get("IsTruncated"):
                    break
                arguments["ContinuationToken"] = page["NextContinuationToken"]
        except ClientError as exc:
            raise _unreadable(exc, where) from exc
        return found[: limit + 1]

    def open(self, bucket: str, obj: SourceObject, offset: int, gzip: bool | None) -> ObjectReader:
        """One GET, read as a stream: from `offset` (a ranged GET) for a plain object; from
        the start for a gzip one (a gzip stream cannot be entered in the middle), decompressed
        and dropped up to `offset`. `If-Match` on the listed ETag: a rewritten object is not
        read. Whether it is gzip is told by its first bytes when `gzip` is None."""
        where = f"s3://{bucket}/{obj.key}"
        if gzip is False and offset >= obj.size:
            return _PlainReader(None, b"", where)
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "IfMatch": obj.etag}
        if gzip is False:
            arguments["Range"] = f"bytes={offset}-"
        try:
            body = self._client.get_object(**arguments)["Body"] if obj.size else None
        except ClientError as exc:
            raise _unreadable(exc, where) from exc
        first = _next_piece(body, where) if body is not None and gzip is not True else b""
        if gzip is True or (gzip is None and first.startswith(_GZIP_MAGIC)):
            return _GzipReader(body, first, offset, where)
        return _PlainReader(body, first, where)


def _next_piece(body: Any, where: str) -> bytes:
    """The next piece of the body; a read that breaks off raises as it is (the step is
    delivered again), unlike an object that cannot be read at all (SourceUnreadable)."""
    piece: bytes = body.read(_STREAM_PIECE)
    return piece


class _PlainReader:
    gzip = False

    def __init__(self, body: Any, first: bytes, where: str) -> None:
        self._body, self._buffer, self._where = body, bytearray(first), where
        self._ended = body is None or not first

    def _fill(self, length: int) -> None:
        while len(self._buffer) < length and not self._ended:
            piece = _next_piece(self._body, self._where)
            self._buffer += piece
            self._ended = not piece

    def read(self, length: int) -> ObjectRead:
        self._fill(length + 1)  # one byte more: whether these are the last
        data = bytes(self._buffer[:length])
        del self._buffer[:length]
        return ObjectRead(data, at_end=self._ended and not self._buffer)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


class _GzipReader:
    """The decompressed content of a gzip stream from `offset`, at most a piece of compressed
    and a piece of decompressed bytes held at once. Concatenated members are read as one
    stream, as gzip -d does."""

    gzip = True

    def __init__(self, body: Any, first: bytes, offset: int, where: str) -> None:
        self._body, self._where = body, where
        self._pending = first  # compressed bytes not yet given to the decompressor
        self._decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._in_member = False  # part of a member was given to the decompressor
        self._buffer = bytearray()
        self._ended = body is None
        skipped = 0
        while skipped < offset and self._produce():
            drop = min(offset - skipped, len(self._buffer))
            del self._buffer[:drop]
            skipped += drop

    def _produce(self) -> bool:
        """More decompressed bytes into the buffer; False at the end of the stream."""
        try:
            while not self._ended:
                if not self._pending:
                    self._pending = _next_piece(self._body, self._where)
                    if not self._pending:
                        self._ended = True
                        if self._in_member:
                            raise SourceUnreadable(f"{self._where} is not valid gzip (it ends inside a member)")
                        return False
                out = self._decompressor.decompress(self._pending, _STREAM_PIECE)
                self._in_member = True
                self._pending = self._decompressor.unconsumed_tail
                if self._decompressor.eof:  # the end of one member: the next may follow
                    self._pending = self._decompressor.unused_data + self._pending
                    self._decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    self._in_member = False
                if out:
                    self._buffer += out
                    return True
        except zlib.error as exc:
            raise SourceUnreadable(f"{self._where} is not valid gzip ({exc})") from exc
        return False

    def read(self, length: int) -> ObjectRead:
        while len(self._buffer) <= length and self._produce():  # one byte more: whether these are the last
            pass
        data = bytes(self._buffer[:length])
        del self._buffer[:length]
        return ObjectRead(data, at_end=self._ended and not self._buffer)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
