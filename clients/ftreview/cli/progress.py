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
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ftreview.client import activity_state_name
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


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{round(seconds)} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _BatchColumn(ProgressColumn):
    """`· 41 new candidates · ~30 s left` (the time once there is a pace to go by)."""

    def render(self, task: Task) -> Text:
        parts = ["", _plural(task.fields["found"], "new candidate")]
        left = task.time_remaining
        if left is not None and task.completed:
            parts.append(f"~{duration(left)} left")
        if task.fields["failed"]:
            parts.append(f"{task.fields['failed']} failed")
        return Text(" · ".join(parts).lstrip())


class BatchProgress(_Bars):
    """One progress line for a batch of scoring runs: "scoring 23/50 · 41 new candidates ·
    ~30 s left" (on a terminal a rich bar with the count and the time left; elsewhere one
    line when the batch starts and one when it ends). A batch grows while it runs
    (`follow` adds each ingest to the running batch) and ends when every run it counted
    has finished; its end is one summary line that stays. Use as a context manager."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._bars: Progress | None = None
        if enabled and self._stream.isatty():
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _BatchColumn(),
                console=Console(file=self._stream),
            )
        self._task: TaskID | None = None
        self._started = 0.0
        self._total = 0
        self._finished = 0
        self._failed = 0
        self._found = 0
        self._partial: dict[str, float] = {}

    @property
    def live(self) -> bool:
        """A bar redrawn in place on a terminal (not start and end lines)."""
        return self._bars is not None

    @property
    def running(self) -> bool:
        return self._total > self._finished

    def grow(self, runs: int = 1) -> None:
        """`runs` more runs in the batch; the first starts it."""
        if not self.running:
            self._started, self._total, self._finished = time.monotonic(), 0, 0
            self._failed = self._found = 0
            self._partial.clear()
            if self._bars is not None:
                self._task = self._bars.add_task("scoring", total=runs, found=0, failed=0)
            elif self._enabled:
                self.note(f"scoring {_plural(runs, 'conversation')}")
        self._total += runs
        self._redraw()

    def progress(self, activity_id: str, done: int, total: int) -> None:
        if total > 0:
            self._partial[activity_id] = min(1.0, done / total)
            self._redraw()

    def finished(self, activity_id: str, failed: bool, new_candidates: int) -> None:
        """A run of the batch ended (after its new candidates were counted)."""
        self._partial.pop(activity_id, None)
        self._finished += 1
        self._failed += failed
        self._found += new_candidates
        self._redraw()
        if not self.running:
            if self._bars is not None and self._task is not None:
                self._bars.remove_task(self._task)
                self._task = None
            if self._enabled:
                self.note(self.summary())

    def summary(self) -> str:
        text = f"scored {_plural(self._finished, 'conversation')}"
        text += f" in {duration(time.monotonic() - self._started)}"
        text += f" · {_plural(self._found, 'new candidate')}"
        return text + (f" · {self._failed} failed" if self._failed else "")

    def note(self, line: str) -> None:
        """A line that stays, above the bar on a terminal."""
        if self._bars is not None:
            self._bars.console.print(line, markup=False, highlight=False)
        elif self._enabled:
            self._stream.write(line + "\n")
            self._stream.flush()

    def _redraw(self) -> None:
        if self._bars is None or self._task is None:
            return
        self._bars.update(
            self._task,
            total=self._total,
            completed=self._finished + sum(self._partial.values()),
            found=self._found,
            failed=self._failed,
        )
