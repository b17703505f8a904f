"""The task model's rules: failure details capped at their byte limit, progress, outcomes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from vector_tasks.domain.limits import MAX_FAILURE_DETAIL_CHARS
from vector_tasks.domain.model import (
    TRUNCATED_MARKER,
    ChunkOutcome,
    ItemFailure,
    Progress,
    Task,
    TaskKind,
    TaskStatus,
    cap_failure_detail,
    chunk_source_for_retry,
    item_object_id,
)


def escaped(text: str) -> int:
    return len(json.dumps(text)) - 2


@pytest.mark.parametrize("unit", ["a", "\n", "é", "\U0001f600"])
def test_a_detail_exactly_at_the_limit_is_kept_and_one_unit_more_is_cut(unit: str) -> None:
    per = escaped(unit)
    at_limit = unit * (MAX_FAILURE_DETAIL_CHARS // per) + "a" * (MAX_FAILURE_DETAIL_CHARS % per)
    assert escaped(at_limit) == MAX_FAILURE_DETAIL_CHARS
    assert cap_failure_detail(at_limit) == at_limit

    over = at_limit + unit
    capped = cap_failure_detail(over)
    assert capped.endswith(TRUNCATED_MARKER)
    assert escaped(capped) <= MAX_FAILURE_DETAIL_CHARS
    kept = capped[: -len(TRUNCATED_MARKER)]
    assert over.startswith(kept)
    # As much as fits: one more unit would pass the budget.
    assert escaped(kept) + per > MAX_FAILURE_DETAIL_CHARS - len(TRUNCATED_MARKER)
    assert escaped(kept) <= MAX_FAILURE_DETAIL_CHARS - len(TRUNCATED_MARKER)


def test_short_details_are_kept_whatever_they_escape_to() -> None:
    short = "\x01" * (MAX_FAILURE_DETAIL_CHARS // 12)  # 6 bytes each escaped: 83 * 6 < 1,000
    assert cap_failure_detail(short) == short
    assert cap_failure_detail("") == ""


def test_the_short_cut_for_short_details_holds_for_the_widest_characters() -> None:
    widest = "\U0001f600"  # 12 bytes escaped (a surrogate pair)
    fits = widest * (MAX_FAILURE_DETAIL_CHARS // 12)
    assert cap_failure_detail(fits) == fits
    over = widest * (MAX_FAILURE_DETAIL_CHARS // 12 + 1)  # 1,008 bytes escaped
    assert cap_failure_detail(over).endswith(TRUNCATED_MARKER)


def test_a_long_detail_of_six_byte_escapes_is_cut_to_the_budget() -> None:
    detail = "\x01" * 200  # 1,200 bytes escaped
    capped = cap_failure_detail(detail)
    budget = MAX_FAILURE_DETAIL_CHARS - len(TRUNCATED_MARKER)
    assert capped == "\x01" * (budget // 6) + TRUNCATED_MARKER


def test_progress_and_outcome_counts() -> None:
    assert Progress(total=10, succeeded=6, failed=3).pending == 1
    outcome = ChunkOutcome(
        succeeded=1,
        failures=(ItemFailure("a", "x"), ItemFailure("b", "y", counts_as_error=False), ItemFailure("c", "z")),
    )
    assert outcome.errors == 2
    assert ChunkOutcome(succeeded=3).failures == ()
    assert ChunkOutcome(succeeded=3).errors == 0


def test_task_defaults_and_progress() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    task = Task(TaskKind.DELETION, "t", "m", TaskStatus.PENDING, now, now, 1, 7, 1, "fp", succeeded=2, failed=1)
    assert task.progress == Progress(total=7, succeeded=2, failed=1)
    assert task.progress.pending == 4
    assert (task.chunks_done, task.errors, task.original_item_count, task.original_chunk_count) == (0, 0, 0, 0)
    assert (task.chunk_source, task.error, task.dispatched, task.failures) == ("CHUNK", None, False, None)
    assert task.failures_next_offset is None


def test_item_ids_and_retry_sources() -> None:
    assert item_object_id("plain") == "plain"
    assert item_object_id({"object_id": 12}) == "12"
    source = chunk_source_for_retry(3)
    assert re.fullmatch(r"RETRY#0003-[0-9a-f]{12}", source)
    assert chunk_source_for_retry(3) != source
