"""`make benchmark`: ingestion throughput on the local stack against a direct `_bulk` of the same
documents into the same osmem, in one run, printed as one table. Nothing is asserted.

  a. 10,000 `precomputed-384` items in 10 tasks of 1,000, end to end (from the first POST until
     the index counts all 10,000 documents) against the fastest direct `helpers.bulk` of the same
     documents with the same mapping (compression on and off, several chunk sizes: the fastest
     is the anchor);
  b. 10,000 `local-hash-384` texts in one task, against embedding and bulking in one process;
  c. the deletion of those 10,000 ids in one task, against a direct bulk delete;
  d. AWS and OpenSearch requests per 1,000 items, by operation, the SQS event source's own
     calls (receive, delete, visibility) apart, counted in a second, counting pass (the
     OpenSearch requests through a counting proxy, kept out of the timed runs);
  e. the worker's CPU seconds per 1,000 items (its containers' user + system time).

Targets, printed beside the figures: a, b and c at least 0.8 of the direct path; d at most 30
AWS requests per 1,000 items.

From the repository root: `make benchmark` (or `.venv/bin/python -m benchmarks.throughput`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for entry in (REPO, REPO / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from opensearchpy import OpenSearch, helpers  # noqa: E402

from benchmarks.local_http import call, free_port  # noqa: E402
from devstack.moto_server import COUNTS_PATH  # noqa: E402
from devstack.stack import DevStack, DevStackConfig  # noqa: E402
from vector_tasks.adapters.embedders.hashing import HashingEmbedder  # noqa: E402
from vector_tasks.adapters.vector_index import index_body  # noqa: E402
from vector_tasks.domain.registry import default_registry  # noqa: E402

ITEMS = 10_000
TASK_ITEMS = 1_000
DIMENSION = 384
PRECOMPUTED, HASHED = "precomputed-384", "local-hash-384"
TARGET_RATIO = 0.8
TARGET_AWS_PER_1000 = 30
# The direct path's tries: the fastest is the anchor.
DIRECT_CHUNK_SIZES = (100, 500, 2000)
DIRECT_COMPRESSION = (False, True)
COUNTING_ITEMS = 2_000  # the counting pass's workloads (requests scale with items)


# -- the workloads -------------------------------------------------------------------------------


def vectors_items(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` precomputed-384 items: a random unit-ish vector (6 decimals) and a little payload."""
    rng = random.Random(seed)
    return [
        {
            "object_id": f"pre-{n:05d}",
            "payload": {"vector": [round(rng.gauss(0, 1), 6) for _ in range(DIMENSION)], "title": f"document {n}"},
            "item_info": {"source": "benchmark"},
        }
        for n in range(count)
    ]


_WORDS = [
    *("vector", "search", "index", "embedding", "model", "query", "document", "task"),
    *("chunk", "worker", "queue", "shard", "replica", "batch", "retry", "version"),
]


def text_items(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "object_id": f"txt-{n:05d}",
            "payload": {"text": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 24)))},
        }
        for n in range(count)
    ]


# -- the direct path -----------------------------------------------------------------------------


@dataclass
class Timing:
    seconds: float
    setup: str

    def per_second(self, items: int) -> float:
        return items / self.seconds


def fresh_index(client: OpenSearch, model: str) -> str:
    spec = default_registry().get(model)
    client.indices.delete(index=spec.index_name, ignore_unavailable=True)
    client.indices.create(index=spec.index_name, body=index_body(spec))
    return spec.index_name


def direct_bulk(
    url: str,
    model: str,
    actions: Callable[[str], Iterator[dict[str, Any]]],
    prepare: Callable[[OpenSearch, str], None] | None = None,
) -> Timing:
    """The fastest of `helpers.bulk` over every compression and chunk size tried."""
    best: Timing | None = None
    for compress in DIRECT_COMPRESSION:
        client = OpenSearch(hosts=[url], http_compress=compress, timeout=120)
        for chunk_size in DIRECT_CHUNK_SIZES:
            index = fresh_index(client, model)
            if prepare is not None:
                prepare(client, index)
            started = time.perf_counter()
            _, errors = helpers.bulk(
                client, actions(index), chunk_size=chunk_size, max_chunk_bytes=100 * 1024 * 1024, raise_on_error=False
            )
            elapsed = time.perf_counter() - started
            assert not [e for e in errors if "delete" not in e], errors[:3]
            setup = f"chunks of {chunk_size}, {'gzip' if compress else 'no compression'}"
            if best is None or elapsed < best.seconds:
                best = Timing(elapsed, setup)
    assert best is not None
    return best


