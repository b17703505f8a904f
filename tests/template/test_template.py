"""template.yaml: linted, valid SAM, builds, imports, and agrees with the code, events and OpenAPI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.template import LOCAL_PSEUDO_PARAMETERS, Template, load_template
from tests.support.events import event_names, load_event
from vector_tasks.handlers import openapi, read_api, submit_api

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".venv-tools" / "bin"
needs_tools = pytest.mark.skipif(
    not (TOOLS / "sam").exists(), reason="SAM CLI and cfn-lint live in .venv-tools: run `make tools` (make test does)"
)


def _python312() -> str | None:
    found = (
        subprocess.run(["pyenv", "prefix", "3.12"], capture_output=True, text=True, check=False)
        if shutil.which("pyenv")
        else None
    )
    if found is not None and found.returncode == 0:
        return str(Path(found.stdout.strip()) / "bin" / "python3.12")
    return shutil.which("python3.12")


def _sam_env() -> dict[str, str]:
    python = _python312()
    path = f"{Path(python).parent}:{os.environ['PATH']}" if python else os.environ["PATH"]
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "dummy",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "PATH": path,
    }


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=_sam_env(), capture_output=True, text=True, timeout=600, check=False)


@needs_tools
def test_cfn_lint_passes() -> None:
    result = _run(str(TOOLS / "cfn-lint"), "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_tools
def test_sam_validate_lint_passes() -> None:
    result = _run(str(TOOLS / "sam"), "validate", "--lint", "--template", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_tools
@pytest.mark.skipif(_python312() is None, reason="sam build for python3.12 needs a python3.12 (pyenv has one)")
def test_sam_build_produces_packages_whose_handlers_import(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = _run(str(TOOLS / "sam"), "build", "--template", "template.yaml", "--build-dir", str(build))
    assert result.returncode == 0, result.stdout + result.stderr
    template = Template(load_template(), {}, LOCAL_PSEUDO_PARAMETERS)
    for spec in template.functions():
        module = spec.handler.rsplit(".", 1)[0]
        python_path = f"{build / spec.logical_id}:{build / 'DependenciesLayer' / 'python'}"
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": python_path, "PYTHONNOUSERSITE": "1"}
        # The Lambda runtime brings boto3; the build venv's boto3 stands in for it here.
        check = subprocess.run(
            [str(_python312()), "-S", "-c", f"import sys; sys.path.append('{_boto3_dir()}'); import {module}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert check.returncode == 0, f"{spec.logical_id}: {check.stderr}"


def _boto3_dir() -> str:
    import boto3

    return str(Path(boto3.__file__).parent.parent)


def _template() -> Template:
    return Template(load_template(), {}, LOCAL_PSEUDO_PARAMETERS)


def test_every_route_of_the_code_is_an_explicit_api_event_of_its_function() -> None:
    functions = {spec.handler: set(spec.routes) for spec in _template().functions()}
    for module in (submit_api, read_api):
        declared = functions[f"{module.__name__}.lambda_handler"]
        served = json.loads(module.app.get_openapi_json_schema())["paths"]
        assert declared == {(method.upper(), path) for path, ops in served.items() for method in ops}
    all_paths = [path for routes in functions.values() for _, path in routes]
    assert not any("{proxy+}" in p for p in all_paths)


def test_every_function_has_an_event_that_fits_it() -> None:
    template = _template()
    covered: set[str] = set()
    for name in event_names():
        event = load_event(name)
        for spec in template.functions():
            if "httpMethod" in event and (event["httpMethod"], event["path"]) in spec.routes:
                covered.add(spec.logical_id)
            if "Records" in event:
                queue = event["Records"][0]["eventSourceARN"].rsplit(":", 1)[-1]
                if any(queue.endswith(f"-{s.queue_logical_id}") for s in spec.sqs_sources):
                    covered.add(spec.logical_id)
            if any(event == json.loads(s.input) for s in spec.schedules):
                covered.add(spec.logical_id)
    assert covered == {spec.logical_id for spec in template.functions()}


def test_committed_openapi_document_matches_the_code() -> None:
    committed = (REPO / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(openapi.document()), "openapi.json is stale: run `make openapi`"


def test_openapi_names_operations_as_the_spec_does() -> None:
    document: dict[str, Any] = json.loads(openapi.document())
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {
        "create_upsertion_task",
        "get_upsertion_task",
        "list_upsertion_tasks",
        "create_deletion_task",
        "get_deletion_task",
        "list_deletion_tasks",
    } <= operations
