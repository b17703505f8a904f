"""The portable end-to-end tests, collected again here to run against a stack on AWS."""

from tests.e2e.portable import *  # noqa: F403
