"""Activities drawn as they run, from the activity stream.

Invariant: on a terminal each running activity is one rich progress bar (label, bar,
done/total, time left, detail) redrawn in place; anywhere else (a pipe, a log file, CI) an
activity writes exactly two lines, when it starts and when it ends, never one per progress
event. Either way its end is one line, `<state>: <label>[: error]`, that stays on screen.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

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
from ftreview.v1 import activity_pb2


def _label(activity: activity_pb2.Activity) -> str:
    return activity.label or activity.id


class ActivityProgress:
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

    def __enter__(self) -> ActivityProgress:
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
