"""Integration tier: handlers in-process against moto (mock_aws) and an osmem clone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws
from opensearchpy import OpenSearch

from devstack.template import load_template
from tests.support.in_process import InProcessStack


@pytest.fixture
def template_document(request: pytest.FixtureRequest) -> dict[str, Any]:
    """template.yaml as loaded; a test edits it with
    `@pytest.mark.parametrize("template_document", [edit], indirect=True)`, edit(document) -> None."""
    document = load_template()
    edit: Callable[[dict[str, Any]], None] | None = getattr(request, "param", None)
    if edit is not None:
        edit(document)
    return document


@pytest.fixture
def stack(
    aws_credentials: None, osmem_clone, template_document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[InProcessStack]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        built = InProcessStack(osmem_clone.url, template_document)
        for name, value in built.environment.items():
            monkeypatch.setenv(name, value)
        yield built


@pytest.fixture
def opensearch(osmem_clone) -> OpenSearch:
    return OpenSearch(hosts=[osmem_clone.url])