def document(item: dict[str, Any], vector: Any, payload: dict[str, Any] | None, task_id: str) -> dict[str, Any]:
    """The document the worker writes for an item (adapters/vector_index.py)."""
    source: dict[str, Any] = {
        "object_id": item["object_id"],
        "embedding": vector,
        "task_id": task_id,
        "indexed_at": datetime.now(UTC).isoformat(),
    }
    if payload is not None:
        source["payload"] = payload
    if item.get("item_info") is not None:
        source["item_info"] = item["item_info"]
    return source


def direct_precomputed(url: str, items: list[dict[str, Any]]) -> Timing:
    def actions(index: str) -> Iterator[dict[str, Any]]:
        for item in items:
            payload = {k: v for k, v in item["payload"].items() if k != "vector"}
            yield {
                "_index": index,
                "_id": item["object_id"],
                "_source": document(item, item["payload"]["vector"], payload, "direct"),
            }

    return direct_bulk(url, PRECOMPUTED, actions)


def direct_hashed(url: str, items: list[dict[str, Any]]) -> Timing:
    """Embedding included: the same embedder the worker uses, then the bulk, in this process."""
    embedder = HashingEmbedder(DIMENSION)

    def actions(index: str) -> Iterator[dict[str, Any]]:
        for start in range(0, len(items), 100):
            batch = items[start : start + 100]
            vectors = embedder.embed([i["payload"]["text"] for i in batch], time.monotonic() + 60)
            for item, vector in zip(batch, vectors, strict=True):
                assert not isinstance(vector, str), vector
                yield {
                    "_index": index,
                    "_id": item["object_id"],
                    "_source": document(item, vector.tolist(), item["payload"], "direct"),
                }

    return direct_bulk(url, HASHED, actions)


def direct_delete(url: str, items: list[dict[str, Any]]) -> Timing:
    """Deleting documents that are there (each try indexes them first, untimed)."""
    ids = [i["object_id"] for i in items]

    def fill(client: OpenSearch, index: str) -> None:
        vector = [0.1] * DIMENSION
        helpers.bulk(
            client,
            ({"_index": index, "_id": oid, "_source": {"object_id": oid, "embedding": vector}} for oid in ids),
            chunk_size=2000,
        )
        client.indices.refresh(index=index)

    def actions(index: str) -> Iterator[dict[str, Any]]:
        for oid in ids:
            yield {"_op_type": "delete", "_index": index, "_id": oid}

    return direct_bulk(url, HASHED, actions, prepare=fill)


# -- end to end on the local stack ---------------------------------------------------------------


def count(opensearch_url: str, index: str) -> int:
    call("POST", f"{opensearch_url}/{index}/_refresh")
    status, answer = call("GET", f"{opensearch_url}/{index}/_count")
    return int(answer["count"]) if status == 200 else 0


