"""The screen's activity line: a running job shows its steps, a bar, the time left at the
rate its steps went since the screen first saw it, and its detail (the epoch's figures)."""

from __future__ import annotations

from ftreview.tui.activities import (
    ActivityBoard,
    ActivityEvent,
    ActivityEventKind,
    ActivityState,
    ActivityView,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def train(done: int, detail: str = "") -> ActivityEvent:
    view = ActivityView(
        "train-ft-3", "training · ft-3", "train", done, 48, ActivityState.RUNNING, detail=detail
    )
    return ActivityEvent(ActivityEventKind.PROGRESS, view)


def test_a_training_line_says_how_long_is_left_and_the_epochs_figures() -> None:
    clock = Clock()
    board = ActivityBoard(clock=clock)
    board.on_event("review", train(3))
    # Too early to say: the first sight is no rate yet.
    assert "left" not in board.describe()
    clock.now += 30
    board.on_event("review", train(9, "epoch 2/16: learnt 1/3, divergence 0.41, drift 0.020"))
    line = board.describe()
    # 6 steps in 30 s, 39 to go: 195 s.
    assert line.startswith("⟳ training · ft-3 9/48 ")
    assert "~3 min 15 s left (epoch 2/16: learnt 1/3, divergence 0.41, drift 0.020)" in line


def test_no_time_left_without_a_total_or_after_the_end() -> None:
    clock = Clock()
    board = ActivityBoard(clock=clock)
    view = ActivityView("a1", "sending", "send", 0, 0, ActivityState.RUNNING)
    board.on_event("review", ActivityEvent(ActivityEventKind.PROGRESS, view))
    clock.now += 10
    board.on_event("review", ActivityEvent(ActivityEventKind.PROGRESS, view))
    assert "left" not in board.describe()
    board.on_event("review", train(3))
    clock.now += 10
    ended = ActivityView("train-ft-3", "training · ft-3", "train", 48, 48, ActivityState.SUCCEEDED)
    board.on_event("review", ActivityEvent(ActivityEventKind.ENDED, ended))
    assert "left" not in board.describe()
    assert board.eta(ended) == ""


def test_a_success_is_not_left_on_the_line_a_failure_is() -> None:
    board = ActivityBoard(clock=Clock())
    done = ActivityView("alt-1", "alternate", "alternate", 1, 1, ActivityState.SUCCEEDED)
    notice = board.on_event("review", ActivityEvent(ActivityEventKind.ENDED, done))
    assert notice is not None and "alternate succeeded" in notice.message
    assert board.describe() == "idle: no activity running"
    failed = ActivityView(
        "alt-2", "alternate", "alternate", 0, 1, ActivityState.FAILED, error="the Scorer is down"
    )
    board.on_event("review", ActivityEvent(ActivityEventKind.ENDED, failed))
    assert board.describe() == "✗ alternate failed: the Scorer is down"
