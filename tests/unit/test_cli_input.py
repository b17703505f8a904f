"""The CLI's input: every line checked as the service would check it, errors named by line;
the split into tasks within the limits, and task ids derived from the content."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

import pytest

from vector_tasks_client.batches import Splitter, escaped_size
from vector_tasks_client.jsonl import InputError, Line, read_lines
from vector_tasks_client.kinds import Kind
from vector_tasks_client.limits import EVENT_ALLOWANCE_BYTES, MAX_EVENT_BYTES, MAX_ITEM_BYTES

MODEL = "local-hash-384"


def lines(text: str | bytes, kind: Kind = Kind.UPSERTION) -> list[Line]:
    data = text.encode() if isinstance(text, str) else text
    return list(read_lines(io.BytesIO(data), kind, "in.jsonl"))


def jsonl(values: Iterable[object]) -> str:
    return "".join(json.dumps(v) + "\n" for v in values)


def test_items_are_read_in_a_canonical_form_and_blank_lines_skipped() -> None:
    read = lines('{"payload": {"b": 1, "a": "é"}, "object_id": "d1", "item_info": null}\n\n   \n{"object_id": "d2"}')
    assert [(line.number, line.object_id, line.json) for line in read] == [
        (1, "d1", '{"object_id":"d1","payload":{"a":"é","b":1}}'),
        (4, "d2", '{"object_id":"d2"}'),
    ]


def test_deletion_lines_are_json_strings_or_objects_with_only_an_object_id() -> None:
    assert [line.json for line in lines('"a"\n{"object_id": "b"}\n', Kind.DELETION)] == ['"a"', '"b"']


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"object_id": "a"}\nnot json\n', "in.jsonl:2: not JSON: Expecting value: line 1 column 1 (char 0)"),
        ('{"object_id": "a", "payload": {"x": NaN}}', "in.jsonl:1: not JSON: NaN is not a JSON value"),
        ('{"object_id": "a", "payload": {"x": 1e400}}', "in.jsonl:1: not JSON: number 1e400 is out of range"),
        (
            '{"object_id": "a", "vector": [1]}',
            "in.jsonl:1: unknown field 'vector' (an item has object_id, payload, item_info)",
        ),
        ('["a"]', "in.jsonl:1: an upsertion line is an object"),
        ('{"payload": {}}', "in.jsonl:1: object_id must be a non-empty string"),
        ('{"object_id": ""}', "in.jsonl:1: object_id must be a non-empty string"),
        ('{"object_id": "a", "payload": "text"}', "in.jsonl:1: payload must be an object"),
        (json.dumps({"object_id": "é" * 257}), "in.jsonl:1: object_id is 514 bytes of UTF-8; the limit is 512"),
        ('{"object_id": "a", "payload": {"t": "\\ud800"}}', "in.jsonl:1: a string holds a lone surrogate"),
        ('{"object_id": "a"}\n{"object_id": "a"}\n', "in.jsonl:2: object id 'a' repeats line 1"),
    ],
)
def test_a_bad_upsertion_line_is_refused_with_its_number_and_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        Splitter(Kind.UPSERTION, MODEL, source="in.jsonl").plan(lines(text))
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("doc-1\n", "in.jsonl:1: not JSON"),
        ("1\n", 'in.jsonl:1: a deletion line is an object id as a JSON string ("doc-1") or {"object_id": "doc-1"}'),
        ('{"object_id": "a", "detail": "x"}\n', "in.jsonl:1: a deletion line is an object id"),
    ],
)
def test_a_bad_deletion_line_is_refused_with_its_number(text: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        lines(text, Kind.DELETION)
    assert str(raised.value).startswith(message)


def test_bytes_that_are_not_utf8_and_nesting_past_the_services_limit_are_refused() -> None:
    with pytest.raises(InputError, match=r"in.jsonl:2: not UTF-8: invalid start byte at byte 15"):
        lines(b'{"object_id":"a"}\n{"object_id": "\xff"}\n')
    deep = {"object_id": "a", "payload": {}}
    inner = deep["payload"]
    for _ in range(60):  # the body adds two levels: {"items": [line]}
        inner["n"] = {}
        inner = inner["n"]
    lines(json.dumps(deep))  # 62 levels: accepted
    inner["n"] = {}
    with pytest.raises(InputError, match="nesting is deeper than 62 levels"):
        lines(json.dumps(deep))


def test_an_item_over_256_kb_is_refused_and_one_at_the_limit_accepted() -> None:
    overhead = len('{"object_id":"a","payload":{"t":""}}')
    at_limit = {"object_id": "a", "payload": {"t": "x" * (MAX_ITEM_BYTES - overhead)}}
    assert len(lines(json.dumps(at_limit))) == 1
    at_limit["payload"]["t"] += "x"
    with pytest.raises(
        InputError, match=f"the item is {MAX_ITEM_BYTES + 1} bytes as JSON; the limit is {MAX_ITEM_BYTES}"
    ):
        lines(json.dumps(at_limit))


def test_25000_small_items_make_three_tasks_of_at_most_10000() -> None:
    text = jsonl({"object_id": f"d{i}", "payload": {"text": "short"}} for i in range(25_000))
    batches = Splitter(Kind.UPSERTION, MODEL).plan(lines(text))
    assert [(b.index, b.first_line, b.last_line, b.count) for b in batches] == [
        (1, 1, 10_000, 10_000),
        (2, 10_001, 20_000, 10_000),
        (3, 20_001, 25_000, 5_000),
    ]


def test_big_items_are_split_so_that_each_event_stays_within_6_mb_counting_json_escapes() -> None:
    # A quote is 2 bytes in the body (\") and 4 in the event, whose body is a JSON string (\\\"):
    # each of these items takes 160 KB there, for 80 KB of body.
    text = jsonl({"object_id": f"d{i}", "payload": {"text": '"' * 40_000}} for i in range(200))
    splitter = Splitter(Kind.UPSERTION, MODEL)
    read = lines(text)
    item_in_event = escaped_size(read[0].json) + 1
    assert item_in_event > 160_000
    batches = splitter.plan(read)
    assert [b.count for b in batches] == [38] * 5 + [10]
    budget = MAX_EVENT_BYTES - EVENT_ALLOWANCE_BYTES
    for batch, body in splitter.bodies(read, batches):
        document = json.loads(body)
        assert document["task_id"] == batch.task_id
        assert len(document["items"]) == batch.count
        in_event = escaped_size(body.decode())
        assert in_event <= budget
        if batch.index < len(batches):  # it took as many as fitted: one more would not have
            assert in_event + item_in_event > budget


def test_task_ids_come_from_the_content_so_the_same_input_gives_the_same_tasks() -> None:
    text = jsonl({"object_id": f"d{i}", "payload": {"text": f"t{i}"}} for i in range(12_000))
    read = lines(text)
    first = Splitter(Kind.UPSERTION, MODEL).plan(read)
    assert [b.task_id[:8] for b in first] == ["vt-0001-", "vt-0002-"]
    # Same content, other whitespace and key order: same tasks.
    respaced = "".join(
        json.dumps({"payload": {"text": f"t{i}"}, "object_id": f"d{i}"}, separators=(", ", " : ")) + "\n"
        for i in range(12_000)
    )
    assert Splitter(Kind.UPSERTION, MODEL).plan(lines(respaced)) == first
    # Another model or prefix: other ids.
    assert Splitter(Kind.UPSERTION, "precomputed-384").plan(read)[0].task_id != first[0].task_id
    assert Splitter(Kind.UPSERTION, MODEL, prefix="docs").plan(read)[0].task_id.startswith("docs-0001-")
    # One line changed: that task only has another id.
    changed = [*read[:-1], Line(read[-1].number, read[-1].object_id, '{"object_id":"d11999"}')]
    again = Splitter(Kind.UPSERTION, MODEL).plan(changed)
    assert (again[0].task_id, again[1].task_id != first[1].task_id) == (first[0].task_id, True)
    # Lines added at the end keep the earlier full tasks.
    more = [Line(12_001 + i, f"e{i}", f'{{"object_id":"e{i}"}}') for i in range(9_000)]
    assert Splitter(Kind.UPSERTION, MODEL).plan(read + more)[0] == first[0]


def test_an_input_that_changed_between_the_two_reads_is_refused() -> None:
    text = jsonl({"object_id": f"d{i}"} for i in range(10))
    splitter = Splitter(Kind.UPSERTION, MODEL, source="in.jsonl")
    batches = splitter.plan(lines(text))
    with pytest.raises(InputError, match="the input changed while it was read"):
        list(splitter.bodies(lines(text.replace('"d3"', '"x3"')), batches))
    with pytest.raises(InputError, match="the input changed while it was read"):
        list(splitter.bodies(lines(jsonl({"object_id": f"d{i}"} for i in range(5))), batches))


def test_a_task_prefix_must_be_task_id_characters() -> None:
    with pytest.raises(ValueError, match=r"a task prefix is 1\.\.64 characters"):
        Splitter(Kind.UPSERTION, MODEL, prefix="my docs")
