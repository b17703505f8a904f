"""A table of the task store's key shape (`pk`, `sk`), for the unit tests of the local stack's
moto changes."""

from __future__ import annotations

from typing import Any


def create_pk_sk_table(client: Any, name: str = "t", **settings: Any) -> None:
    """An on-demand table keyed like the task store's (`settings`: more CreateTable parameters)."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **settings,
    )
