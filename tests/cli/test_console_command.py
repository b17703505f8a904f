"""`vector-tasks console`: the operator console for any endpoint, here the local stack's, served
on 127.0.0.1 until the process is stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

from tests.cli.conftest import VECTOR_TASKS
from tests.support.local_stack import RunningStack, free_port
from vector_tasks_client.console import TOKEN_HEADER


def test_the_console_command_serves_the_page_and_forwards_its_api_calls(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "VECTOR_TASKS_CONFIG": str(tmp_path / "none.toml")}
    argv = [str(VECTOR_TASKS), "--endpoint", local_stack.api.base_url, "console", "--port", str(port)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == f"Console:    http://127.0.0.1:{port}\n"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                page = response.read().decode()
            token = re.search(r'name="console-token" content="([^"]+)"', page)
            assert token, page
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/internal/deletion-tasks/list?limit=1", headers={TOKEN_HEADER: token[1]}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.load(response)["limit"] == 1
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert err == f"Serving the API at {local_stack.api.base_url} (unsigned); Ctrl-C stops it.\n"
