"""The local stack refuses a TransactWriteItems past DynamoDB's 4 MB (devstack/moto_server.py,
applied to this process by tests/conftest.py), which moto alone lets through, and the task
store's renewal of a task's chunks stays inside it."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support.moto_tables import create_pk_sk_table
from vector_tasks.adapters.task_keys import chunk_sk
from vector_tasks.adapters.task_store import RENEWALS_PER_TRANSACTION, DynamoTaskStore
from vector_tasks.domain.model import ORIGINAL_CHUNKS, Task, TaskKind, TaskStatus

BIG = 380_000  # bytes of an attribute: eleven such items are 4.18 MB, twelve 4.56 MB
T0 = datetime(2026, 12, 4, tzinfo=UTC)


@pytest.fixture
def client(aws_credentials: None) -> Any:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_pk_sk_table(client)
        yield client


def puts(count: int, prefix: str = "i") -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": f"{prefix}{n:02d}"}, "b": {"B": b"x" * BIG}}}}
        for n in range(count)
    ]


def test_a_transaction_of_puts_past_4_mb_is_refused_and_writes_nothing(client: Any) -> None:
    client.transact_write_items(TransactItems=puts(11))
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=puts(12, prefix="j"))
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("Transaction payload size cannot exceed 4MB. Payload Size: ")
    assert int(error["Message"].rsplit(" ", 1)[1]) > 12 * BIG
    for sk in ("j00", "j11"):
        assert client.get_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": sk}}).get("Item") is None


def test_updates_count_the_items_they_change(client: Any) -> None:
    """Stricter than DynamoDB Local, which lets these through: AWS counts the items' size."""
    client.transact_write_items(TransactItems=puts(11))
    client.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": "i11"}, "b": {"B": b"x" * BIG}})
    update = [
        {
            "Update": {
                "TableName": "t",
                "Key": {"pk": {"S": "p"}, "sk": {"S": f"i{n:02d}"}},
                "UpdateExpression": "SET e = :e",
                "ExpressionAttributeValues": {":e": {"N": "1"}},
            }
        }
        for n in range(12)
    ]
    with pytest.raises(ClientError, match="Transaction payload size cannot exceed 4MB"):
        client.transact_write_items(TransactItems=update)
    client.transact_write_items(TransactItems=update[:11])


def test_renewing_many_chunks_at_the_stored_bound_takes_transactions_that_fit(client: Any) -> None:
    count = 3 * RENEWALS_PER_TRANSACTION + 1
    resource = boto3.resource("dynamodb")
    store = DynamoTaskStore("t", resource=resource)
    task = Task(
        kind=TaskKind.UPSERTION,
        task_id="big",
        embedding_model_id="m",
        status=TaskStatus.DONE,
        created_at=T0,
        updated_at=T0,
        attempt=1,
        item_count=count,
        chunk_count=count,
        fingerprint="fp",
    )
    # Chunks near the stored bound: base64 of random bytes compresses little.
    noise = base64.b64encode(os.urandom(140_000)).decode()
    chunks = [[{"object_id": f"o{n}-{k}", "payload": {"n": noise}} for k in range(2)] for n in range(count)]
    store.put_chunks(TaskKind.UPSERTION, "big", chunks)
    sent: list[int] = []
    resource.meta.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: sent.append(len(params["TransactItems"])),
    )
    store.renew_chunks(task, ORIGINAL_CHUNKS, count, T0)
    assert sent == [RENEWALS_PER_TRANSACTION] * 3 + [1]
    # Together they are far past what one transaction may hold.
    every = [
        {
            "Update": {
                "TableName": "t",
                "Key": {"pk": {"S": "upsertion#big"}, "sk": {"S": chunk_sk(ORIGINAL_CHUNKS, n)}},
                "UpdateExpression": "SET e = :e",
                "ExpressionAttributeValues": {":e": {"N": "1"}},
            }
        }
        for n in range(count)
    ]
    with pytest.raises(ClientError, match="Transaction payload size cannot exceed 4MB"):
        client.transact_write_items(TransactItems=every)