def wait_until(check: Callable[[], bool], timeout: float = 600, interval: float = 0.25) -> None:
    """Poll `check`: four times a second, so that the polling (a refresh and a count each time)
    takes little from the stack it measures, and adds at most a quarter of a second."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the local stack did not finish within the benchmark's bound")
        time.sleep(interval)


@dataclass
class EndToEnd:
    seconds: float
    worker_cpu: float  # seconds


class Stack:
    """The local stack as `make run` serves it, in this process; the worker's CPU and the AWS
    requests counted by the moto server."""

    def __init__(self, opensearch_port: int | None = None) -> None:
        config = DevStackConfig(
            port=free_port(),
            opensearch_port=opensearch_port or free_port(),
            moto_port=free_port(),
            retry_after=1,
            function_overrides={"POWERTOOLS_LOG_LEVEL": "WARNING"},
            server_log=open(os.devnull, "wb"),  # noqa: SIM115 - the servers' request lines, unread
        )
        self.devstack = DevStack(config)

    def __enter__(self) -> Stack:
        self.devstack.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.devstack.stop()

    @property
    def api(self) -> str:
        return self.devstack.api_url

    def worker_cpu(self) -> float:
        return sum(f.cpu_seconds() for f in self.devstack.functions if f.spec.logical_id == "TaskWorkerFunction")

    def aws_requests(self, reset: bool = False) -> list[dict[str, Any]]:
        status, rows = call("DELETE" if reset else "GET", f"{self.devstack.aws_endpoint_url}{COUNTS_PATH}")
        assert status == 200
        return list(rows)

    def run(self, kind: str, model: str, bodies: list[bytes], done: Callable[[], bool]) -> EndToEnd:
        """POST every body, then wait for `done`; timed from the first POST."""
        cpu = self.worker_cpu()
        started = time.perf_counter()
        for body in bodies:
            status, answer = call("POST", f"{self.api}/internal/{kind}-tasks/run", body)
            assert status == 202, answer
        wait_until(done)
        return EndToEnd(time.perf_counter() - started, self.worker_cpu() - cpu)


def create_bodies(kind: str, model: str, items: list[Any], per_task: int, tag: str) -> list[bytes]:
    field_name = "items" if kind == "upsertion" else "object_ids"
    return [
        json.dumps(
            {"embedding_model_id": model, "task_id": f"{tag}-{n}", field_name: items[start : start + per_task]}
        ).encode()
        for n, start in enumerate(range(0, len(items), per_task))
    ]


# -- counting OpenSearch's requests ------------------------------------------------------------------


class CountingProxy:
    """Forwards to osmem, counting requests by method and path shape (kept out of timed runs)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.counts: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = self.path.split("?", 1)[0]
                shape = "/".join(p if p.startswith("_") else "{index}" for p in path.split("/") if p)
                proxy.counts[f"{self.command} /{shape}"] += 1
                forwarded = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command)
                for name in ("Content-Type", "Content-Encoding"):
                    if self.headers.get(name):
                        forwarded.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(forwarded, timeout=120) as response:
                        status, data, headers = response.status, response.read(), dict(response.headers)
                except urllib.error.HTTPError as error:
                    status, data, headers = error.code, error.read(), dict(error.headers)
                self.send_response(status)
                self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    items: int
    e2e: EndToEnd
    direct: Timing

    @property
    def ratio(self) -> float:
        return self.direct.seconds / self.e2e.seconds


def timed_runs(stack: Stack, precomputed: list[dict[str, Any]], texts: list[dict[str, Any]]) -> list[Row]:
    url = stack.devstack.opensearch_url
    client = OpenSearch(hosts=[url], timeout=120)
    direct = (direct_precomputed(url, precomputed), direct_hashed(url, texts), direct_delete(url, texts))
    rows: list[Row] = []

    index = fresh_index(client, PRECOMPUTED)
    bodies = create_bodies("upsertion", PRECOMPUTED, precomputed, TASK_ITEMS, "bench-pre")
    e2e = stack.run("upsertion", PRECOMPUTED, bodies, lambda: count(url, index) >= len(precomputed))
    rows.append(
        Row(
            f"a. {len(precomputed):,} {PRECOMPUTED}, {len(bodies)} tasks of {TASK_ITEMS:,}",
            len(precomputed),
            e2e,
            direct[0],
        )
    )

    index = fresh_index(client, HASHED)
    bodies = create_bodies("upsertion", HASHED, texts, len(texts), "bench-txt")
    e2e = stack.run("upsertion", HASHED, bodies, lambda: count(url, index) >= len(texts))
    rows.append(Row(f"b. {len(texts):,} {HASHED} texts, 1 task", len(texts), e2e, direct[1]))

    ids = [i["object_id"] for i in texts]
    bodies = create_bodies("deletion", HASHED, ids, len(ids), "bench-del")
    e2e = stack.run("deletion", HASHED, bodies, lambda: count(url, index) == 0)
    rows.append(Row(f"c. deleting those {len(ids):,} ids, 1 task", len(ids), e2e, direct[2]))
    return rows


