"""Starting and stopping the whole local stack; `python -m devstack` and the e2e tests use this."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from devstack.api_gateway import ApiGateway
from devstack.event_sources import SqsPoller
from devstack.lambda_runtime import local_functions
from devstack.permissions import Permissions
from devstack.processes import ChildServer, start_moto, start_osmem
from devstack.resources import create_resources
from devstack.template import LOCAL_PSEUDO_PARAMETERS, LOCAL_REGION, Template, load_template

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"


@dataclass
class StackConfig:
    port: int = 3000
    opensearch_port: int = 9200
    moto_port: int = 5000
    host: str = "127.0.0.1"
    stage: str = "dev"
    retry_after: int | None = None  # see SqsPoller
    start_pollers: bool = True  # False: tests that deliver queue messages themselves
    server_log: IO[bytes] | None = None
    sam_env_file: Path | None = None  # where to write `sam local invoke --env-vars` for this stack


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.servers: list[ChildServer] = []
        self.pollers: list[SqsPoller] = []
        self.gateway: ApiGateway | None = None
        self.template: Template | None = None

    @property
    def api_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    @property
    def opensearch_url(self) -> str:
        return f"http://{self.config.host}:{self.config.opensearch_port}"

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://{self.config.host}:{self.config.moto_port}"

    def _environment(self) -> dict[str, str]:
        """What every handler sees besides its template variables: credentials and endpoints."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }

    def sam_local_environment(self) -> dict[str, dict[str, str]]:
        """Per function, what `sam local invoke --env-vars` needs to run it against this stack:
        its template variables resolved to the local resources, plus the endpoints and dummy
        credentials. The container must share the host's network (`--docker-network host`),
        since the servers listen on loopback only."""
        assert self.template is not None
        return {
            spec.logical_id: {**self.template.function_environment(spec), **self._environment()}
            for spec in self.template.functions()
        }

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        c = self.config
        self.servers.append(start_moto(c.moto_port, c.server_log))
        self.servers.append(start_osmem(c.opensearch_port, c.server_log))
        os.environ.update(self._environment())
        template = Template(
            load_template(),
            parameters={"Stage": c.stage, "ExistingOpenSearchEndpoint": self.opensearch_url, "OpenSearchAuth": "none"},
            pseudo=LOCAL_PSEUDO_PARAMETERS,
        )
        # Before any session or client exists: they copy the permission hook when built.
        permissions = Permissions(template)
        session = boto3.Session()
        create_resources(template, session, permissions=permissions)
        self.template = template
        if c.sam_env_file is not None:
            c.sam_env_file.parent.mkdir(parents=True, exist_ok=True)
            c.sam_env_file.write_text(json.dumps(self.sam_local_environment(), indent=2) + "\n")
        functions = local_functions(template, permissions)
        os.environ.update(template.shared_environment())
        if str(FUNCTIONS_DIR) not in sys.path:
            sys.path.insert(0, str(FUNCTIONS_DIR))
        sqs = session.client("sqs")
        for fn in functions:
            for source in fn.spec.sqs_sources:
                queue = template.physical[source.queue_logical_id]
                self.pollers.append(
                    SqsPoller(fn, source, queue["QueueUrl"], queue["Arn"], sqs, LOCAL_REGION, retry_after=c.retry_after)
                )
        self.gateway = ApiGateway(functions, c.host, c.port, c.stage)
        self.gateway.start()
        if c.start_pollers:
            for poller in self.pollers:
                poller.start()

    def stop(self, grace: float = 10.0) -> None:
        """Stop taking work, give invocations under way up to `grace` seconds, stop the servers."""
        for poller in self.pollers:
            poller.request_stop()
        give_up_at = time.monotonic() + grace
        for poller in self.pollers:
            poller.join(max(0.0, give_up_at - time.monotonic()))
        self.pollers.clear()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
