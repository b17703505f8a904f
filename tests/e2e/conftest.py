"""End-to-end tier: the local stack started as a user starts it (`python -m devstack`, what
`make run` runs), on free loopback ports, and driven over HTTP only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_stack import RunningStack, start_local_stack

__all__ = ["RunningStack"]


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with start_local_stack(tmp_path_factory.mktemp("devstack")) as stack:
        yield stack
