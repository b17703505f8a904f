"""S3ObjectStore against moto's S3: listing, ranged reads, gzip, and the errors S3 answers."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vector_tasks.adapters.object_store import S3ObjectStore
from vector_tasks.domain.sources import SourceObject, SourceUnreadable

BUCKET = "objects"


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def listed(s3: Any, key: str) -> SourceObject:
    (obj,) = S3ObjectStore(s3).list_objects(BUCKET, key, 10)
    return obj


def test_a_key_names_one_object_and_a_prefix_every_object_under_it(s3: Any) -> None:
    for key in ("p/a.jsonl", "p/b.jsonl", "p/sub/", "p/sub/c.jsonl", "pq.jsonl"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"" if key.endswith("/") else b"x\n")
    store = S3ObjectStore(s3)
    assert [o.key for o in store.list_objects(BUCKET, "p/a.jsonl", 10)] == ["p/a.jsonl"]
    assert [o.key for o in store.list_objects(BUCKET, "p/", 10)] == ["p/a.jsonl", "p/b.jsonl", "p/sub/c.jsonl"]
    assert len(store.list_objects(BUCKET, "p/", 1)) == 2  # one more than the limit: the caller refuses
    assert store.list_objects(BUCKET, "nothing/", 10) == []
    assert all(o.etag.startswith('"') and o.size == 2 for o in store.list_objects(BUCKET, "p/", 10))


def read_all(reader: Any, length: int) -> list[tuple[bytes, bool]]:
    pieces = []
    while True:
        got = reader.read(length)
        pieces.append((got.data, got.at_end))
        if got.at_end:
            reader.close()
            return pieces


def test_plain_objects_are_read_on_from_an_offset(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.jsonl", Body=b"0123456789")
    obj = listed(s3, "a.jsonl")
    store = S3ObjectStore(s3)
    reader = store.open(BUCKET, obj, 0, None)
    assert reader.gzip is False
    assert read_all(reader, 4) == [(b"0123", False), (b"4567", False), (b"89", True)]
    assert read_all(store.open(BUCKET, obj, 6, False), 4) == [(b"6789", True)]  # exactly to the end
    assert read_all(store.open(BUCKET, obj, 10, False), 4) == [(b"", True)]


def test_an_empty_object_is_at_its_end_at_once(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="empty.jsonl", Body=b"")
    assert read_all(S3ObjectStore(s3).open(BUCKET, listed(s3, "empty.jsonl"), 0, None), 4) == [(b"", True)]


def test_gzip_is_told_by_content_and_read_past_the_offset_across_members(s3: Any) -> None:
    content = b"".join(f"line {n}\n".encode() for n in range(50_000))
    half = len(content) // 2
    s3.put_object(Bucket=BUCKET, Key="data.bin", Body=gzip.compress(content[:half]) + gzip.compress(content[half:]))
    obj = listed(s3, "data.bin")
    store = S3ObjectStore(s3)
    reader = store.open(BUCKET, obj, 0, None)
    assert reader.gzip is True
    assert b"".join(data for data, _ in read_all(reader, 100_000)) == content
    middle = store.open(BUCKET, obj, half - 10, True)  # straddles the two members
    assert middle.read(20).data == content[half - 10 : half + 10]
    middle.close()
    tail = read_all(store.open(BUCKET, obj, len(content) - 5, True), 1000)
    assert tail == [(content[-5:], True)]


def test_an_object_rewritten_since_it_was_listed_is_unreadable(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.jsonl", Body=b"first\n")
    obj = listed(s3, "a.jsonl")
    s3.put_object(Bucket=BUCKET, Key="a.jsonl", Body=b"second\n")
    with pytest.raises(SourceUnreadable, match="changed after its import started"):
        S3ObjectStore(s3).open(BUCKET, obj, 0, None)


def test_a_deleted_object_and_a_missing_bucket_are_unreadable(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.jsonl", Body=b"x\n")
    obj = listed(s3, "a.jsonl")
    s3.delete_object(Bucket=BUCKET, Key="a.jsonl")
    with pytest.raises(SourceUnreadable, match="does not exist"):
        S3ObjectStore(s3).open(BUCKET, obj, 0, None)
    with pytest.raises(SourceUnreadable, match="NoSuchBucket"):
        S3ObjectStore(s3).list_objects("no-such-bucket", "p/", 10)


NOT_GZIP = {
    "garbage": b"\x1f\x8b" + b"garbage" * 10,
    "truncated": gzip.compress(random.Random(1).randbytes(100_000))[:-200],
}


@pytest.mark.parametrize("body", list(NOT_GZIP.values()), ids=list(NOT_GZIP))
def test_an_object_that_is_not_valid_gzip_is_unreadable(s3: Any, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key="bad.gz", Body=body)
    obj = listed(s3, "bad.gz")
    with pytest.raises(SourceUnreadable, match="not valid gzip"):
        read_all(S3ObjectStore(s3).open(BUCKET, obj, 0, None), 1_000_000)
