"""`vector-tasks`: submit JSON Lines as tasks and follow them, and manage tasks, from a shell."""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import islice
from pathlib import Path
from typing import IO, Any, TextIO

from vector_tasks_client.batches import DEFAULT_PREFIX, Splitter, check_prefix
from vector_tasks_client.client import TaskKindClient, VectorTasksClient
from vector_tasks_client.config import ConfigError, Target, config_path, resolve_target
from vector_tasks_client.console import DEFAULT_PORT, ConsoleServer
from vector_tasks_client.errors import ApiError, VectorTasksError, WaitTimeout
from vector_tasks_client.jsonl import InputError, read_lines
from vector_tasks_client.kinds import Kind
from vector_tasks_client.models import DeletionTask, ItemFailure, RestartScope, TaskStatus, TaskSummary, UpsertionTask
from vector_tasks_client.progress import Progress

POLL_SECONDS = 1.0
STDIN = "-"  # as FILE: standard input; as --output: standard output
# `failures` without --output shows each distinct detail with its count, the commonest first.
SHOWN_DETAILS = 5


class ExitCode(IntEnum):
    DONE = 0  # every task done, no item failed (or: the command did what it was asked)
    ITEMS_FAILED = 1  # every task done, some items failed
    USAGE = 2  # bad arguments or input; nothing was sent
    TASK_FAILED = 3  # a task ended failed or canceled
    ERROR = 4  # the service answered an error, or could not be reached
    TIMEOUT = 5  # --timeout passed with tasks still running
    INTERRUPTED = 130  # Ctrl-C: the tasks go on


def outcome(tasks: Sequence[TaskSummary]) -> ExitCode:
    """The exit code for tasks that are all final."""
    if any(t.status in (TaskStatus.FAILED, TaskStatus.CANCELED) for t in tasks):
        return ExitCode.TASK_FAILED
    if any(t.progress.failed for t in tasks):
        return ExitCode.ITEMS_FAILED
    return ExitCode.DONE


class UsageError(Exception):
    pass


