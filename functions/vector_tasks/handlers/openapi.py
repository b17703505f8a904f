"""The OpenAPI document of every route, from the routers themselves (`make openapi` writes it)."""

from __future__ import annotations

from vector_tasks.handlers import read_api, submit_api, transition_api
from vector_tasks.handlers.http import build_resolver

TITLE = "Vector ingestion tasks"
VERSION = "1.0.0"
DESCRIPTION = (
    "Asynchronous upsertion and deletion tasks against the OpenSearch k-NN index of a deployed "
    "embedding model. Requests are signed with AWS SigV4 (IAM auth on API Gateway)."
)


def document() -> str:
    app = build_resolver(submit_api.router, read_api.router, transition_api.router)
    return app.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION) + "\n"


if __name__ == "__main__":
    print(document(), end="")
