"""`make invoke` (sam local invoke) runs each function in its Lambda container against the local
stack, with the events in events/ in the order the README shows. Needs a Docker engine."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.docker import docker_engine_answers
from tests.support.local_stack import REPO, RunningStack

# Each event, the function it drives, and what the function answers, in an order that works on
# a fresh stack: the worker's and the readers' events name the task the first event creates.
SEQUENCE = [
    ("TaskSubmitFunction", "submit_upsertion_task", 202),
    ("TaskWorkerFunction", "worker_chunk", None),
    ("TaskReadFunction", "read_upsertion_task_info", 200),
    ("TaskReadFunction", "read_upsertion_task_list", 200),
    ("DeadLetterFunction", "dead_letter_chunk", None),
    ("TaskSubmitFunction", "submit_deletion_task", 202),
    ("TaskTransitionFunction", "transition_cancel_upsertion_task", 409),
    ("TaskSubmitFunction", "submit_upsertion_import", 202),
    ("ImportSplitterFunction", "import_step", None),
    ("ReconcilerFunction", "reconciler_schedule", "report"),
]


@pytest.mark.skipif(
    not docker_engine_answers(), reason="sam local invoke runs functions in containers: no Docker engine"
)
def test_each_event_runs_its_function_in_a_container(request: pytest.FixtureRequest) -> None:
    stack: RunningStack = request.getfixturevalue("local_stack")
    for function, event, status in SEQUENCE:
        result = subprocess.run(
            [
                "make",
                "invoke",
                f"FUNCTION={function}",
                f"EVENT=events/{event}.json",
                f"SAM_ENV_FILE={stack.sam_env_file}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        if status is None:
            assert answer == {"batchItemFailures": []}, (function, answer)
        elif status == "report":
            assert answer["out_of_budget"] is False, (function, answer)
        else:
            assert answer["statusCode"] == status, (function, answer)
