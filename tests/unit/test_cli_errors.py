"""The CLI's exit codes and messages, run in-process against a stub of the API: usage errors
before anything is sent, the service's message and request id for its errors, never a
traceback."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_stack import free_port
from tests.support.stub_api import Reply, Request, stub_api, summary_json, task_json
from vector_tasks_client.cli import ExitCode, Io, main


class Run:
    """One CLI run: its exit code and what it wrote."""

    def __init__(self, *argv: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> None:
        self.now = 0.0
        streams = Io(
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            stdin=io.BytesIO(stdin),
            env=env or {"VECTOR_TASKS_CONFIG": "/nonexistent/config.toml"},
            clock=lambda: self.now,
            sleep=self._sleep,
        )
        self.code = main(list(argv), streams)
        self.out = streams.stdout.getvalue()  # type: ignore[attr-defined]
        self.err = streams.stderr.getvalue()  # type: ignore[attr-defined]
        assert "Traceback" not in self.out + self.err

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"object_id": "a", "payload": {"text": "x"}}\n{"object_id": "b", payload}\n')
    return path


def test_a_bad_line_is_a_usage_error_naming_it_and_nothing_is_sent(jsonl: Path) -> None:
    with stub_api(lambda _: Reply(500)) as api:
        run = Run("--endpoint", api.url, "submit", str(jsonl), "--model", "m")
    assert run.code == ExitCode.USAGE
    assert run.err.startswith(f"vector-tasks: {jsonl}:2: not JSON: Expecting property name enclosed in double quotes")
    assert api.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--local", "submit", "/nonexistent.jsonl", "--model", "m"], "vector-tasks: /nonexistent.jsonl: No such file"),
        (["status", "t"], "vector-tasks: no endpoint: give --endpoint URL"),
        (["--local", "--endpoint", "http://x", "list"], "vector-tasks: --local and --endpoint: give one of them"),
        (
            ["--local", "failures", "t", "--output", "f.jsonl"],
            "vector-tasks: an upsertion failure names its object id only",
        ),
    ],
)
def test_usage_errors_exit_2_with_what_to_do(argv: list[str], message: str) -> None:
    run = Run(*argv)
    assert (run.code, run.err.splitlines()[0][: len(message)]) == (ExitCode.USAGE, message)


def test_bad_arguments_exit_2_with_the_usage() -> None:
    with pytest.raises(SystemExit) as raised:
        Run("--local", "submit", "docs.jsonl")
    assert raised.value.code == 2


def test_an_endpoint_that_does_not_answer_exits_4_with_the_reason() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    run = Run("--endpoint", closed, "list")
    assert run.code == ExitCode.ERROR
    assert run.err.startswith(f"vector-tasks: cannot connect to {closed}: ")
    assert "Connection refused" in run.err


def test_the_services_error_is_printed_with_its_request_id_and_a_hint_for_the_other_kind() -> None:
    error = {"error": {"code": "task_not_found", "message": "No upsertion task with task_id 'x'", "request_id": "r-9"}}
    with stub_api(lambda _: Reply(404, error)) as api:
        run = Run("--endpoint", api.url, "status", "x")
    assert run.code == ExitCode.ERROR
    assert run.err == (
        "vector-tasks: x: No upsertion task with task_id 'x' (HTTP 404 task_not_found, request id r-9)"
        " (a deletion task? add --kind deletion)\n"
    )


def test_a_refused_create_prints_the_services_message_and_says_how_to_resume(jsonl: Path) -> None:
    jsonl.write_text("".join(f'{{"object_id": "o{i}"}}\n' for i in range(10_005)))
    answers = iter(
        [
            Reply(202, task_json("first")),
            Reply(
                422, {"error": {"code": "unknown_embedding_model", "message": "Unknown model 'm'", "request_id": "r"}}
            ),
        ]
    )
    with stub_api(lambda _: next(answers)) as api:
        run = Run("--endpoint", api.url, "submit", str(jsonl), "--model", "m")
    assert run.code == ExitCode.ERROR
    assert "1 of 2 tasks were sent; the same command again resumes." in run.err
    assert "vector-tasks: Unknown model 'm' (HTTP 422 unknown_embedding_model, request id r)" in run.err


def _final(states: dict[str, dict[str, Any]]) -> Any:
    def answer(request: Request) -> Reply:
        if request.path.endswith("/list"):
            tasks = [summary_json(t) for t in states.values()]
            return Reply(200, {"tasks": tasks, "offset": 0, "limit": 100, "next_offset": None})
        return Reply(200, states[request.query["task_id"]])

    return answer


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ([("done", 10, 0)], ExitCode.DONE),
        ([("done", 10, 0), ("done", 8, 2)], ExitCode.ITEMS_FAILED),
        ([("done", 8, 2), ("failed", 0, 10)], ExitCode.TASK_FAILED),
        ([("done", 10, 0), ("canceled", 3, 0)], ExitCode.TASK_FAILED),
    ],
)
def test_waiting_exits_by_the_outcome(states: list[tuple[str, int, int]], code: ExitCode) -> None:
    tasks = {f"t{i}": task_json(f"t{i}", s, succeeded=ok, failed=bad) for i, (s, ok, bad) in enumerate(states)}
    with stub_api(_final(tasks)) as api:
        run = Run("--endpoint", api.url, "status", "--wait", *tasks)
    assert run.code == code


def test_waiting_past_the_timeout_exits_5_and_says_the_tasks_go_on() -> None:
    with stub_api(_final({"t": task_json("t", "running", succeeded=3)})) as api:
        run = Run("--endpoint", api.url, "status", "t", "--wait", "--timeout", "3")
    assert run.code == ExitCode.TIMEOUT
    assert "vector-tasks: not finished within 3 s: t; they go on" in run.err
