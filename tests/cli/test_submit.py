"""`vector-tasks submit` on the local stack: a 25,000-line file as 3 tasks with its progress,
the same command again resuming them, and failures exported and submitted again."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import FIGURES, VECTOR_TASKS, Ran, VectorTasks, runner
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"
WORDS = ["vector", "search", "ingestion", "pipeline", "embedding", "chunk", "index", "shard"]
PROGRESS = re.compile(
    r"^(?P<done>[\d,]+)/25,000 items \((?P<percent>\d+)%\), (?P<failed>[\d,]+) failed"
    r"(?:, (?P<rate>[\d,.]+) items/s, about (?P<left>\d+ (?:s|min \d\d s|h \d\d min)) left)?"
    r"; 3 tasks: (?P<tasks>.+)$"
)
CLOSING = re.compile(
    r"^25,000/25,000 items \(100%\), 0 failed, in (?P<took>.+) \((?P<rate>[\d,]+) items/s\); 3 tasks: 3 done$"
)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("input") / "docs.jsonl"
    with path.open("w") as out:
        for i in range(25_000):
            text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(12))
            out.write(
                json.dumps({"object_id": f"doc-{i:05d}", "payload": {"text": text}, "item_info": {"n": i}}) + "\n"
            )
    return path


@dataclass(frozen=True)
class FirstRun:
    ran: Ran
    seconds: float


@pytest.fixture(scope="module")
def first_run(local_stack: RunningStack, big_file: Path) -> FirstRun:
    """The 25,000 lines submitted once and waited for (what the resumption then repeats)."""
    run = runner(local_stack, big_file.parent)
    started = time.monotonic()
    ran = run("submit", str(big_file), "--model", MODEL, "--wait", timeout=900)
    return FirstRun(ran, time.monotonic() - started)


def _task_ids(stdout: str) -> list[str]:
    return re.findall(r"^(?:created|resumed \(\w+\)) upsertion task (\S+):", stdout, re.MULTILINE)


@pytest.mark.slow
def test_a_25000_line_file_is_submitted_as_3_tasks_and_waited_done_with_progress(
    first_run: FirstRun, local_stack: RunningStack, big_file: Path
) -> None:
    ran = first_run.ran
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        f"created upsertion task {task_id}: lines {lines}, {count} items"
        for task_id, lines, count in zip(
            _task_ids(ran.out), ("1-10000", "10001-20000", "20001-25000"), ("10,000", "10,000", "5,000"), strict=True
        )
    ]
    err = ran.err.splitlines()
    assert err[0] == f"{big_file}: 25,000 items in 3 upsertion tasks"
    # Plain progress lines (standard error is not a terminal): counts only grow, the rate and
    # the time left appear once there is progress to measure, then the closing line.
    lines = [PROGRESS.match(line) for line in err[1:-1]]
    assert lines and all(lines), err
    done = [_number(m["done"]) for m in lines if m]
    assert done == sorted(done) and done[0] < 25_000
    assert any(m["rate"] and m["left"] for m in lines if m), err
    closing = CLOSING.match(err[-1])
    assert closing, err[-1]
    for task_id, total in zip(_task_ids(ran.out), (10_000, 10_000, 5_000), strict=True):
        task = local_stack.api.get(f"/internal/upsertion-tasks/info?task_id={task_id}")
        assert (task["status"], task["progress"]["succeeded"], task["attempt"]) == ("done", total, 1)
    local_stack.opensearch.call("POST", f"/vectors-{MODEL}/_refresh")
    assert local_stack.opensearch.get(f"/vectors-{MODEL}/_count?q=object_id:doc-*")["count"] == 25_000
    FIGURES.append(
        f"25,000 lines as 3 tasks, submitted and waited done in {first_run.seconds:.1f} s ({closing['rate']} items/s)"
    )


@pytest.mark.slow
def test_the_same_command_again_resumes_the_same_tasks_with_a_bar_on_a_terminal(
    first_run: FirstRun, local_stack: RunningStack, big_file: Path, tmp_path: Path
) -> None:
    assert first_run.ran.code == 0, first_run.ran.err
    before = local_stack.api.get("/internal/upsertion-tasks/list?limit=100")["tasks"]
    # Standard error a terminal this time: the progress is a bar redrawn in place.
    controller, terminal = pty.openpty()
    env = {**os.environ, "VECTOR_TASKS_CONFIG": str(tmp_path / "none.toml"), "COLUMNS": "100"}
    argv = [
        str(VECTOR_TASKS),
        "--endpoint",
        local_stack.api.base_url,
        "submit",
        str(big_file),
        "--model",
        MODEL,
        "--wait",
    ]
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=terminal, env=env, text=True) as process:
        os.close(terminal)
        out, _ = process.communicate(timeout=300)
        screen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end has closed
                break
            if not chunk:
                break
            screen += chunk
    os.close(controller)
    assert process.returncode == 0, screen
    assert out.splitlines() == [line.replace("created", "resumed (done)") for line in first_run.ran.out.splitlines()]
    text = screen.decode()
    assert "\r[" + "█" * 33 + "] 25,000/25,000 items (100%), 0 failed; 3 tasks: 3 done" in text
    assert text.rstrip().endswith("25,000/25,000 items (100%), 0 failed; 3 tasks: 3 done")
    after = local_stack.api.get("/internal/upsertion-tasks/list?limit=100")["tasks"]
    assert after == before  # no task added, none restarted or changed
    FIGURES.append(f"the same command again resumed the 3 tasks in {time.monotonic() - started:.1f} s")


def test_failed_lines_are_exported_and_submitted_again(
    vector_tasks: VectorTasks, local_stack: RunningStack, tmp_path: Path
) -> None:
    # Every fourth item brings its own vector and no text: the text model fails it.
    items = [
        {"object_id": f"mixed-{i:03d}", "payload": {"vector": [((i + k) % 7) - 3.0 for k in range(384)]}}
        if i % 4 == 0
        else {"object_id": f"mixed-{i:03d}", "payload": {"text": f"note {i} about vector search"}}
        for i in range(200)
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("".join(json.dumps(item) + "\n" for item in items))
    first = vector_tasks("submit", str(source), "--model", MODEL, "--wait")
    assert first.code == 1, first.err  # done, some items failed
    (task_id,) = _task_ids(first.out)
    assert (
        f"Some items failed: vector-tasks failures --kind upsertion {task_id} --input {source} --output failed.jsonl"
        in first.err
    )

    exported = vector_tasks("failures", task_id, "--input", str(source), "--output", "failed.jsonl")
    assert exported.code == 0, exported.err
    assert exported.err.splitlines()[0] == "50 failed items written to failed.jsonl"
    assert f"  50 x payload.text is missing; model '{MODEL}' reads its input from payload.text" in exported.err
    failed = [json.loads(line) for line in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert failed == [item for i, item in enumerate(items) if i % 4 == 0]  # whole, in input order

    # The exported file is submitted as it is, to the model that reads vectors.
    again = vector_tasks("submit", "failed.jsonl", "--model", "precomputed-384", "--wait")
    assert again.code == 0, again.err
    (retry_id,) = _task_ids(again.out)
    task = local_stack.api.get(f"/internal/upsertion-tasks/info?task_id={retry_id}")
    assert task["progress"] == {"total": 50, "succeeded": 50, "failed": 0, "pending": 0, "superseded": 0}


def test_deletion_failures_are_exported_as_ids_and_submitted_again(
    vector_tasks: VectorTasks, local_stack: RunningStack, tmp_path: Path
) -> None:
    body = {"embedding_model_id": MODEL, "items": [{"object_id": "kept-1", "payload": {"text": "x"}}]}
    status, kept = local_stack.api.call("POST", "/internal/upsertion-tasks/run", body)
    assert status == 202
    assert vector_tasks("status", "--wait", kept["id"]).code == 0
    ids = tmp_path / "delete.jsonl"
    ids.write_text('"kept-1"\n"gone-1"\n{"object_id": "gone-2"}\n')
    first = vector_tasks("submit", str(ids), "--kind", "deletion", "--model", MODEL, "--wait")
    assert first.code == 1, first.err  # two are not in the index: listed, the task done
    (task_id,) = re.findall(r"deletion task (\S+):", first.out)
    listed = vector_tasks("failures", task_id, "--kind", "deletion")
    assert listed.out == "gone-1\tObject not found in index\ngone-2\tObject not found in index\n"
    exported = vector_tasks("failures", task_id, "--kind", "deletion", "--output", "again.jsonl")
    assert exported.code == 0, exported.err
    assert (tmp_path / "again.jsonl").read_text() == '"gone-1"\n"gone-2"\n'

    # The same file again resumes its finished task, and says how to run its failures again.
    resumed = vector_tasks("submit", str(ids), "--kind", "deletion", "--model", MODEL)
    assert resumed.out.startswith(f"resumed (done) deletion task {task_id}")
    assert f"to run what did not succeed again: vector-tasks restart --kind deletion --failed {task_id}" in resumed.err

    # Once the objects exist, the exported file, submitted as it is, deletes them.
    body = {
        "embedding_model_id": MODEL,
        "items": [{"object_id": f"gone-{i}", "payload": {"text": "x"}} for i in (1, 2)],
    }
    status, created = local_stack.api.call("POST", "/internal/upsertion-tasks/run", body)
    assert status == 202
    assert vector_tasks("status", created["id"], "--wait").code == 0
    again = vector_tasks("submit", "again.jsonl", "--kind", "deletion", "--model", MODEL, "--wait")
    assert again.code == 0, again.err
