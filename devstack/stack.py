"""Starting and stopping the whole local stack; `python -m devstack` and the e2e tests use this.

Nothing here changes the process it runs in: each function runs in a container process of its
own with its own environment (devstack.lambda_runtime.ContainerFunction), and the clients the
stack makes for itself (resources, SQS pollers) are given the local endpoint and credentials
explicitly (`LocalAws`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config

from devstack.api_gateway import ApiGateway
from devstack.event_sources import EVENT_SOURCE_AGENT, EventSourcePoller, pollers_for
from devstack.lambda_runtime import ContainerFunction, ScaledFunction, container_functions, stop_all
from devstack.permissions import Permissions
from devstack.processes import ChildServer, start_moto, start_osmem
from devstack.resources import create_import_buckets, create_resources
from devstack.schedules import ScheduledInvoker
from devstack.template import (
    LOCAL_PSEUDO_PARAMETERS,
    LOCAL_REGION,
    Template,
    load_template,
    local_import_parameters,
    local_opensearch_parameters,
)

# moto accepts any credentials; these stand in for the role's.
_DUMMY_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "session_token": "testing"}
# How long the containers may take to import their handlers when the stack starts.
CONTAINER_START_SECONDS = 60.0


@dataclass(frozen=True)
class LocalAws:
    """The local AWS endpoint (moto) and its dummy credentials, for the stack's own clients."""

    endpoint_url: str
    region: str = LOCAL_REGION

    def environment(self) -> dict[str, str]:
        """What a function sees of it: the endpoint, the role's (dummy) credentials, the region."""
        credentials = {f"AWS_{name.upper()}": value for name, value in _DUMMY_CREDENTIALS.items()}
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **credentials,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def _session(self) -> boto3.Session:
        return boto3.Session(
            **{f"aws_{name}": value for name, value in _DUMMY_CREDENTIALS.items()}, region_name=self.region
        )

    def client(self, service: str, user_agent_extra: str | None = None) -> Any:
        config = Config(user_agent_extra=user_agent_extra) if user_agent_extra else None
        return self._session().client(service, endpoint_url=self.endpoint_url, config=config)  # type: ignore[call-overload]

    def resource(self, service: str) -> Any:
        return self._session().resource(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


LOCAL_MAX_CONCURRENCY = 2


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
    # Added to every function's environment (e.g. POWERTOOLS_LOG_LEVEL), as `sam local
    # invoke --env-vars` would; nothing else of this process's environment reaches a function.
    function_overrides: dict[str, str] = field(default_factory=dict)
    # Template parameter values besides the local ones (as `sam deploy --parameter-overrides`).
    parameters: dict[str, str] = field(default_factory=dict)
    # Run every schedule of the template this often (seconds) instead of its rate; None keeps it.
    schedule_every: float | None = None
    start_schedules: bool = True  # False: tests that invoke the scheduled functions themselves
    # Invocations at once of a function behind an SQS event source: its MaximumConcurrency, at
    # most this (a core each here, where AWS gives each its own).
    max_concurrency: int = LOCAL_MAX_CONCURRENCY


class DevStack:
    def __init__(self, config: DevStackConfig) -> None:
        self.config = config
        self.servers: list[ChildServer] = []
        self.functions: list[ContainerFunction | ScaledFunction] = []
        self.pollers: list[EventSourcePoller] = []
        self.schedules: list[ScheduledInvoker] = []
        self.gateway: ApiGateway | None = None
        self.template: Template | None = None
        self.aws = LocalAws(f"http://{config.host}:{config.moto_port}")

    @property
    def api_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    @property
    def opensearch_url(self) -> str:
        return f"http://{self.config.host}:{self.config.opensearch_port}"

    @property
    def aws_endpoint_url(self) -> str:
        return self.aws.endpoint_url

    def _stack_environment(self) -> dict[str, str]:
        """What every function sees besides its template variables: the local endpoint and
        credentials, tracing and metrics off (no X-Ray daemon, no CloudWatch), the overrides."""
        return {
            **self.aws.environment(),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            **self.config.function_overrides,
        }

    def sam_local_environment(self) -> dict[str, dict[str, str]]:
        """Per function, what `sam local invoke --env-vars` needs to run it against this stack:
        its template variables resolved to the local resources, plus the endpoints and dummy
        credentials. The container must share the host's network (`--docker-network host`),
        since the servers listen on loopback only."""
        assert self.template is not None
        return {
            spec.logical_id: {**self.template.function_environment(spec), **self._stack_environment()}
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
        template = Template(
            load_template(),
            parameters={
                "Stage": c.stage,
                **local_opensearch_parameters(self.opensearch_url),
                **local_import_parameters(),
                **c.parameters,  # e.g. an OpenSearch endpoint in front of osmem (a counting proxy)
            },
            pseudo=LOCAL_PSEUDO_PARAMETERS,
        )
        # Before any client exists: they copy the permission hook when built.
        permissions = Permissions(template)
        create_resources(template, self.aws, permissions=permissions)
        create_import_buckets(template, self.aws)
        self.template = template
        if c.sam_env_file is not None:
            c.sam_env_file.parent.mkdir(parents=True, exist_ok=True)
            c.sam_env_file.write_text(json.dumps(self.sam_local_environment(), indent=2) + "\n")
        self.functions = container_functions(template, permissions, self._stack_environment(), c.max_concurrency)
        for function in self.functions:
            function.start()  # the containers import their handlers side by side
        # The event sources say who they are, so that the moto server counts their calls apart.
        self.pollers = pollers_for(
            template,
            self.functions,
            self.aws.client("sqs", user_agent_extra=EVENT_SOURCE_AGENT),
            self.aws.client("dynamodbstreams", user_agent_extra=EVENT_SOURCE_AGENT),
            c.retry_after,
        )
        self.schedules = [
            ScheduledInvoker(function, source, c.schedule_every)
            for function in self.functions
            for source in function.spec.schedules
        ]
        self.gateway = ApiGateway(self.functions, c.host, c.port, c.stage)
        self.gateway.start()
        for function in self.functions:
            function.wait_ready(CONTAINER_START_SECONDS)
        if c.start_pollers:
            for poller in self.pollers:
                poller.start()
        if c.start_schedules:
            for schedule in self.schedules:
                schedule.start()

    def stop(self, grace: float = 10.0) -> None:
        """Stop taking work, give invocations under way up to `grace` seconds, then stop the
        containers and the servers."""
        sources: list[EventSourcePoller | ScheduledInvoker] = [*self.pollers, *self.schedules]
        for source in sources:
            source.request_stop()
        give_up_at = time.monotonic() + grace
        for source in sources:
            source.join(max(0.0, give_up_at - time.monotonic()))
        self.pollers.clear()
        self.schedules.clear()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        stop_all(self.functions)
        self.functions.clear()
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
