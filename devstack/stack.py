"""Starting and stopping the whole local stack; `python -m devstack` and the e2e tests use this.

The handlers run in this process and, as on Lambda, read their settings (table names, queue
URLs, the AWS endpoint and credentials) from the environment: `DevStack` exports them into
`os.environ` in one place, `_export_environment`, and puts the previous values back on stop.
Importing the handlers needs `functions/` on `sys.path`; the entry points see to that
(`python -m devstack` in devstack/__main__.py, pytest through pyproject.toml's `pythonpath`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from devstack.api_gateway import ApiGateway
from devstack.event_sources import SqsPoller, pollers_for
from devstack.lambda_runtime import local_functions
from devstack.permissions import Permissions
from devstack.processes import ChildServer, start_moto, start_osmem
from devstack.resources import create_resources
from devstack.template import LOCAL_PSEUDO_PARAMETERS, LOCAL_REGION, Template, load_template


@dataclass
class DevStackConfig:
    port: int = 3000
    opensearch_port: int = 9200
    moto_port: int = 5000
    host: str = "127.0.0.1"
    stage: str = "dev"
    retry_after: int | None = None  # see SqsPoller
    start_pollers: bool = True  # False: tests that deliver queue messages themselves
    server_log: IO[bytes] | None = None
    sam_env_file: Path | None = None  # where to write `sam local invoke --env-vars` for this stack


class DevStack:
    def __init__(self, config: DevStackConfig) -> None:
        self.config = config
        self.servers: list[ChildServer] = []
        self.pollers: list[SqsPoller] = []
        self.gateway: ApiGateway | None = None
        self.template: Template | None = None
        self._replaced_environment: dict[str, str | None] = {}  # what stop() puts back

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

    def _export_environment(self, values: dict[str, str]) -> None:
        """The stack's one process-wide change: `values` into `os.environ`, the previous values
        kept for `_restore_environment`. Needed because the handlers run in this process and
        read their settings from the environment, as on Lambda (and the boto3 sessions made
        here read the endpoint and credentials from it)."""
        for name, value in values.items():
            self._replaced_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, previous in self._replaced_environment.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._replaced_environment.clear()

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

    def start(self) -> DevStack:
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
        self._export_environment(self._environment())
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
        self._export_environment(template.shared_environment())
        self.pollers = pollers_for(template, functions, session.client("sqs"), retry_after=c.retry_after)
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
        self._restore_environment()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
