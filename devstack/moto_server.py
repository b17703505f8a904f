"""`python -m devstack.moto_server HOST PORT`: moto's server, one request at a time.

DynamoDB applies each conditional write and transaction atomically; moto's server handles
requests on several threads without a lock around them, so two conditional writes can both
pass their checks. Serialising requests gives the local stack AWS's guarantee. Step Functions
executions run on moto's own worker threads and call back over HTTP, so they are not blocked.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialised(app: Any) -> Any:
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            # Drain the body inside the lock: the write happens while it is produced.
            return list(app(environ, start_response))

    return application


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this server when the process that started it is gone, however it ended: the server
    runs in a session of its own (so Ctrl-C reaches the stack first) and would outlive it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    exit_with_parent()
    run_simple(
        host,
        port,
        serialised(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
