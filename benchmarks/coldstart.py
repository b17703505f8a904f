"""Cold-start import cost of each function of template.yaml (`make coldstart`).

For every `AWS::Serverless::Function` the handler module named by its `Handler` is imported in
a fresh interpreter, five times, with the function's environment (Globals and its own
variables; values that are CloudFormation expressions become dummies, as nothing is read from
them at import). Printed per function: the best of the five import times, and which of the
heavy packages the import loaded. Interpreter start-up is not counted; only the import is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.template import load_template

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
# Package (as in sys.modules) -> the name printed for it.
HEAVY = {
    "numpy": "numpy",
    "opensearchpy": "opensearchpy",
    "boto3": "boto3",
    "botocore": "botocore",
    "pydantic": "pydantic",
    "aws_lambda_powertools": "powertools",
    "aws_xray_sdk": "xray_sdk",
    "vector_tasks.adapters.embedders": "embedders",
}

# Runs in the fresh interpreter: times the import, then lists the heavy packages it loaded.
_PROBE = """
import importlib, json, sys, time
heavy = json.loads(sys.argv[2])
started = time.perf_counter()
importlib.import_module(sys.argv[1])
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "loaded": [name for name in heavy if name in sys.modules]}))
"""


@dataclass
class Measurement:
    function: str
    module: str
    best_seconds: float
    loaded: list[str]


def function_modules(template: dict[str, Any]) -> dict[str, str]:
    """Function logical id -> its handler module, in template order."""
    return {
        logical_id: resource["Properties"]["Handler"].rsplit(".", 1)[0]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_environment(template: dict[str, Any], logical_id: str) -> dict[str, str]:
    """The function's variables as Lambda would set them, CloudFormation expressions as dummies."""
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    variables = {**shared, **own}
    env = {name: value if isinstance(value, str) else f"dummy-{name.lower()}" for name, value in variables.items()}
    return {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", **env}


def measure(
    function: str, module: str, env: dict[str, str], runs: int = RUNS, functions_dir: Path = ROOT / "functions"
) -> Measurement:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    base["PYTHONPATH"] = str(functions_dir)
    times: list[float] = []
    loaded: list[str] = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, module, json.dumps(list(HEAVY))],
            env={**base, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        probe = json.loads(result.stdout.strip().splitlines()[-1])
        times.append(probe["seconds"])
        loaded = probe["loaded"]
    return Measurement(function, module, min(times), [HEAVY[name] for name in loaded])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--functions", type=Path, default=ROOT / "functions", help="the package's parent folder (another checkout's)"
    )
    functions_dir: Path = parser.parse_args().functions.resolve()
    template = load_template()
    print(f"Import time of each function's handler module, best of {RUNS} fresh interpreters ({os.cpu_count()} cores)")
    print(f"{'function':<26} {'module':<38} {'import s':>8}  heavy packages loaded")
    for function, module in function_modules(template).items():
        m = measure(function, module, function_environment(template, function), functions_dir=functions_dir)
        print(f"{m.function:<26} {m.module:<38} {m.best_seconds:>8.3f}  {', '.join(m.loaded) or '-'}")


if __name__ == "__main__":
    main()
