from __future__ import annotations

import pytest
from pydantic import ValidationError

from vector_tasks.models.api import CreateDeletionTaskRequest, CreateUpsertionTaskRequest


def test_upsertion_items_drop_absent_optional_fields_for_storage() -> None:
    request = CreateUpsertionTaskRequest.model_validate(
        {
            "embedding_model_id": "m",
            "items": [{"object_id": "a"}, {"object_id": "b", "payload": None, "item_info": {"k": 1}}],
        }
    )
    assert request.task_items() == [{"object_id": "a"}, {"object_id": "b", "item_info": {"k": 1}}]


def test_upsertion_items_are_what_the_models_dump_gives() -> None:
    request = CreateUpsertionTaskRequest.model_validate(
        {
            "embedding_model_id": "m",
            "items": [
                {"object_id": "a", "payload": {"vector": [0.5, -1], "none": None, "nested": {"x": None}}},
                {"object_id": "b", "payload": {}, "item_info": None},
                {"object_id": "c", "payload": None, "item_info": {"k": [1, {"z": None}]}},
            ],
        }
    )
    assert request.task_items() == [item.model_dump(exclude_none=True) for item in request.items]


def test_task_id_accepts_the_published_alphabet() -> None:
    CreateDeletionTaskRequest.model_validate({"embedding_model_id": "m", "task_id": "A-z.0_9:x", "object_ids": ["a"]})
    with pytest.raises(ValidationError):
        CreateDeletionTaskRequest.model_validate({"embedding_model_id": "m", "task_id": "a/b", "object_ids": ["a"]})


def test_many_duplicates_are_summarised() -> None:
    with pytest.raises(ValidationError, match="and 5 more"):
        CreateDeletionTaskRequest.model_validate(
            {"embedding_model_id": "m", "object_ids": [str(i % 25) for i in range(50)]}
        )
