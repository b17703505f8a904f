"""The CLI's progress across all the tasks it waits for: a bar on a terminal, plain lines
otherwise. Time comes from an injected clock, so rates and times left are testable."""

from __future__ import annotations

import shutil
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from vector_tasks_client.models import TaskStatus, TaskSummary

# The rate is measured over this many seconds of recent polls: recent enough to follow a
# change of pace, long enough not to jump with every poll.
RATE_WINDOW_SECONDS = 20.0
# Plain lines: at most one per interval while anything moves, and one per minute when nothing does.
LINE_INTERVAL_SECONDS = 5.0
QUIET_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class Totals:
    total: int
    succeeded: int
    failed: int
    statuses: Counter[TaskStatus]

    @classmethod
    def of(cls, tasks: Sequence[TaskSummary]) -> Totals:
        return cls(
            total=sum(t.progress.total for t in tasks),
            succeeded=sum(t.progress.succeeded for t in tasks),
            failed=sum(t.progress.failed for t in tasks),
            statuses=Counter(t.status for t in tasks),
        )

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed

    @property
    def percent(self) -> int:
        return 100 * self.processed // self.total if self.total else 100

    def describe_tasks(self) -> str:
        count = sum(self.statuses.values())
        parts = ", ".join(f"{self.statuses[s]} {s.value}" for s in TaskStatus if self.statuses[s])
        return f"{count} task{'s' if count != 1 else ''}: {parts}"


class RateMeter:
    """Items per second over the recent window of (time, items processed) samples."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, processed: int) -> None:
        if self._samples and processed < self._samples[-1][1]:
            self._samples.clear()  # a restart began the count again
        self._samples.append((now, processed))
        # Keep one sample at or before the window's start, so the window is always spanned.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def per_second(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, p0), (t1, p1) = self._samples[0], self._samples[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 and p1 > p0 else None


def format_duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_rate(per_second: float) -> str:
    return f"{per_second:,.0f} items/s" if per_second >= 10 else f"{per_second:.1f} items/s"


def describe(totals: Totals, rate: float | None) -> str:
    """One progress line: items done of all, failed, rate and time left, then the tasks."""
    text = f"{totals.processed:,}/{totals.total:,} items ({totals.percent}%), {totals.failed:,} failed"
    if rate is not None:
        text += f", {format_rate(rate)}, about {format_duration((totals.total - totals.processed) / rate)} left"
    return f"{text}; {totals.describe_tasks()}"


def describe_end(totals: Totals, start: Totals, elapsed: float) -> str:
    """The last line: what was done, in how long, at what average rate while watched."""
    text = f"{totals.processed:,}/{totals.total:,} items ({totals.percent}%), {totals.failed:,} failed"
    moved = totals.processed - start.processed
    if moved > 0 and elapsed > 0:
        text += f", in {format_duration(elapsed)} ({format_rate(moved / elapsed)})"
    return f"{text}; {totals.describe_tasks()}"


class Progress:
    """Shows progress on `stream`: a bar redrawn in place when it is a terminal, otherwise a
    line now and then. `update` takes the tasks after each round of polls, `finish` the last."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float],
        interactive: bool | None = None,
        columns: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._interactive = stream.isatty() if interactive is None else interactive
        self._columns = columns
        self._rate = RateMeter()
        self._start: tuple[float, Totals] | None = None  # when watching began, and the totals then
        self._last_line: tuple[float, Totals] | None = None
        unicode = (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self._fill, self._empty = ("█", "░") if unicode else ("#", "-")

    def update(self, tasks: Sequence[TaskSummary]) -> None:
        now, totals = self._observe(tasks)
        text = describe(totals, self._rate.per_second())
        if self._interactive:
            self._draw(totals, text)
        elif self._due(now, totals) and not all(t.status.is_final for t in tasks):  # `finish` says the end
            self._stream.write(text + "\n")
            self._last_line = (now, totals)
        self._stream.flush()

    def _observe(self, tasks: Sequence[TaskSummary]) -> tuple[float, Totals]:
        now, totals = self._clock(), Totals.of(tasks)
        if self._start is None:
            self._start = (now, totals)
        self._rate.add(now, totals.processed)
        return now, totals

    def _due(self, now: float, totals: Totals) -> bool:
        if self._last_line is None:
            return True
        at, shown = self._last_line
        changed = (shown.processed, shown.statuses) != (totals.processed, totals.statuses)
        return now - at >= (LINE_INTERVAL_SECONDS if changed else QUIET_INTERVAL_SECONDS)

    def _draw(self, totals: Totals, text: str) -> None:
        columns = max(self._columns(), 40) - 1  # the last column would wrap on some terminals
        width = max(10, min(40, columns // 3))  # by the terminal, not the text: a bar that never jumps
        filled = width * totals.processed // totals.total if totals.total else width
        line = f"[{self._fill * filled}{self._empty * (width - filled)}] {text}"[:columns]
        self._stream.write("\r" + line.ljust(columns))

    def finish(self, tasks: Sequence[TaskSummary]) -> None:
        """The last state: the bar drawn once more, then one closing line (in both modes)."""
        if self._interactive:
            self.update(tasks)
            self._stream.write("\n")
        now, totals = self._observe(tasks)
        assert self._start is not None
        started_at, start = self._start
        self._stream.write(describe_end(totals, start, now - started_at) + "\n")
        self._stream.flush()
