"""LocalStack tier: the portable end-to-end suite against the stack deployed to LocalStack.

`make test-localstack` runs it with no hand step: it installs the LocalStack CLI and samlocal,
and this fixture starts LocalStack if it is not running (which needs a Docker engine), creates
an OpenSearch domain on it, builds and deploys template.yaml with `samlocal` and
`ExistingOpenSearchEndpoint` pointing at that domain, runs the suite, and stops the LocalStack
it started. Anywhere else (`make test`, or no Docker) it skips with the reason.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from localstack_client.session import Session

from tests.support.docker import docker_engine_answers
from tests.support.http import HttpClient
from tests.support.local_stack import REPO, RunningStack

ENDPOINT = os.environ.get("LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566")
STACK = "vector-ingestion-localstack"
DOMAIN = "vector-ingestion-e2e"
TOOLS = REPO / ".venv-tools" / "bin"
LOCALSTACK_CLI = REPO / ".venv-localstack" / "bin" / "localstack"


def _running() -> bool:
    try:
        urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=2).close()
    except (urllib.error.URLError, OSError):
        return False
    return True


def _run(*args: str | Path, timeout: float = 1800) -> None:
    subprocess.run([str(a) for a in args], cwd=REPO, check=True, timeout=timeout)


def _opensearch_endpoint(session: Session) -> str:
    """A domain on LocalStack (it fetches OpenSearch on first use); its URL once it serves."""
    opensearch = session.client("opensearch")
    if DOMAIN not in {d["DomainName"] for d in opensearch.list_domain_names()["DomainNames"]}:
        opensearch.create_domain(DomainName=DOMAIN, EngineVersion="OpenSearch_2.11")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = opensearch.describe_domain(DomainName=DOMAIN)["DomainStatus"]
        if not status.get("Processing") and status.get("Endpoint"):
            return f"http://{status['Endpoint']}"
        time.sleep(5)
    raise RuntimeError(f"OpenSearch domain {DOMAIN} on LocalStack was not ready in 15 minutes")


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    if os.environ.get("VECTOR_TASKS_LOCALSTACK") != "1":
        pytest.skip("the LocalStack tier runs with `make test-localstack` (it starts LocalStack, which needs Docker)")
    started = False
    if not _running():
        if not docker_engine_answers():
            pytest.skip("LocalStack is not running and cannot be started: it needs a Docker engine, and none answers")
        _run(LOCALSTACK_CLI, "start", "-d", timeout=600)
        _run(LOCALSTACK_CLI, "wait", "-t", "300", timeout=330)
        started = True
    try:
        session = Session(localstack_host=ENDPOINT.split("://", 1)[1])
        opensearch_url = _opensearch_endpoint(session)
        _run(TOOLS / "samlocal", "build", "--template", "template.yaml")
        _run(
            TOOLS / "samlocal",
            "deploy",
            "--stack-name",
            STACK,
            "--region",
            "us-east-1",
            "--resolve-s3",
            "--capabilities",
            "CAPABILITY_IAM",
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            f"Stage=dev ExistingOpenSearchEndpoint={opensearch_url} OpenSearchAuth=none "
            f"ExistingOpenSearchDomainArn=arn:aws:es:us-east-1:000000000000:domain/{DOMAIN}",
        )
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in session.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }
        # ApiUrl is https://<api id>.execute-api.<region>.<suffix>/<stage>; LocalStack serves it here:
        api_host, _, stage = outputs["ApiUrl"].removeprefix("https://").partition("/")
        api_id = api_host.split(".", 1)[0]
        yield RunningStack(
            run_tag=uuid.uuid4().hex[:8],
            api=HttpClient(f"{ENDPOINT}/restapis/{api_id}/{stage}/_user_request_"),
            opensearch=HttpClient(opensearch_url),
        )
    finally:
        if started:
            _run(LOCALSTACK_CLI, "stop", timeout=120)
