"""The status line's model: what is running now and what just ended, from activity streams.

The status line is drawn from the Activities streams of the Review and the Scorer and from
nothing else (no polling, no guessing from RPC results), so it shows the work the services
actually do, including work started from another terminal. The invariants it keeps:

- the running set of a source is what that source's stream last said: a fresh snapshot
  (after a reconnect) replaces it, so an activity that ended while the stream was down
  does not stay "running" forever;
- an end is reported once, and only when it was seen live (ends replayed in a snapshot are
  history, not news).

Plain Python; the screen only renders `describe()` and the endings `on_event` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


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


@dataclass
class ActivityBoard:
    running: dict[str, dict[str, ActivityView]] = field(default_factory=dict)
    """source -> activity id -> latest view."""
    connected: dict[str, bool] = field(default_factory=dict)
    last_ending: Ending | None = None
    _staging: dict[str, dict[str, ActivityView]] = field(default_factory=dict)

    def disconnected(self, source: str) -> None:
        self.connected[source] = False

    def on_event(self, source: str, event: ActivityEvent) -> Ending | None:
        """Apply one event; returns the ending to announce, if this event is one."""
        activity = event.activity
        if event.kind is ActivityEventKind.SNAPSHOT:
            staged = self._staging.setdefault(source, {})
            if activity is not None and activity.state is ActivityState.RUNNING:
                staged[activity.id] = activity
            return None
        if event.kind is ActivityEventKind.SNAPSHOT_END:
            self.running[source] = self._staging.pop(source, {})
            self.connected[source] = True
            return None
        if activity is None:
            return None
        running = self.running.setdefault(source, {})
        if event.kind is ActivityEventKind.ENDED or activity.state is not ActivityState.RUNNING:
            running.pop(activity.id, None)
            self.last_ending = Ending(source, activity)
            return self.last_ending
        running[activity.id] = activity
        return None

    def all_running(self) -> list[tuple[str, ActivityView]]:
        return [
            (source, activity)
            for source, activities in sorted(self.running.items())
            for activity in activities.values()
        ]

    def describe(self) -> str:
        """One line: running work with progress, else the last ending, else idle."""
        parts: list[str] = []
        for _source, activity in self.all_running():
            piece = f"⟳ {activity.label or activity.kind} {activity.progress_text()}"
            bar = _bar(activity.done, activity.total)
            if bar:
                piece += f" {bar}"
            if activity.detail:
                piece += f" ({activity.detail})"
            parts.append(piece)
        if not parts:
            if self.last_ending is not None:
                mark = "✗" if self.last_ending.failed else "✓"
                parts.append(f"{mark} {self.last_ending.message()}")
            else:
                parts.append("idle: no activity running")
        if not all(self.connected.values()):
            parts.append("activity stream reconnecting…")
        return "  ·  ".join(parts)
