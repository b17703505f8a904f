"""AWS tier: the portable end-to-end suite against a stack deployed with `make deploy`.

`make test-aws` runs it (STACK=<stack name>, default vector-ingestion-dev), signing every
request with SigV4 from the caller's AWS credentials: `execute-api` for the API, `es` for the
domain (the caller needs `execute-api:Invoke` and `es:ESHttp*`). Elsewhere it skips with the
reason. It writes tasks and vectors into that stack: point it at a test deployment.
"""

from __future__ import annotations

import os
import uuid

import boto3
import pytest

from tests.support.http import HttpClient, SigV4Signer
from tests.support.local_stack import RunningStack


@pytest.fixture(scope="session")
def local_stack() -> RunningStack:
    stack = os.environ.get("VECTOR_TASKS_AWS_STACK")
    if not stack:
        pytest.skip("the AWS tier runs with `make test-aws STACK=<deployed stack>` and your AWS credentials")
    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        pytest.skip("no AWS credentials found (environment, profile or instance role)")
    region = session.region_name or "us-east-1"
    described = session.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}
    return RunningStack(
        run_tag=uuid.uuid4().hex[:8],
        api=HttpClient(outputs["ApiUrl"], sign=SigV4Signer(credentials, region, "execute-api")),
        opensearch=HttpClient(outputs["OpenSearchEndpoint"], sign=SigV4Signer(credentials, region, "es")),
    )
