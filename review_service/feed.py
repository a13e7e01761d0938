"""Fan-out of candidate-set changes to any number of watchers (WatchCandidates).

Invariants:
- a watcher sees a snapshot of the visible candidates, then every change after it; the
  snapshot is taken in the same step that registers the watcher, so nothing falls between;
- a slow watcher never blocks the writer or other watchers: each watcher has its own
  pending map, and a change to a candidate that is still waiting there replaces the waiting
  event (one entry per candidate, so memory is bounded by the size of the list); the merged
  kind keeps what the watcher needs (ADDED then UPDATED is still ADDED; anything then
  REMOVED is REMOVED);
- the latest stats per conversation are coalesced the same way.

Use from one event loop.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .model import Candidate


class EventKind(enum.Enum):
    SNAPSHOT = 1
    SNAPSHOT_END = 2
    ADDED = 3
    UPDATED = 4
    STATUS_CHANGED = 5
    REMOVED = 6
    STATS = 7


@dataclass(frozen=True, eq=False)
class CandidateEvent:
    kind: EventKind
    candidate: Candidate | None = None
    # A FinetuneScoringStats message for STATS events (opaque to the feed).
    stats: Any = None


def _merge(waiting: EventKind, new: EventKind) -> EventKind:
    """The kind of one event that stands for `waiting` followed by `new`."""
    if new == EventKind.REMOVED:
        return EventKind.REMOVED
    if waiting in (EventKind.ADDED, EventKind.REMOVED):
        # The watcher has not seen it yet, or last saw it leave: to the watcher it arrives.
        return EventKind.ADDED
    if EventKind.STATUS_CHANGED in (waiting, new):
        return EventKind.STATUS_CHANGED
    return new


class _Watcher:
    def __init__(self) -> None:
        self.pending: OrderedDict[object, CandidateEvent] = OrderedDict()
        self.wake = asyncio.Event()
        self.closed = False

    def offer(self, key: object, event: CandidateEvent) -> None:
        waiting = self.pending.get(key)
        if waiting is not None and event.candidate is not None:
            event = CandidateEvent(_merge(waiting.kind, event.kind), event.candidate)
        self.pending[key] = event  # an existing key keeps its place in line
        self.wake.set()


class CandidateFeed:
    def __init__(self) -> None:
        self._watchers: set[_Watcher] = set()
        self._closed = False

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    def publish(self, event: CandidateEvent) -> None:
        if event.candidate is not None:
            key: object = ("candidate", event.candidate.timestamp_ns)
        else:
            key = ("stats", getattr(event.stats, "conversation_id", ""))
        for watcher in self._watchers:
            watcher.offer(key, event)

    async def watch(self, snapshot: Callable[[], list[Candidate]]) -> AsyncIterator[CandidateEvent]:
        """Snapshot events, SNAPSHOT_END, then live changes until the feed closes."""
        watcher = _Watcher()
        if self._closed:
            return
        # No await between registering and reading the snapshot: no change can fall between.
        self._watchers.add(watcher)
        try:
            for candidate in snapshot():
                yield CandidateEvent(EventKind.SNAPSHOT, candidate)
            yield CandidateEvent(EventKind.SNAPSHOT_END)
            while True:
                if not watcher.pending:
                    if watcher.closed:
                        return  # after delivering what was pending
                    await watcher.wake.wait()
                    watcher.wake.clear()
                    continue
                _, event = watcher.pending.popitem(last=False)
                yield event
        finally:
            self._watchers.discard(watcher)

    def close(self) -> None:
        """End every watch (server shutdown): streams finish instead of being cut."""
        self._closed = True
        for watcher in self._watchers:
            watcher.closed = True
            watcher.wake.set()
