"""LocalStack tier: the end-to-end suite against a stack deployed to LocalStack with `samlocal`.

Needs LocalStack (which needs Docker) and the stack deployed, e.g.
`samlocal deploy --config-env dev`; skipped with that reason where LocalStack is not running.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from localstack_client.session import Session

from tests.e2e.conftest import RunningStack
from tests.support.http import HttpClient

ENDPOINT = os.environ.get("LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566")
STACK = os.environ.get("LOCALSTACK_STACK", "vector-ingestion-dev")


@pytest.fixture(scope="session")
def local_stack() -> RunningStack:
    try:
        urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=2).close()
    except (urllib.error.URLError, OSError):
        pytest.skip(
            f"LocalStack is not running at {ENDPOINT} (it needs Docker, which this machine lacks); "
            f"start it, run `samlocal deploy --config-env dev`, then rerun"
        )
    cloudformation = Session(localstack_host=urlsplit(ENDPOINT).netloc).client("cloudformation")
    stacks = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    # ApiUrl is https://<api id>.execute-api.<region>.<suffix>/<stage>; LocalStack serves it here:
    api_host, _, stage = outputs["ApiUrl"].removeprefix("https://").partition("/")
    api_id = api_host.split(".", 1)[0]
    api = HttpClient(f"{ENDPOINT}/restapis/{api_id}/{stage}/_user_request_")
    return RunningStack(api=api, opensearch=HttpClient(outputs["OpenSearchEndpoint"]))
