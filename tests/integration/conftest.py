"""Integration tier: handlers in-process against moto (mock_aws) and an osmem clone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from opensearchpy import OpenSearch

from tests.support.in_process import InProcessStack


@pytest.fixture
def stack(aws_credentials: None, osmem_clone, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessStack]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        built = InProcessStack(osmem_clone.url)
        for name, value in built.environment.items():
            monkeypatch.setenv(name, value)
        yield built


@pytest.fixture
def opensearch(osmem_clone) -> OpenSearch:
    return OpenSearch(hosts=[osmem_clone.url])
