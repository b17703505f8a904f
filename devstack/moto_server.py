"""`python -m devstack.moto_server HOST PORT`: moto's server, one request at a time.

DynamoDB applies each conditional write and transaction atomically; moto's server handles
requests on several threads without a lock around them, so two conditional writes can both
pass their checks. Serialising requests gives the local stack AWS's guarantee. Step Functions
executions run on moto's own worker threads and call back over HTTP, so they are not blocked.
"""

from __future__ import annotations

import sys
import threading
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


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(
        host,
        port,
        serialised(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
