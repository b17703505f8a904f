"""`python -m devstack` (what `make run` calls): start the local stack and serve until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from devstack.stack import LOCAL_MAX_CONCURRENCY, DevStack, DevStackConfig
from vector_tasks_client import VectorTasksClient
from vector_tasks_client.console import DEFAULT_PORT as CONSOLE_PORT
from vector_tasks_client.console import ConsoleServer

# Variables of this process's environment that reach every function (as `sam local invoke
# --env-vars` would set them); nothing else of it does.
FUNCTION_OVERRIDES = ("POWERTOOLS_LOG_LEVEL",)
# How long Ctrl-C waits for invocations under way; the state is in memory and goes anyway.
STOP_GRACE_SECONDS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)), help="API port (env PORT)")
    parser.add_argument(
        "--opensearch-port", type=int, default=int(os.environ.get("OPENSEARCH_PORT", 9200)), help="env OPENSEARCH_PORT"
    )
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)), help="env MOTO_PORT")
    parser.add_argument(
        "--console-port",
        type=int,
        default=int(os.environ.get("CONSOLE_PORT", CONSOLE_PORT)),
        help="operator console port (env CONSOLE_PORT)",
    )
    parser.add_argument(
        "--retry-after",
        type=int,
        default=int(os.environ["RETRY_AFTER"]) if os.environ.get("RETRY_AFTER") else None,
        help="seconds before a failed SQS record is redelivered (default: the queue's visibility timeout)",
    )
    parser.add_argument(
        "--reconcile-every",
        type=float,
        default=float(os.environ["RECONCILE_EVERY"]) if os.environ.get("RECONCILE_EVERY") else None,
        help="seconds between reconciler runs (env RECONCILE_EVERY; default: the template's ReconcileSchedule)",
    )
    parser.add_argument(
        "--reconcile-stall-after",
        type=int,
        default=int(os.environ["RECONCILE_STALL_AFTER"]) if os.environ.get("RECONCILE_STALL_AFTER") else None,
        help="seconds without progress before the reconciler acts on a task (env RECONCILE_STALL_AFTER; "
        "default: the template's ReconcileStallAfterSeconds)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=int(os.environ.get("MAX_CONCURRENCY", LOCAL_MAX_CONCURRENCY)),
        help="invocations at once of the worker (its MaximumConcurrency, at most this; env MAX_CONCURRENCY)",
    )
    parser.add_argument("--server-log", type=Path, default=Path(".devstack/servers.log"), help="moto and osmem output")
    parser.add_argument(
        "--sam-env-file",
        type=Path,
        default=Path(".devstack/sam-env.json"),
        help="written at start: `sam local invoke --env-vars` pointing each function at this stack (make invoke)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for chatty in ("botocore", "boto3", "urllib3", "opensearch"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    args.server_log.parent.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with args.server_log.open("ab") as server_log:
        config = DevStackConfig(
            port=args.port,
            opensearch_port=args.opensearch_port,
            moto_port=args.moto_port,
            retry_after=args.retry_after,
            server_log=server_log,
            sam_env_file=args.sam_env_file,
            function_overrides={name: os.environ[name] for name in FUNCTION_OVERRIDES if name in os.environ},
            schedule_every=args.reconcile_every,
            max_concurrency=args.max_concurrency,
            parameters=(
                {}
                if args.reconcile_stall_after is None
                else {"ReconcileStallAfterSeconds": str(args.reconcile_stall_after)}
            ),
        )
        stack = DevStack(config).start()
        try:
            console = ConsoleServer(VectorTasksClient(stack.api_url), port=args.console_port).start()
        except OSError as exc:
            stack.stop()
            parser.exit(1, f"The console cannot listen on port {args.console_port}: {exc.strerror or exc}\n")
        print(f"API:        {stack.api_url}", flush=True)
        print(f"OpenSearch: {stack.opensearch_url}", flush=True)
        print(f"AWS (moto): {stack.aws_endpoint_url}", flush=True)
        print(f"Console:    {console.url}", flush=True)
        print("Local stack ready; Ctrl-C stops it.", flush=True)
        stopping.wait()
        print("Stopping the local stack.", file=sys.stderr, flush=True)
        # Invocations cut short by the stop would log the servers' disappearance: nobody is
        # left to read it, and the one line above says what happened.
        logging.disable(logging.CRITICAL)
        console.stop()
        stack.stop(grace=STOP_GRACE_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
