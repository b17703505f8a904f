"""The portable end-to-end tests, collected again here to run against the LocalStack `local_stack`."""

from tests.e2e.portable import *  # noqa: F403
