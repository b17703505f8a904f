"""The local stack's direct serialisation of AttributeValues (devstack/moto_server.py, applied to
this process by tests/conftest.py) answers exactly what moto's own attribute picker does."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.core.serialize import BaseJSONSerializer, JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model

EVERY_TYPE: dict[str, Any] = {
    "s": {"S": "text"},
    "empty": {"S": ""},
    "n": {"N": "-1.5e-7"},
    "b": {"B": b"\x00\xffbinary"},
    "b_text": {"B": "YmluYXJ5"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "null": {"NULL": True},
    "false": {"BOOL": False},
    "m": {"M": {"inner": {"L": [{"N": "1"}, {"M": {}}, {"L": []}, {"S": "deep"}]}}},
}
# Not what moto's items hold, and so served by moto's picker: an alias of a member's name.
ALIASED: dict[str, Any] = {"s": {"s": "lower"}, "l": {"ListAttributeValue": [{"S": "x"}]}}


def serialise(service: str, operation: str, result: Any) -> Any:
    model = get_service_model(service).operation_model(operation)
    serializer = JSONSerializer(operation_model=model, pretty_print=False, value_picker=XFormedAttributePicker())
    return json.loads(serializer.serialize(result)["body"])


def moto_own(monkeypatch: pytest.MonkeyPatch, service: str, operation: str, result: Any) -> Any:
    with monkeypatch.context() as patch:
        direct = BaseJSONSerializer._serialize_type_structure
        patch.setattr(BaseJSONSerializer, "_serialize_type_structure", direct.__wrapped__)  # type: ignore[attr-defined]
        return serialise(service, operation, result)


def batch_get(item: dict[str, Any]) -> dict[str, Any]:
    return {"Responses": {"t": [item, {"pk": {"S": "a"}}]}, "UnprocessedKeys": {}}


def stream_records(item: dict[str, Any]) -> dict[str, Any]:
    record = {
        "eventID": "1",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 12, 4, tzinfo=UTC),
            "Keys": {"pk": {"S": "a"}},
            "NewImage": item,
            "OldImage": {"pk": {"S": "a"}},
            "SequenceNumber": "100",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    return {"Records": [record], "NextShardIterator": "next"}


@pytest.mark.parametrize(
    ("service", "operation", "result"),
    [
        ("dynamodb", "BatchGetItem", batch_get(EVERY_TYPE)),
        ("dynamodb", "GetItem", {"Item": EVERY_TYPE}),
        ("dynamodb", "UpdateItem", {"Attributes": EVERY_TYPE}),
        ("dynamodbstreams", "GetRecords", stream_records(EVERY_TYPE)),
        ("dynamodb", "GetItem", {"Item": ALIASED}),
        ("dynamodbstreams", "GetRecords", stream_records(ALIASED)),
    ],
    ids=["batch-get", "get", "update", "stream", "aliased-get", "aliased-stream"],
)
def test_the_answer_is_moto_own(monkeypatch: pytest.MonkeyPatch, service: str, operation: str, result: Any) -> None:
    assert serialise(service, operation, result) == moto_own(monkeypatch, service, operation, result)


def test_attribute_values_skip_the_picker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The picker is asked of the structures around the items, not of each AttributeValue."""
    asked: Counter[str] = Counter()
    pick = XFormedAttributePicker.__call__

    def counting(self: XFormedAttributePicker, context: Any) -> Any:
        asked[context.shape.parent.name] += 1
        return pick(self, context)

    monkeypatch.setattr(XFormedAttributePicker, "__call__", counting)
    serialise("dynamodb", "GetItem", {"Item": EVERY_TYPE})
    assert asked["AttributeValue"] == 0
    moto_own(monkeypatch, "dynamodb", "GetItem", {"Item": EVERY_TYPE})
    assert asked["AttributeValue"] > 100
