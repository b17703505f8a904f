"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.moto_server import (
    attribute_values_picked_directly,
    lighter_transaction_snapshots,
    sends_without_counting_the_queue,
    transactions_limited_to_4_mb,
)
from vector_tasks import wiring

# moto in this process (the integration tier's mock_aws) snapshots transactions, refuses one past
# 4 MB, sends messages without counting the queue and serialises AttributeValues as the local
# stack's moto server does.
lighter_transaction_snapshots()
transactions_limited_to_4_mb()
sends_without_counting_the_queue()
attribute_values_picked_directly()

# Each tier's directory and the marker (declared in pyproject.toml) its tests carry, so that
# `pytest -m "not e2e"` and the like select by tier. `slow` is applied where it belongs
# (tests/e2e/test_scale.py, tests/cli/test_submit.py).
_TIER_MARKERS = {
    "e2e": "e2e",
    "contract": "contract",
    "clients": "clients",
    "cli": "cli",
    "browser": "browser",
    "localstack": "localstack",
    "aws": "aws",
}
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        relative = item.path.relative_to(_TESTS) if item.path.is_relative_to(_TESTS) else None
        marker = _TIER_MARKERS.get(relative.parts[0]) if relative is not None and relative.parts else None
        if marker is not None:
            item.add_marker(marker)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, and no endpoint override leaking in from a shell."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "vector-ingestion-tests",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def fresh_wiring() -> Iterator[None]:
    """Services are cached per process; each test builds its own from its own environment."""
    wiring.reset()
    yield
    wiring.reset()
