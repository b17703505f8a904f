"""Reading an import's objects from S3: listing, ranged GETs, gzip decompressed as it streams."""

from __future__ import annotations

import zlib
from typing import Any

import boto3
from botocore.exceptions import ClientError

from vector_tasks.domain.sources import ObjectRead, SourceObject, SourceUnreadable

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

    def read(self, bucket: str, obj: SourceObject, offset: int, length: int, gzip: bool | None) -> ObjectRead:
        where = f"s3://{bucket}/{obj.key}"
        try:
            if gzip:
                return self._read_gzip(bucket, obj, offset, length, where)
            if obj.size == 0 or offset >= obj.size:
                return ObjectRead(b"", True, False)
            end = min(offset + length, obj.size) - 1
            response = self._client.get_object(
                Bucket=bucket, Key=obj.key, IfMatch=obj.etag, Range=f"bytes={offset}-{end}"
            )
            data = response["Body"].read()
        except ClientError as exc:
            raise _unreadable(exc, where) from exc
        if gzip is None and data.startswith(_GZIP_MAGIC):
            return self.read(bucket, obj, offset, length, True)
        return ObjectRead(data, offset + len(data) >= obj.size, False)

    def _read_gzip(self, bucket: str, obj: SourceObject, offset: int, length: int, where: str) -> ObjectRead:
        """Decompressed bytes [offset, offset + length): the object streamed from its start (a
        gzip stream cannot be entered in the middle), at most a piece of it in memory at once.
        Concatenated gzip members are read as one stream, as gzip -d does."""
        body = self._client.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)["Body"]
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        skipped, out = 0, bytearray()
        try:
            for piece in body.iter_chunks(_STREAM_PIECE):
                pending = piece
                while pending:
                    produced = decompressor.decompress(pending, _STREAM_PIECE)
                    pending = decompressor.unconsumed_tail
                    if decompressor.eof:  # the end of one member: the next may follow
                        pending = decompressor.unused_data + pending
                        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    if skipped < offset:
                        drop = min(offset - skipped, len(produced))
                        skipped, produced = skipped + drop, produced[drop:]
                    out += produced
                    if len(out) > length:
                        body.close()
                        return ObjectRead(bytes(out[:length]), False, True)
            out += decompressor.flush()
        except zlib.error as exc:
            raise SourceUnreadable(f"{where} is not valid gzip ({exc})") from exc
        return ObjectRead(bytes(out[:length]), len(out) <= length, True)
