"""Whether a Docker engine answers here (the LocalStack tier and `sam local invoke` need one)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache


@cache
def docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0
