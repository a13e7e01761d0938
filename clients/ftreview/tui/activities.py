"""The status line's model: what is running now and what just ended, from activity streams.

The status line is drawn from the Activities streams of the Review and the Scorer and from
nothing else (no polling, no guessing from RPC results), so it shows the work the services
actually do, including work started from another terminal. The invariants it keeps:

- the running set of a source is what that source's stream last said: a fresh snapshot
  (after a reconnect) replaces it, so an activity that ended while the stream was down
  does not stay "running" forever;
- an end is reported once, and only when it was seen live (ends replayed in a snapshot are
  history, not news);
- scoring runs are one batch (`ftreview.tui.batch`): one progress line and one summary at
  the end, however many conversations are scored; other work (sending, alternates) is
  reported one by one.

Plain Python; the screen only renders `describe()` and the endings `on_event` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ftreview.report.batch import SCORING_KIND, BatchTracker, duration


class ActivityState(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ActivityEventKind(Enum):
    SNAPSHOT = "snapshot"
    SNAPSHOT_END = "snapshot_end"
    STARTED = "started"
    PROGRESS = "progress"
    ENDED = "ended"


@dataclass(frozen=True)
class ActivityView:
    id: str
    label: str
    kind: str
    done: int
    total: int
    state: ActivityState
    error: str = ""
    detail: str = ""
    # From the ended activity's typed result: the candidates a scoring run added.
    new_candidates: int = 0

    def progress_text(self) -> str:
        if self.total:
            return f"{self.done}/{self.total}"
        return "…"


@dataclass(frozen=True)
class ActivityEvent:
    kind: ActivityEventKind
    activity: ActivityView | None


@dataclass(frozen=True)
class Ending:
    """An activity that ended while we watched: what the user is told."""

    source: str
    activity: ActivityView

    @property
    def failed(self) -> bool:
        return self.activity.state in (ActivityState.FAILED, ActivityState.CANCELLED)

    def message(self) -> str:
        activity = self.activity
        text = f"{activity.label or activity.kind} {activity.state.value}"
        if activity.error:
            text += f": {activity.error}"
        elif activity.detail:
            text += f" ({activity.detail})"
        return text


def _bar(done: int, total: int, width: int = 12) -> str:
    if total <= 0:
        return ""
    filled = min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


@dataclass(frozen=True)
class Notice:
    """What the screen tells the user once: an activity's end, or a scoring batch's."""

    title: str
    message: str
    failed: bool


@dataclass
class ActivityBoard:
    running: dict[str, dict[str, ActivityView]] = field(default_factory=dict)
    """source -> activity id -> latest view."""
    connected: dict[str, bool] = field(default_factory=dict)
    last_ending: Ending | None = None
    last_summary: str = ""
    batch: BatchTracker = field(
        default_factory=lambda: BatchTracker(failure_hint=" (see the log: ftreview watch)")
    )
    clock: Callable[[], float] = time.monotonic
    _staging: dict[str, dict[str, ActivityView]] = field(default_factory=dict)
    # Per running activity id: (when its progress was first seen, its `done` then), for
    # the time left at the rate seen since (`eta`).
    _first_seen: dict[str, tuple[float, int]] = field(default_factory=dict)

    def disconnected(self, source: str) -> None:
        self.connected[source] = False

    def on_event(self, source: str, event: ActivityEvent) -> Notice | None:
        """Apply one event; returns what to announce, if this event ends something."""
        activity = event.activity
        now = self.clock()
        if event.kind is ActivityEventKind.SNAPSHOT:
            staged = self._staging.setdefault(source, {})
            if activity is not None and activity.state is ActivityState.RUNNING:
                staged[activity.id] = activity
            return None
        if event.kind is ActivityEventKind.SNAPSHOT_END:
            self.running[source] = self._staging.pop(source, {})
            self.connected[source] = True
            scoring_ids = {a.id for a in self.running[source].values() if a.kind == SCORING_KIND}
            self.batch.resync(scoring_ids, now)
            return None
        if activity is None:
            return None
        running = self.running.setdefault(source, {})
        scoring = activity.kind == SCORING_KIND
        if event.kind is ActivityEventKind.ENDED or activity.state is not ActivityState.RUNNING:
            running.pop(activity.id, None)
            self._first_seen.pop(activity.id, None)
            ending = Ending(source, activity)
            self.last_ending = ending
            if not scoring:
                return Notice(activity.kind or "activity", ending.message(), ending.failed)
            return self._summary(
                self.batch.ended(activity.id, ending.failed, now, activity.new_candidates)
            )
        running[activity.id] = activity
        self._first_seen.setdefault(activity.id, (now, activity.done))
        if scoring:
            self.batch.progress(activity.id, activity.done, activity.total, now)
        return None

    def _summary(self, summary: str | None) -> Notice | None:
        if summary is None:
            return None
        self.last_summary = summary
        return Notice("scoring", summary, failed=False)

    def all_running(self) -> list[tuple[str, ActivityView]]:
        return [
            (source, activity)
            for source, activities in sorted(self.running.items())
            for activity in activities.values()
        ]

    def describe(self) -> str:
        """One line: the scoring batch and other running work, else the last end, else idle."""
        parts: list[str] = []
        batch_line = self.batch.line(self.clock())
        if batch_line is not None:
            parts.append(f"⟳ {batch_line}")
        for _source, activity in self.all_running():
            if batch_line is not None and activity.kind == SCORING_KIND:
                continue
            piece = f"⟳ {activity.label or activity.kind} {activity.progress_text()}"
            bar = _bar(activity.done, activity.total)
            if bar:
                piece += f" {bar}"
            left = self.eta(activity)
            if left:
                piece += f" ~{left} left"
            if activity.detail:
                piece += f" ({activity.detail})"
            parts.append(piece)
        if not parts:
            if self.last_summary and (
                self.last_ending is None or self.last_ending.activity.kind == SCORING_KIND
            ):
                parts.append(f"✓ {self.last_summary}")
            elif self.last_ending is not None and self.last_ending.failed:
                # A failure stays until other work runs; a success was announced once (a
                # notice) and is not left behind while other rows are viewed.
                parts.append(f"✗ {self.last_ending.message()}")
            else:
                parts.append("idle: no activity running")
        if not all(self.connected.values()):
            parts.append("activity stream reconnecting…")
        return "  ·  ".join(parts)

    def eta(self, activity: ActivityView) -> str:
        """The time `activity` has left at the rate its steps went since first seen ("" until
        2 s and one step were seen, or without a total)."""
        first = self._first_seen.get(activity.id)
        if first is None or activity.total <= 0:
            return ""
        since, done_then = first
        elapsed, steps = self.clock() - since, activity.done - done_then
        if elapsed < 2 or steps <= 0:
            return ""
        return duration(elapsed / steps * max(0, activity.total - activity.done))

    @property
    def idle(self) -> bool:
        return not self.all_running()
