"""The operator console in a real browser: each scenario of console.mjs, run by node with
playwright-core driving Debian's chromium, against the console that `make run` serves."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from tests.browser.conftest import CHROMIUM
from tests.support.local_stack import REPO, RunningStack
from vector_tasks_client import DataItem, VectorTasksClient

SCRIPT = Path(__file__).with_name("console.mjs")
MODEL = "local-hash-384"


def run_scenario(stack: RunningStack, name: str, artifacts: Path, **args: object) -> None:
    assert stack.console_url is not None
    done = subprocess.run(
        ["node", str(SCRIPT), name],
        cwd=REPO,
        env={
            **os.environ,
            "CONSOLE_URL": stack.console_url,
            "CHROMIUM": str(CHROMIUM),
            "SCENARIO_ARGS": json.dumps(args),
            "ARTIFACTS": str(artifacts),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"passed: {name}" in done.stdout


def test_create_watch_failures_restart_errors_and_filters(local_stack: RunningStack, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    run_scenario(
        local_stack, "lifecycle", tmp_path, task_id=f"browser-{tag}", deletion_id=f"browser-del-{tag}", model=MODEL
    )


def test_cancel_with_confirmation_then_restart_the_failed_items(local_stack: RunningStack, tmp_path: Path) -> None:
    client = VectorTasksClient(local_stack.api.base_url)
    tag = uuid.uuid4().hex[:8]

    def items(prefix: str, n: int) -> list[DataItem]:
        return [DataItem(object_id=f"{prefix}-{i}", payload={"text": f"w{i % 7}"}) for i in range(n)]

    # Three long tasks first: the workers take chunks in the order they were queued, so the
    # last of them and the task after them are still waiting when the page cancels them. The
    # page watches the first one's bar move, which may have ended by then: on an idle machine
    # the workers do 10,000 of these items in about 4 s, the page's steps take about as long.
    fillers = [
        client.upsertion.create(MODEL, items(f"filler-{n}-{tag}", 10_000), f"browser-filler-{n}-{tag}")
        for n in range(3)
    ]
    waiting = client.upsertion.create(MODEL, items(f"waiting-{tag}", 2_000), f"browser-waiting-{tag}")
    run_scenario(
        local_stack,
        "cancel_and_restart",
        tmp_path,
        filler_id=fillers[0].id,
        long_id=fillers[-1].id,
        task_id=waiting.id,
        items=2_000,
    )
    assert client.upsertion.get(waiting.id).status.value == "done"
    assert client.upsertion.get(fillers[-1].id).status.value == "canceled"
