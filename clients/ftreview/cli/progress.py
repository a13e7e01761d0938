"""Activities drawn as they run, from the activity stream.

Invariant: on a terminal each running activity is one rich progress bar (label, bar,
done/total, time left, detail) redrawn in place; anywhere else (a pipe, a log file, CI) an
activity writes exactly two lines, when it starts and when it ends, never one per progress
event. Either way its end is one line, `<state>: <label>[: error]`, that stays on screen.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ftreview.client import activity_state_name
from ftreview.report.batch import BatchTracker
from ftreview.v1 import activity_pb2


def _label(activity: activity_pb2.Activity) -> str:
    return activity.label or activity.id


class _Bars:
    """Rich bars on a terminal (started and stopped with the `with` block), else None."""

    _bars: Progress | None

    def __enter__(self) -> Self:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()


class ActivityProgress(_Bars):
    """Progress of the activities a command follows. Use as a context manager."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._bars: Progress | None = None
        if enabled and self._stream.isatty():
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}", style="dim"),
                console=Console(file=self._stream),
            )
        self._tasks: dict[str, TaskID] = {}

    def started(self, activity: activity_pb2.Activity) -> None:
        if self._enabled and self._bars is None:
            self._stream.write(f"started: {_label(activity)}\n")
            self._stream.flush()
        self.update(activity)

    def update(self, activity: activity_pb2.Activity) -> None:
        if self._bars is None:
            return
        total = activity.total or None  # unknown: a pulsing bar
        task = self._tasks.get(activity.id)
        if task is None:
            task = self._bars.add_task(_label(activity), total=total, detail="")
            self._tasks[activity.id] = task
        self._bars.update(task, total=total, completed=activity.done, detail=activity.detail)

    def ended(self, activity: activity_pb2.Activity) -> None:
        if not self._enabled:
            return
        state = activity_state_name(activity.state)
        error = f": {activity.error}" if activity.error else ""
        line = f"{state}: {_label(activity)}{error}"
        task = self._tasks.pop(activity.id, None)
        if self._bars is not None:
            if task is not None:
                self._bars.remove_task(task)
            self._bars.console.print(line, markup=False, highlight=False)
        else:
            self._stream.write(line + "\n")
            self._stream.flush()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class BatchProgress(_Bars):
    """One progress line for a batch of scoring runs: "scoring 23/50 · 41 new candidates ·
    ~30 s left" (on a terminal a rich bar with that line; elsewhere one line when the batch
    starts and one when it ends). The batch itself is `ftreview.report.batch`, the model the
    review screen draws too. A batch grows while it runs (`follow` adds each ingest to the
    running batch) and ends when every run it counted has finished; its end is one summary
    line that stays. Use as a context manager."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._bars: Progress | None = None
        if enabled and self._stream.isatty():
            self._bars = Progress(
                TextColumn("{task.description}"), BarColumn(), console=Console(file=self._stream)
            )
        self._task: TaskID | None = None
        self._tracker = BatchTracker()

    @property
    def live(self) -> bool:
        """A bar redrawn in place on a terminal (not start and end lines)."""
        return self._bars is not None

    @property
    def running(self) -> bool:
        return self._tracker.batch is not None

    def grow(self, runs: int = 1) -> None:
        """`runs` more runs in the batch; the first starts it."""
        if not self.running:
            if self._bars is not None:
                self._task = self._bars.add_task("scoring", total=runs)
            elif self._enabled:
                self.note(f"scoring {_plural(runs, 'conversation')}")
        self._tracker.plan(runs, time.monotonic())
        self._redraw()

    def progress(self, activity_id: str, done: int, total: int) -> None:
        self._tracker.progress(activity_id, done, total, time.monotonic())
        self._redraw()

    def finished(self, activity_id: str, failed: bool, new_candidates: int) -> None:
        """A run of the batch ended, having added `new_candidates`."""
        now = time.monotonic()
        self._tracker.started(activity_id, now)  # a run refused at once never ran
        summary = self._tracker.ended(activity_id, failed, now, new_candidates)
        self._redraw()
        if summary is not None:
            if self._bars is not None and self._task is not None:
                self._bars.remove_task(self._task)
                self._task = None
            if self._enabled:
                self.note(summary)

    def note(self, line: str) -> None:
        """A line that stays, above the bar on a terminal."""
        if self._bars is not None:
            self._bars.console.print(line, markup=False, highlight=False)
        elif self._enabled:
            self._stream.write(line + "\n")
            self._stream.flush()

    def _redraw(self) -> None:
        batch = self._tracker.batch
        if self._bars is None or self._task is None or batch is None:
            return
        now = time.monotonic()
        self._bars.update(
            self._task, description=batch.line(now), total=batch.total, completed=batch.done
        )
