"""The local stack's lighter transaction snapshots (devstack/moto_server.py, applied to this
process by tests/conftest.py) keep moto's rollback exact: a refused transaction leaves items,
their attributes and the table's stream as they were."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support.moto_tables import create_pk_sk_table


@pytest.fixture
def table(aws_credentials: None) -> Any:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_pk_sk_table(client, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        client.put_item(
            TableName="t",
            Item={"pk": {"S": "a"}, "sk": {"S": "TASK"}, "n": {"N": "1"}, "m": {"M": {"l": {"L": [{"N": "1"}]}}}},
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "CHUNK"}, "b": {"B": b"\x00" * 1000}})
        yield client


def stream_records(client: Any) -> int:
    streams = boto3.client("dynamodbstreams")
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return len(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def transact(client: Any, condition: str) -> None:
    client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "TASK"}},
                    "UpdateExpression": "SET n = n + :one, m.l[0] = :two",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}},
                }
            },
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "RESULT"}}}},
            {
                "ConditionCheck": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "CHUNK"}},
                    "ConditionExpression": condition,
                }
            },
        ]
    )


def items(client: Any) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName="t")["Items"], key=lambda item: item["sk"]["S"])


def test_a_refused_transaction_changes_nothing(table: Any) -> None:
    before, records = items(table), stream_records(table)
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        transact(table, "attribute_not_exists(b)")
    assert items(table) == before
    assert stream_records(table) == records


def test_an_accepted_transaction_changes_what_it_writes_and_adds_its_records(table: Any) -> None:
    records = stream_records(table)
    transact(table, "attribute_exists(b)")
    task = table.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "TASK"}})["Item"]
    assert (task["n"], task["m"]) == ({"N": "2"}, {"M": {"l": {"L": [{"N": "2"}]}}})
    assert [item["sk"]["S"] for item in items(table)] == ["CHUNK", "RESULT", "TASK"]
    assert stream_records(table) == records + 2
    with pytest.raises(ClientError, match="TransactionCanceledException"):  # rolled back to this state
        transact(table, "attribute_not_exists(b)")
    assert table.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "TASK"}})["Item"]["n"] == {"N": "2"}
