"""wait / wait_all on an injected clock, and the iterators over list and failure pages, against
a stub of the API that plays a scripted sequence of task states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stub_api import Reply, Request, stub_api, summary_json, task_json
from vector_tasks_client import TaskChanged, TaskStatus, VectorTasksClient, WaitTimeout


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(url: str, time: FakeTime) -> VectorTasksClient:
    return VectorTasksClient(url, clock=time.clock, sleep=time.sleep)


def playing(states: dict[str, list[dict[str, Any]]], time: FakeTime) -> Callable[[Request], Reply]:
    """Each task's state at the clock's second n is states[id][n] (the last one after that)."""

    def current(task_id: str) -> dict[str, Any]:
        timeline = states[task_id]
        return timeline[min(int(time.now), len(timeline) - 1)]

    def answer(request: Request) -> Reply:
        if request.path.endswith("/list"):
            tasks = [summary_json(current(task_id)) for task_id in states]
            return Reply(200, {"tasks": tasks, "offset": 0, "limit": 100, "next_offset": None})
        return Reply(200, current(request.query["task_id"]))

    return answer


def test_wait_polls_until_final_and_returns_the_task_as_info_answers_it() -> None:
    time = FakeTime()
    states = {
        "t": [
            task_json("t", "pending"),
            task_json("t", "running", succeeded=4),
            task_json("t", "done", succeeded=9, failed=1, failures=[{"object_id": "x", "detail": "why"}]),
        ]
    }
    seen: list[tuple[str, int]] = []
    with stub_api(playing(states, time)) as api:
        done = client(api.url, time).upsertion.wait(
            "t", timeout=60, on_update=lambda ts: seen.extend((t.status.value, t.progress.processed) for t in ts)
        )
    assert done.status is TaskStatus.DONE
    assert [f.object_id for f in done.failures] == ["x"]
    assert seen == [("pending", 0), ("running", 4), ("done", 10)]
    assert time.sleeps == [1.0, 1.0]
    # Each round is one list (which answers for every task on it), then one full info at the end.
    assert [r.path.rsplit("/", 1)[1] for r in api.requests] == ["list", "list", "list", "info"]
    assert api.requests[-1].query["failures_limit"] == "1000"


def test_wait_all_follows_several_tasks_and_stops_polling_the_finished_ones() -> None:
    time = FakeTime()
    states = {
        "a": [task_json("a", "running"), task_json("a", "done", succeeded=10)],
        "b": [task_json("b", "running")] * 3 + [task_json("b", "canceled", succeeded=5)],
    }
    with stub_api(playing(states, time)) as api:
        final = client(api.url, time).upsertion.wait_all(["a", "b", "a"], timeout=60)
    assert [(t.id, t.status.value) for t in final] == [("a", "done"), ("b", "canceled")]
    assert time.now == 3


def test_a_task_off_the_newest_page_is_read_alone() -> None:
    time = FakeTime()
    states = {"old": [task_json("old", "running"), task_json("old", "done", succeeded=10)]}

    def answer(request: Request) -> Reply:
        if request.path.endswith("/list"):  # a busy service: the task is far down the list
            return Reply(200, {"tasks": [], "offset": 0, "limit": 100, "next_offset": 100})
        return playing(states, time)(request)

    with stub_api(answer) as api:
        client(api.url, time).upsertion.wait("old", timeout=60)
    routes = [(r.path.rsplit("/", 1)[1], r.query.get("failures_limit")) for r in api.requests]
    # Listed once; once it is not there, info alone (one failure at most) until done.
    assert routes == [("list", None), ("info", "1"), ("info", "1"), ("info", "1000")]


def test_wait_gives_up_at_the_timeout_with_the_tasks_as_last_seen() -> None:
    time = FakeTime()
    states = {"t": [task_json("t", "running", succeeded=3)]}
    with stub_api(playing(states, time)) as api, pytest.raises(WaitTimeout) as raised:
        client(api.url, time).upsertion.wait("t", timeout=2.5, poll_interval=1.0)
    assert time.sleeps == [1.0, 1.0, 0.5]
    assert [t.progress.succeeded for t in raised.value.tasks] == [3]
    assert "not finished within 2.5 s: t" in str(raised.value)


def test_list_pages_and_iter_tasks_read_to_the_last_page_and_yield_each_task_once() -> None:
    pages = {
        0: (["t5", "t4"], 2),
        2: (["t4", "t3"], 4),  # a new task pushed t4 one place back
        4: (["t1"], None),
    }

    def answer(request: Request) -> Reply:
        ids, next_offset = pages[int(request.query["offset"])]
        tasks = [summary_json(task_json(i)) for i in ids]
        return Reply(
            200, {"tasks": tasks, "offset": int(request.query["offset"]), "limit": 2, "next_offset": next_offset}
        )

    with stub_api(answer) as api:
        tasks = client(api.url, FakeTime()).deletion
        assert [len(p.tasks) for p in tasks.list_pages(page_size=2)] == [2, 2, 1]
        assert [t.id for t in tasks.iter_tasks(TaskStatus.DONE, page_size=2)] == ["t5", "t4", "t3", "t1"]
    assert api.requests[-1].query == {"offset": "4", "limit": "2", "status": "done"}
    assert api.requests[-1].path == "/internal/deletion-tasks/list"


def test_failure_pages_follow_failures_next_offset_and_refuse_to_mix_attempts() -> None:
    failures = [{"object_id": f"o{i}", "detail": f"d{i}"} for i in range(5)]
    attempt = {"n": 1}

    def answer(request: Request) -> Reply:
        offset, limit = int(request.query["failures_offset"]), int(request.query["failures_limit"])
        page = failures[offset : offset + limit]
        next_offset = offset + limit if offset + limit < len(failures) else None
        return Reply(
            200,
            task_json(
                "t", "done", total=5, failed=5, attempt=attempt["n"], failures=page, failures_next_offset=next_offset
            ),
        )

    with stub_api(answer) as api:
        tasks = client(api.url, FakeTime()).upsertion
        assert [f.object_id for f in tasks.iter_failures("t", page_size=2)] == ["o0", "o1", "o2", "o3", "o4"]
        pages = tasks.failure_pages("t", page_size=2)
        next(pages)
        attempt["n"] = 2  # restarted between two pages
        with pytest.raises(TaskChanged, match="restarted"):
            next(pages)
