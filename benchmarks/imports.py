"""`make benchmark-import`: an import of 200,000 lines from S3 on the local stack, against the
inline path of the throughput benchmark (b: 10,000 `local-hash-384` texts in one task), in one
run. Nothing is asserted; it prints:

- items/s end to end of each (from the POST until the task is done), and their ratio;
- the splitter's peak memory (its containers' resident high-water mark, what Lambda reports as
  Max Memory Used) against its MemorySize, beside its size when idle;
- the splitter's and the worker's CPU seconds per 1,000 items.

The 200,000 lines are four objects of 50,000 under one prefix, one of them gzip-compressed,
about 25 MB of JSON Lines; putting them in moto's S3 is not timed.

From the repository root: `make benchmark-import` (or `.venv/bin/python -m benchmarks.imports`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for entry in (REPO, REPO / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from benchmarks.local_http import call  # noqa: E402
from benchmarks.throughput import HASHED, Stack, count, create_bodies, machine, text_items, wait_until  # noqa: E402
from devstack.template import LOCAL_IMPORT_BUCKET  # noqa: E402

IMPORT_LINES = 200_000
OBJECTS = 4
INLINE_ITEMS = 10_000
MIB = 1024 * 1024


class Watch:
    """Polls a task until done; remembers when its source was first seen read to its end."""

    def __init__(self, api: str, task_id: str) -> None:
        self.api, self.task_id = api, task_id
        self.started = time.perf_counter()
        self.read_after: float | None = None

    def done(self) -> bool:
        status, task = call("GET", f"{self.api}/internal/upsertion-tasks/info?task_id={self.task_id}&failures_limit=1")
        if status == 200 and task["status"] in ("failed", "canceled"):
            raise RuntimeError(f"task {self.task_id} ended {task['status']}: {task['error']}")
        source = task.get("source") if status == 200 else None
        if self.read_after is None and source and source["complete"]:
            self.read_after = time.perf_counter() - self.started
        return status == 200 and task["status"] == "done"


def _function(stack: Stack, logical_id: str) -> Any:
    return next(f for f in stack.devstack.functions if f.spec.logical_id == logical_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--inline-items",
        type=int,
        default=INLINE_ITEMS,
        help="items of the inline path, in tasks of 10,000 (default 10,000, the throughput benchmark's b); "
        "more brings it towards the import's scale (200,000 made osmem close its connections here)",
    )
    inline_items = parser.parse_args().inline_items
    load_at_start = os.getloadavg()[0]
    texts = text_items(inline_items + IMPORT_LINES, seed=7)
    inline, imported = texts[:inline_items], texts[inline_items:]
    for n, item in enumerate(imported):
        item["object_id"] = f"imp-{n:06d}"
    with Stack() as stack:
        api = stack.api
        splitter, worker = _function(stack, "ImportSplitterFunction"), _function(stack, "TaskWorkerFunction")
        s3 = stack.devstack.aws.client("s3")
        per_object = IMPORT_LINES // OBJECTS
        size = 0
        for part in range(OBJECTS):
            body = "".join(json.dumps(i) + "\n" for i in imported[part * per_object : (part + 1) * per_object]).encode()
            size += len(body)
            key = f"bench/part-{part}.jsonl" + (".gz" if part == OBJECTS - 1 else "")
            s3.put_object(
                Bucket=LOCAL_IMPORT_BUCKET, Key=key, Body=gzip.compress(body) if key.endswith(".gz") else body
            )

        # The inline path, as the throughput benchmark's b: tasks of 10,000.
        bodies = create_bodies("upsertion", HASHED, inline, INLINE_ITEMS, "inline")
        started = time.perf_counter()
        for body in bodies:
            status, answer = call("POST", f"{api}/internal/upsertion-tasks/run", body)
            assert status == 202, answer
        for n in range(len(bodies)):
            wait_until(Watch(api, f"inline-{n}").done, timeout=1800)
        inline_seconds = time.perf_counter() - started

        idle = splitter.peak_memory_bytes()
        cpu = splitter.cpu_seconds(), worker.cpu_seconds()
        source = {"s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/bench/"}
        watch = Watch(api, "import")
        status, answer = call(
            "POST",
            f"{api}/internal/upsertion-tasks/run",
            json.dumps({"embedding_model_id": HASHED, "task_id": "import", "source": source}).encode(),
        )
        assert status == 202, answer
        wait_until(watch.done, timeout=1800, interval=1.0)
        import_seconds = time.perf_counter() - watch.started
        splitter_cpu, worker_cpu = splitter.cpu_seconds() - cpu[0], worker.cpu_seconds() - cpu[1]
        peak = splitter.peak_memory_bytes()
        indexed = count(stack.devstack.opensearch_url, f"vectors-{HASHED}")
        _, task = call("GET", f"{api}/internal/upsertion-tasks/info?task_id=import&failures_limit=1")

    inline_rate, import_rate = inline_items / inline_seconds, IMPORT_LINES / import_seconds
    print(f"\nImport from S3 on the local stack against the inline path; {machine(load_at_start)}")
    print(f"{'':46} {'items':>8} {'seconds':>8} {'items/s':>8}")
    label = f"inline: {len(bodies)} task{'s' if len(bodies) > 1 else ''} of local-hash-384 texts"
    print(f"{label:46} {inline_items:>8,} {inline_seconds:>8.1f} {inline_rate:>8.0f}")
    print(
        f"{'import: ' + str(OBJECTS) + ' objects (1 gzip), ' + f'{size / MIB:.0f} MiB':46} "
        f"{IMPORT_LINES:>8,} {import_seconds:>8.1f} {import_rate:>8.0f}"
    )
    print(f"import items/s against inline items/s: {import_rate / inline_rate:.2f}")
    if watch.read_after is not None:
        print(f"the source was read to its end after {watch.read_after:.1f} s (then the workers caught up)")
    print(
        f"splitter peak memory (VmHWM): {peak / MIB:.0f} MiB of its {splitter.spec.memory_size} MiB "
        f"MemorySize; {idle / MIB:.0f} MiB when idle after start"
    )
    per_1000 = IMPORT_LINES / 1000
    print(f"CPU per 1,000 items: splitter {splitter_cpu / per_1000:.3f} s, worker {worker_cpu / per_1000:.3f} s")
    print(f"task: {task['status']}, progress {task['progress']}, source {task['source']}; index counts {indexed:,}")


if __name__ == "__main__":
    main()