@dataclass
class Io:
    """What the CLI reads, writes and keeps time with: the process's, or a test's."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: IO[bytes] = field(default_factory=lambda: sys.stdin.buffer)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def out(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def err(self, text: str) -> None:
        print(text, file=self.stderr, flush=True)


# -- input and output files ----------------------------------------------------------------------


@contextmanager
def open_input(path: str, io: Io) -> Iterator[IO[bytes]]:
    """The input, readable twice (planned, then sent): standard input is kept in a temporary file."""
    if path == STDIN:
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
            shutil.copyfileobj(io.stdin, spool)
            spool.seek(0)
            yield spool
        return
    with ExitStack() as files:
        try:
            stream = files.enter_context(Path(path).open("rb"))
        except OSError as exc:
            raise InputError(path, None, exc.strerror or str(exc)) from None
        yield stream


@contextmanager
def open_output(path: str, io: Io) -> Iterator[TextIO]:
    if path == STDIN:
        yield io.stdout
        return
    with ExitStack() as files:
        try:
            stream = files.enter_context(Path(path).open("w", encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        yield stream


# -- the commands --------------------------------------------------------------------------------


def _target(args: argparse.Namespace, io: Io) -> Target:
    given = [f"--{name}" for name in ("local", "endpoint", "profile") if getattr(args, name, None)]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)}: give one of them")
    return resolve_target(
        local=getattr(args, "local", False),
        endpoint=getattr(args, "endpoint", None),
        profile=getattr(args, "profile", None),
        region=getattr(args, "region", None),
        aws_profile=getattr(args, "aws_profile", None),
        sign=getattr(args, "sign", None),
        env=io.env,
    )


def _client(args: argparse.Namespace, io: Io) -> VectorTasksClient:
    return _target(args, io).client(clock=io.clock, sleep=io.sleep)


def _kind(args: argparse.Namespace) -> Kind:
    return Kind(getattr(args, "kind", Kind.UPSERTION.value))


def _progress_line(task: TaskSummary) -> str:
    p = task.progress
    superseded = f" ({p.superseded:,} superseded by newer tasks)" if p.superseded else ""
    return f"{p.processed:,}/{p.total:,} items, {p.succeeded:,} succeeded{superseded}, {p.failed:,} failed"


def _each(task_ids: Sequence[str], io: Io, kind: Kind, action: Callable[[str], None]) -> ExitCode:
    """`action` for every task id, going on after an error; ERROR if any failed."""
    failed = False
    for task_id in task_ids:
        try:
            action(task_id)
        except ApiError as exc:
            hint = ""
            if exc.status == 404 and exc.code == "task_not_found":
                other = Kind.DELETION if kind is Kind.UPSERTION else Kind.UPSERTION
                hint = f" (a {other.value} task? add --kind {other.value})"
            io.err(f"vector-tasks: {task_id}: {exc}{hint}")
            failed = True
    return ExitCode.ERROR if failed else ExitCode.DONE


def watch(
    tasks: TaskKindClient[Any], task_ids: Sequence[str], timeout: float | None, io: Io, source: str | None
) -> ExitCode:
    """Wait for the tasks with one progress display across them; the exit code of the outcome.
    `source`: the file the tasks were submitted from, for the hint on exporting failures."""
    progress = Progress(io.stderr, io.clock)
    try:
        final = tasks.wait_all(task_ids, timeout, POLL_SECONDS, on_update=progress.update)
    except WaitTimeout as exc:
        progress.finish(exc.tasks)
        io.err(f"vector-tasks: {exc}; they go on (vector-tasks status --wait follows them)")
        return ExitCode.TIMEOUT
    except KeyboardInterrupt:
        io.err(
            f"\nStopped watching; the tasks go on: vector-tasks status --kind {tasks.kind} --wait {' '.join(task_ids)}"
        )
        return ExitCode.INTERRUPTED
    progress.finish(final)
    for task in final:
        if task.status is not TaskStatus.DONE:
            io.err(f"{tasks.kind} task {task.id} {task.status}" + (f": {task.error}" if task.error else ""))
    if any(t.progress.failed for t in final):
        failing = " ".join(t.id for t in final if t.progress.failed)
        if source not in (None, STDIN):
            given = f" --input {source}"
        else:  # an upsertion's failed items come whole only from what was submitted
            given = " --input FILE.jsonl" if tasks.kind is Kind.UPSERTION else ""
        io.err(f"Some items failed: vector-tasks failures --kind {tasks.kind} {failing}{given} --output failed.jsonl")
    return outcome(final)


def cmd_submit(args: argparse.Namespace, io: Io) -> ExitCode:
    kind = _kind(args)
    source = "<stdin>" if args.file == STDIN else args.file
    try:
        splitter = Splitter(kind, args.model, args.task_prefix, source)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with open_input(args.file, io) as stream:
        batches = splitter.plan(read_lines(stream, kind, source))
        if not batches:
            raise UsageError(f"{source}: no lines to submit")
        count = sum(b.count for b in batches)
        noun = "items" if kind is Kind.UPSERTION else "object ids"
        io.err(f"{source}: {count:,} {noun} in {len(batches)} {kind} task{'s' if len(batches) > 1 else ''}")
        tasks = _client(args, io).kind(kind)
        stream.seek(0)
        created = 0
        try:
            for batch, body in splitter.bodies(read_lines(stream, kind, source), batches):
                task, new = tasks.create_from_body(body)
                created += 1
                what = "created" if new else f"resumed ({task.status})"
                io.out(
                    f"{what} {kind} task {task.id}: lines {batch.first_line}-{batch.last_line}, {batch.count:,} {noun}"
                )
                if not new and task.status.is_final and task.progress.succeeded < task.progress.total:
                    io.err(
                        f"{task.id} was submitted before and is {task.status}; to run what did not succeed again: "
                        f"vector-tasks restart --kind {kind} --failed {task.id}"
                    )
        except VectorTasksError:
            if created:
                io.err(f"{created} of {len(batches)} tasks were sent; the same command again resumes.")
            raise
    task_ids = [b.task_id for b in batches]
    if not args.wait:
        io.err(f"Follow them: vector-tasks status --kind {kind} --wait {' '.join(task_ids)}")
        return ExitCode.DONE
    return watch(tasks, task_ids, args.timeout, io, args.file)


def import_task_id(prefix: str, kind: Kind, model: str, s3_uri: str) -> str:
    """PREFIX-import-DIGEST: the same import again (kind, model, source) is the same task."""
    digest = hashlib.sha256(f"{kind}\n{model}\n{s3_uri}".encode()).hexdigest()[:16]
    return f"{prefix}-import-{digest}"


def cmd_import(args: argparse.Namespace, io: Io) -> ExitCode:
    kind = _kind(args)
    task_id = args.task_id or import_task_id(args.task_prefix, kind, args.model, args.s3_uri)
    tasks = _client(args, io).kind(kind)
    task = tasks.import_from(args.model, args.s3_uri, task_id)
    io.out(f"{kind} task {task.id}: importing {args.s3_uri} ({task.status})")
    if not args.wait:
        io.err(f"Follow it: vector-tasks status --kind {kind} --wait {task.id}")
        return ExitCode.DONE
    return watch(tasks, [task.id], args.timeout, io, None)


def _show(task: UpsertionTask | DeletionTask, kind: Kind, io: Io) -> None:
    io.out(f"{kind} task {task.id}: {task.status} (attempt {task.attempt})")
    io.out(f"  model     {task.embedding_model_id}")
    io.out(f"  progress  {_progress_line(task)}, {task.progress.pending:,} pending")
    io.out(f"  created   {task.created_at:%Y-%m-%d %H:%M:%SZ}, updated {task.updated_at:%Y-%m-%d %H:%M:%SZ}")
    if task.source is not None:
        read = task.source
        total = "?" if read.objects_total is None else f"{read.objects_total:,}"
        state = "read to its end" if read.complete else "reading"
        io.out(f"  source    {read.s3_uri}: {read.objects_read:,}/{total} objects, {read.lines_read:,} lines, {state}")
    if task.error:
        io.out(f"  error     {task.error}")
    for failure in task.failures:
        io.out(f"  failed    {failure.object_id}: {failure.detail}")
    if task.failures_next_offset is not None:
        io.out(f"  ...       all {task.progress.failed:,}: vector-tasks failures --kind {kind} {task.id}")


def cmd_status(args: argparse.Namespace, io: Io) -> ExitCode:
    kind = _kind(args)
    tasks = _client(args, io).kind(kind)

    def show(task_id: str) -> None:
        task = tasks.get(task_id, failures_limit=SHOWN_DETAILS)
        if args.json:
            io.out(task.model_dump_json())
        else:
            _show(task, kind, io)

    code = _each(args.task_ids, io, kind, show)
    if code is ExitCode.DONE and args.wait:
        return watch(tasks, args.task_ids, args.timeout, io, None)
    return code


def cmd_list(args: argparse.Namespace, io: Io) -> ExitCode:
    client = _client(args, io)
    kinds = list(Kind) if args.kind == "all" else [Kind(args.kind)]
    status = TaskStatus(args.status) if args.status else None
    page = min(args.limit, 100)

    def newest_first(kind: Kind) -> Iterator[tuple[Kind, TaskSummary]]:
        for task in islice(client.kind(kind).iter_tasks(status, page_size=page), args.limit):
            yield kind, task

    rows = list(
        islice(heapq.merge(*map(newest_first, kinds), key=lambda row: row[1].created_at, reverse=True), args.limit)
    )
    if args.json:
        for kind, task in rows:
            io.out(f'{{"kind":"{kind}",{task.model_dump_json()[1:]}')
        return ExitCode.DONE
    if not rows:
        io.err("No tasks" + (f" {status}" if status else "") + ".")
        return ExitCode.DONE
    table = [("KIND", "TASK", "STATUS", "ATTEMPT", "PROGRESS", "UPDATED")]
    table += [
        (kind.value, t.id, t.status.value, str(t.attempt), _progress_line(t), f"{t.updated_at:%Y-%m-%d %H:%M:%SZ}")
        for kind, t in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        io.out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return ExitCode.DONE


def cmd_cancel(args: argparse.Namespace, io: Io) -> ExitCode:
    kind = _kind(args)
    tasks = _client(args, io).kind(kind)

    def cancel(task_id: str) -> None:
        task = tasks.cancel(task_id)
        io.out(f"canceled {kind} task {task.id}: {_progress_line(task)}")

    return _each(args.task_ids, io, kind, cancel)


def cmd_restart(args: argparse.Namespace, io: Io) -> ExitCode:
    kind = _kind(args)
    tasks = _client(args, io).kind(kind)
    scope = RestartScope.FAILED if args.failed else RestartScope.ALL

    def restart(task_id: str) -> None:
        task = tasks.restart(task_id, scope)
        io.out(f"restarted {kind} task {task.id} as attempt {task.attempt}: {task.progress.total:,} items")

    code = _each(args.task_ids, io, kind, restart)
    if code is ExitCode.DONE and args.wait:
        return watch(tasks, args.task_ids, args.timeout, io, None)
    return code


def cmd_failures(args: argparse.Namespace, io: Io) -> ExitCode:
    kind = _kind(args)
    if args.output and kind is Kind.UPSERTION and not args.input:
        raise UsageError(
            "an upsertion failure names its object id only: give --input FILE.jsonl (what was submitted) "
            "so that the failed items are written whole and can be submitted again"
        )
    tasks = _client(args, io).kind(kind)
    failures: dict[str, ItemFailure] = {}
    for task_id in args.task_ids:
        for page in tasks.failure_pages(task_id):
            if page.failures_next_offset is None and not page.status.is_final:
                io.err(f"{kind} task {task_id} is {page.status}: these are its failures so far")
            failures.update((f.object_id, f) for f in page.failures)
    if not args.output:
        for failure in failures.values():
            io.out(f"{failure.object_id}\t{failure.detail}")
    else:
        lines = _failed_lines(args, kind, failures, io)  # all of them before the file is written
        with open_output(args.output, io) as out:
            out.writelines(lines)
        io.err(f"{len(lines):,} failed {'items' if kind is Kind.UPSERTION else 'object ids'} written to {args.output}")
    for detail, n in Counter(f.detail for f in failures.values()).most_common(SHOWN_DETAILS):
        io.err(f"  {n:,} x {detail}")
    return ExitCode.DONE


def _failed_lines(args: argparse.Namespace, kind: Kind, failures: Mapping[str, ItemFailure], io: Io) -> list[str]:
    """The failed lines as submitted (from --input, in its order), or for a deletion without
    --input the failed object ids; either way what `submit` takes as it is."""
    if not args.input:
        return [json.dumps(object_id, ensure_ascii=False) + "\n" for object_id in failures]
    source = "<stdin>" if args.input == STDIN else args.input
    with open_input(args.input, io) as stream:
        lines = {
            line.object_id: line.json + "\n" for line in read_lines(stream, kind, source) if line.object_id in failures
        }
    missing = [object_id for object_id in failures if object_id not in lines]
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UsageError(f"{source} does not hold {len(missing):,} of the failed object ids: {shown}")
    return list(lines.values())


def cmd_console(args: argparse.Namespace, io: Io) -> ExitCode:
    target = _target(args, io)
    try:
        server = ConsoleServer(target.client(), port=args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    how = "signed with your AWS credentials" if target.sign else "unsigned"
    io.out(f"Console:    {server.url}")
    io.err(f"Serving the API at {target.endpoint} ({how}); Ctrl-C stops it.")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return ExitCode.DONE


# -- arguments -----------------------------------------------------------------------------------

DESCRIPTION = """\
Submit JSON Lines to the vector ingestion task service as tasks, follow them with a progress
bar, and list, cancel, restart and export the failures of tasks.

