"""The CLI's progress on a fake clock: the rate over recent polls, the time left, plain lines
when the output is not a terminal, a bar redrawn in place when it is."""

from __future__ import annotations

import io

from tests.support.stub_api import task_json
from vector_tasks_client.models import TaskSummary
from vector_tasks_client.progress import Progress, RateMeter, format_duration


def tasks(*states: tuple[str, int, int, int]) -> list[TaskSummary]:
    """(status, total, succeeded, failed) per task."""
    return [
        TaskSummary.model_validate(task_json(f"t{i}", status, total=total, succeeded=ok, failed=bad))
        for i, (status, total, ok, bad) in enumerate(states)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_the_rate_is_measured_over_the_recent_window_and_restarts_with_the_count() -> None:
    meter = RateMeter(window=10)
    assert meter.per_second() is None
    meter.add(0, 0)
    assert meter.per_second() is None
    meter.add(1, 0)
    assert meter.per_second() is None  # nothing moved yet
    for t in range(2, 21):  # 100 items/s, then 500 from second 10 on
        meter.add(t, 100 * t if t <= 10 else 1000 + 500 * (t - 10))
    assert meter.per_second() == 500  # the first seconds have left the window
    meter.add(21, 10)  # a restart: the count begins again
    assert meter.per_second() is None


def test_durations_read_as_a_person_says_them() -> None:
    assert [format_duration(s) for s in (0, 0.4, 59.6, 61, 3599, 3600, 7322)] == [
        "0 s",
        "0 s",
        "1 min 00 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 00 min",
        "2 h 02 min",
    ]


def test_plain_lines_say_items_done_failed_rate_and_time_left_at_most_every_five_seconds() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(out, clock)
    progress.update(tasks(("pending", 10_000, 0, 0), ("pending", 5_000, 0, 0)))
    for second in range(1, 11):  # 250 items/s, 1 % of them failing
        clock.now += 1
        done = 250 * second
        progress.update(tasks(("running", 10_000, done - done // 100, done // 100), ("pending", 5_000, 0, 0)))
    clock.now += 1
    progress.finish(tasks(("done", 10_000, 9_900, 100), ("canceled", 5_000, 2_000, 0)))
    assert out.getvalue().splitlines() == [
        "0/15,000 items (0%), 0 failed; 2 tasks: 2 pending",
        "1,250/15,000 items (8%), 12 failed, 250 items/s, about 55 s left; 2 tasks: 1 pending, 1 running",
        "2,500/15,000 items (16%), 25 failed, 250 items/s, about 50 s left; 2 tasks: 1 pending, 1 running",
        "12,000/15,000 items (80%), 100 failed, in 11 s (1,091 items/s); 2 tasks: 1 done, 1 canceled",
    ]


def test_a_long_stall_still_gives_a_line_a_minute() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(out, clock)
    for _ in range(130):
        progress.update(tasks(("running", 100, 10, 0)))
        clock.now += 1
    assert len(out.getvalue().splitlines()) == 3  # at 0, 60 and 120 s


def test_already_finished_tasks_give_one_line() -> None:
    out = io.StringIO()
    progress = Progress(out, Clock())
    done = tasks(("done", 10, 10, 0))
    progress.update(done)
    progress.finish(done)
    assert out.getvalue() == "10/10 items (100%), 0 failed; 1 task: 1 done\n"


def test_on_a_terminal_one_bar_is_redrawn_in_place_then_the_closing_line() -> None:
    clock, term = Clock(), Terminal()
    progress = Progress(term, clock, columns=lambda: 120)
    progress.update(tasks(("running", 1_000, 0, 0)))
    clock.now += 2
    progress.update(tasks(("running", 1_000, 480, 20)))
    clock.now += 2
    progress.finish(tasks(("done", 1_000, 980, 20)))
    drawn, closing = term.getvalue().split("\n", 1)
    frames = drawn.split("\r")[1:]
    assert len(frames) == 3
    assert all(len(frame) == 119 for frame in frames)  # padded to the width, never wrapping
    assert frames[1].startswith(
        "[" + "█" * 19 + "░" * 20 + "] 500/1,000 items (50%), 20 failed, 250 items/s, about 2 s left"
    )
    assert frames[2].startswith("[" + "█" * 39 + "] 1,000/1,000 items (100%), 20 failed")
    assert closing == "1,000/1,000 items (100%), 20 failed, in 4 s (250 items/s); 1 task: 1 done\n"


def test_a_narrow_terminal_gets_a_shorter_bar_and_a_cut_line() -> None:
    term = Terminal()
    Progress(term, Clock(), columns=lambda: 50).update(tasks(("running", 1_000, 500, 0)))
    frame = term.getvalue().split("\r")[1]
    assert len(frame) == 49
    assert frame.startswith("[" + "█" * 8 + "░" * 8 + "] 500/1,000 items (50%)")
