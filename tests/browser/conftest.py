"""Browser tier: the operator console `make run` serves, in Debian's chromium driven by
playwright-core (from package.json; it never downloads a browser), against the local stack."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_stack import REPO, RunningStack, start_local_stack

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by `make test` (the chromium target)
PLAYWRIGHT = REPO / "node_modules" / "playwright-core"


@pytest.fixture(scope="package")
def browser_tools() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's with apt-get, which failed here")
    # playwright-core comes with `npm ci` (make test): missing, it is a broken set-up, not a skip.
    assert PLAYWRIGHT.is_dir(), f"{PLAYWRIGHT} is missing: run `npm ci` (make test does)"
    assert shutil.which("node"), "node is needed to run playwright-core"


@pytest.fixture(scope="package")
def local_stack(browser_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with start_local_stack(tmp_path_factory.mktemp("devstack")) as stack:
        yield stack