Where requests go, the first that applies: --local (the stack `make run` starts,
http://127.0.0.1:3000), --endpoint URL, --profile NAME or $VECTOR_TASKS_PROFILE, the profile
`default` of the config file ($VECTOR_TASKS_CONFIG, else $XDG_CONFIG_HOME or ~/.config, then
vector-tasks/config.toml):

  [profiles.default]
  endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
  aws_profile = "ingest-admin"   # optional: whose AWS credentials sign
  region = "eu-west-1"           # optional: read from an execute-api host name otherwise

Requests are signed with SigV4 from your AWS credentials, except to an endpoint on this
machine (the local stack takes unsigned requests); --sign / --no-sign decide otherwise."""

EPILOG = """\
exit codes:
  0  done: every task done and no item failed (for other commands: it did what was asked)
  1  every task done, but some items failed (`failures` exports them)
  2  usage: bad arguments, or an input line that cannot be sent (nothing was sent)
  3  a task ended failed or canceled
  4  the service answered an error (its message and request id are printed) or did not answer
  5  --timeout passed with tasks still running (they go on)
130  interrupted (Ctrl-C); the tasks go on

examples:
  vector-tasks --local submit docs.jsonl --model local-hash-384 --wait
  vector-tasks --local failures vt-0001-1a2b3c4d5e6f7a8b --input docs.jsonl --output failed.jsonl
  vector-tasks --local submit failed.jsonl --model local-hash-384 --wait
  vector-tasks --profile prod list --status running
  vector-tasks console --profile prod"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _target_options() -> argparse.ArgumentParser:
    """Where to send requests: accepted before the command and after it alike."""
    options = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    where = options.add_argument_group("where requests go (one of --local, --endpoint, --profile)")
    where.add_argument("--local", action="store_true", help="the local stack of `make run` (http://127.0.0.1:3000)")
    where.add_argument("--endpoint", metavar="URL", help="the API's base URL, stage included")
    where.add_argument("--profile", metavar="NAME", help=f"a profile of the config file ({config_path()})")
    where.add_argument("--region", help="the region to sign for (default: from the endpoint or the AWS config)")
    where.add_argument("--aws-profile", metavar="NAME", help="the AWS profile whose credentials sign")
    where.add_argument(
        "--sign", action=argparse.BooleanOptionalAction, help="sign with SigV4 (default: unless the endpoint is local)"
    )
    options.add_argument("-v", "--verbose", action="store_true", help="log each retry to standard error")
    return options


def _kind_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind", choices=[k.value for k in Kind], default=Kind.UPSERTION.value, help="the tasks' kind (upsertion)"
    )