def counting_run(
    precomputed: list[dict[str, Any]], texts: list[dict[str, Any]]
) -> dict[str, tuple[Counter[str], Counter[str], Counter[str]]]:
    """Per workload: (AWS requests of the functions and state machines, the event source's own,
    OpenSearch's), each per 1,000 items."""
    osmem_port = free_port()
    proxy = CountingProxy(f"http://127.0.0.1:{osmem_port}")
    stack = Stack(opensearch_port=osmem_port)
    stack.devstack.config.parameters["ExistingOpenSearchEndpoint"] = proxy.url
    out: dict[str, tuple[Counter[str], Counter[str], Counter[str]]] = {}
    try:
        with stack:
            url = stack.devstack.opensearch_url
            client = OpenSearch(hosts=[url], timeout=120)
            workloads = [
                ("a", "upsertion", PRECOMPUTED, precomputed, TASK_ITEMS),
                ("b", "upsertion", HASHED, texts, len(texts)),
                ("c", "deletion", HASHED, [t["object_id"] for t in texts], len(texts)),
            ]
            for label, kind, model, items, per_task in workloads:
                index = default_registry().get(model).index_name
                if kind == "upsertion":
                    fresh_index(client, model)
                stack.aws_requests(reset=True)
                proxy.counts.clear()
                bodies = create_bodies(kind, model, items, per_task, f"count-{label}")
                target = len(items) if kind == "upsertion" else 0

                def indexed(index: str = index, target: int = target) -> bool:
                    return count(url, index) == target

                def finished(kind: str = kind, label: str = label, tasks: int = len(bodies)) -> bool:
                    return all_done(stack.api, kind, f"count-{label}", tasks)

                stack.run(kind, model, bodies, indexed)
                wait_until(finished)
                aws, source = Counter[str](), Counter[str]()
                for row in stack.aws_requests():
                    name = f"{row['service']}.{row['operation']}"
                    (source if row["caller"] == "event source" else aws)[name] += row["count"]
                scale = 1000 / len(items)
                out[label] = (
                    Counter({k: v * scale for k, v in aws.items()}),
                    Counter({k: v * scale for k, v in source.items()}),
                    Counter({k: v * scale for k, v in proxy.counts.items()}),
                )
    finally:
        proxy.close()
    return out


def all_done(api: str, kind: str, prefix: str, tasks: int) -> bool:
    for n in range(tasks):
        status, task = call("GET", f"{api}/internal/{kind}-tasks/info?task_id={prefix}-{n}&failures_limit=1")
        if status != 200 or task["status"] != "done":
            return False
    return True


def machine(load_at_start: float) -> str:
    """The machine, and its 1-minute load average when the benchmark started (taken by the
    caller before it starts anything: at the end it would count the benchmark's own load)."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} cores ({model}), load average {load_at_start:.1f} at the start"


def report(
    rows: list[Row], counted: dict[str, tuple[Counter[str], Counter[str], Counter[str]]], load_at_start: float
) -> None:
    print(
        "\nIngest throughput on the local stack against a direct _bulk into the same osmem; " + machine(load_at_start)
    )
    print(f"{'':44} {'end to end':>22}   {'direct, fastest setup':>44} {'ratio':>6}  target")
    for row in rows:
        e2e = f"{row.e2e.seconds:6.1f} s {row.items / row.e2e.seconds:7,.0f}/s"
        direct = f"{row.direct.seconds:5.1f} s {row.direct.per_second(row.items):7,.0f}/s ({row.direct.setup})"
        verdict = "met" if row.ratio >= TARGET_RATIO else "MISSED"
        print(f"{row.label:44} {e2e:>22}   {direct:>44} {row.ratio:6.2f}  >= {TARGET_RATIO} {verdict}")
    labels = list(counted)
    print(
        f"\nd. requests per 1,000 items (a counting pass of {COUNTING_ITEMS:,} items per workload, "
        "OpenSearch through a counting proxy)"
    )
    print(f"{'':44} " + " ".join(f"{label:>8}" for label in labels))
    for title, part in (
        ("AWS, functions and state machines", 0),
        ("SQS event source (receive, delete, visibility)", 1),
        ("OpenSearch", 2),
    ):
        names = sorted({name for label in labels for name in counted[label][part]})
        print(f"  {title}")
        for name in names:
            print(f"    {name:40} " + " ".join(f"{counted[label][part][name]:8.1f}" for label in labels))
        totals = [sum(counted[label][part].values()) for label in labels]
        print(f"    {'total':40} " + " ".join(f"{t:8.1f}" for t in totals), end="")
        if part == 0:
            verdict = "met" if all(t <= TARGET_AWS_PER_1000 for t in totals) else "MISSED"
            print(f"   target <= {TARGET_AWS_PER_1000} {verdict}")
        else:
            print()
    print("\ne. the worker's CPU seconds per 1,000 items")
    for row in rows:
        print(f"  {row.label:44} {row.e2e.worker_cpu * 1000 / row.items:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=ITEMS)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    precomputed, texts = vectors_items(args.items, seed=1), text_items(args.items, seed=2)
    with Stack() as stack:
        rows = timed_runs(stack, precomputed, texts)
    counted = counting_run(precomputed[:COUNTING_ITEMS], texts[:COUNTING_ITEMS])
    report(rows, counted, load_at_start)


if __name__ == "__main__":
    main()