def _wait_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"{what}, with a progress bar; exit code by outcome")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="with --wait: stop waiting after this long")


def build_parser() -> argparse.ArgumentParser:
    target = _target_options()
    parser = argparse.ArgumentParser(
        prog="vector-tasks", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter, parents=[target]
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace, Io], ExitCode], summary: str, **kw: Any) -> Any:
        sub = commands.add_parser(
            name, help=summary, description=kw.pop("description", summary), formatter_class=_Formatter, parents=[target]
        )
        sub.set_defaults(handler=handler)
        return sub

    submit = command(
        "submit",
        cmd_submit,
        "submit a JSON Lines file as tasks",
        description="Submit FILE (or - for standard input) as tasks of at most 10,000 items and 6 MB each.\n\n"
        'An upsertion line is an item: {"object_id": "doc-1", "payload": {"text": "..."}, "item_info": {...}}.\n'
        'A deletion line is an object id: "doc-1" or {"object_id": "doc-1"}. Blank lines are skipped.\n'
        "Every line is checked before anything is sent; a bad line is named by its number.\n\n"
        "Task ids are derived from the content (PREFIX-NNNN-DIGEST): the same command again resumes\n"
        "the same tasks instead of creating new ones.",
    )
    submit.add_argument("file", metavar="FILE", help="JSON Lines, or - for standard input")
    submit.add_argument("--model", required=True, help="the embedding model whose index the tasks write to")
    _kind_option(submit)
    _wait_options(submit, "wait until every task is finished")
    submit.add_argument(
        "--task-prefix",
        default=DEFAULT_PREFIX,
        type=_prefix,
        metavar="PREFIX",
        help=f"of the task ids ({DEFAULT_PREFIX})",
    )

    imported = command(
        "import",
        cmd_import,
        "import a task's items from S3",
        description="Create one task that reads its items from S3_URI: s3://bucket/key (one object) or\n"
        "s3://bucket/prefix/ (every object under it), JSON Lines as `submit` takes, gzip allowed.\n"
        "The bucket must be one the service may read (its ImportBuckets parameter).\n\n"
        "The task id is derived from the kind, the model and the URI (PREFIX-import-DIGEST) unless\n"
        "--task-id names one: the same command again shows the same task instead of a new one.",
    )
    imported.add_argument("s3_uri", metavar="S3_URI", help="s3://bucket/key or s3://bucket/prefix/")
    imported.add_argument("--model", required=True, help="the embedding model whose index the task writes to")
    imported.add_argument("--task-id", help="the task's id (default: derived from the kind, model and URI)")
    imported.add_argument(
        "--task-prefix",
        default=DEFAULT_PREFIX,
        type=_prefix,
        metavar="PREFIX",
        help=f"of the task id ({DEFAULT_PREFIX})",
    )
    _kind_option(imported)
    _wait_options(imported, "wait until the task is finished")

    status = command("status", cmd_status, "show tasks: status, progress, first failures")
    status.add_argument("task_ids", nargs="+", metavar="TASK")
    _kind_option(status)
    _wait_options(status, "then wait until they are finished")
    status.add_argument("--json", action="store_true", help="one JSON object per task, as the API answers")

    listing = command("list", cmd_list, "list tasks, newest first")
    listing.add_argument(
        "--kind", choices=["all", *(k.value for k in Kind)], default="all", help="which kind (all: both, merged)"
    )
    listing.add_argument("--status", choices=[s.value for s in TaskStatus], help="only tasks in this status")
    listing.add_argument("--limit", type=_positive, default=20, help="how many tasks (20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per task, with its kind")

    cancel = command("cancel", cmd_cancel, "cancel pending or running tasks")
    cancel.add_argument("task_ids", nargs="+", metavar="TASK")
    _kind_option(cancel)

    restart = command("restart", cmd_restart, "restart done, failed or canceled tasks as their next attempt")
    restart.add_argument("task_ids", nargs="+", metavar="TASK")
    restart.add_argument("--failed", action="store_true", help="only the items that did not succeed last attempt")
    _kind_option(restart)
    _wait_options(restart, "then wait until they are finished")

    failures = command(
        "failures",
        cmd_failures,
        "list or export the failed items of tasks",
        description="Without --output: each failed object id and its detail, tab-separated.\n"
        "With --output FILE (- for standard output): the failed lines as JSON Lines that `submit` takes\n"
        "as they are. An upsertion failure names its object id only, so --input (the file that was\n"
        "submitted) supplies the items; a deletion's ids are written as they are.",
    )
    failures.add_argument("task_ids", nargs="+", metavar="TASK")
    failures.add_argument("--output", metavar="FILE", help="write the failed lines here, ready to submit again")
    failures.add_argument("--input", metavar="FILE", help="the JSON Lines that were submitted")
    _kind_option(failures)

    console = command(
        "console",
        cmd_console,
        "serve the operator console on 127.0.0.1",
        description="Serve the operator console at http://127.0.0.1:PORT. The page's API calls go\n"
        "through this process, which signs them: no credential reaches the browser.",
    )
    console.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"({DEFAULT_PORT})")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _prefix(text: str) -> str:
    try:
        return check_prefix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None, io: Io | None = None) -> int:
    io = io or Io()
    args = build_parser().parse_args(argv)
    if getattr(args, "verbose", False):
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s", stream=io.stderr)
        logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        return int(args.handler(args, io))
    except (UsageError, InputError, ConfigError) as exc:
        io.err(f"vector-tasks: {exc}")
        return ExitCode.USAGE
    except VectorTasksError as exc:
        io.err(f"vector-tasks: {exc}")
        return ExitCode.ERROR
    except KeyboardInterrupt:
        io.err("\nvector-tasks: interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `vector-tasks list | head`: the reader has gone
        sys.stderr.close()
        return ExitCode.DONE


if __name__ == "__main__":
    sys.exit(main())
