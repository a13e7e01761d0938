"""Fan-out of candidate-set changes to any number of watchers (WatchCandidates).

Invariants:
- a watcher sees a snapshot of the visible candidates, then every change after it; the
  snapshot is taken in the same step that registers the watcher, so nothing falls between;
- a slow watcher never blocks the writer or other watchers (`ftreview.core.fanout`): a
  change to a candidate that is still waiting for a watcher replaces the waiting event (one
  entry per candidate, so memory is bounded by the size of the list); the merged kind keeps
  what the watcher needs (ADDED then UPDATED is still ADDED; anything then REMOVED is
  REMOVED);
- the latest stats per conversation are coalesced the same way.

Use from one event loop.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ftreview.core.fanout import Fanout

from review_service.domain.model import Candidate, ScoringStats


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
    # The stats of the pass a STATS event announces.
    stats: ScoringStats | None = None


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


def _coalesce(waiting: CandidateEvent, new: CandidateEvent) -> CandidateEvent:
    if new.candidate is None:
        return new  # stats: the latest wins
    return CandidateEvent(_merge(waiting.kind, new.kind), new.candidate)


class CandidateFeed:
    def __init__(self) -> None:
        self._fanout: Fanout[CandidateEvent] = Fanout(_coalesce)

    @property
    def watcher_count(self) -> int:
        return self._fanout.watcher_count

    def publish(self, event: CandidateEvent) -> None:
        if event.candidate is not None:
            key: object = ("candidate", event.candidate.timestamp_ns)
        else:
            key = ("stats", event.stats.conversation_id if event.stats is not None else "")
        self._fanout.publish(event, key)

    async def watch(self, snapshot: Callable[[], list[Candidate]]) -> AsyncIterator[CandidateEvent]:
        """Snapshot events, SNAPSHOT_END, then live changes until the feed closes."""
        # No await between registering and reading the snapshot: no change can fall between.
        with self._fanout.watch() as watch:
            if watch.closed:
                return
            for candidate in snapshot():
                yield CandidateEvent(EventKind.SNAPSHOT, candidate)
            yield CandidateEvent(EventKind.SNAPSHOT_END)
            async for event in watch:
                yield event

    def close(self) -> None:
        """End every watch (server shutdown): streams finish instead of being cut."""
        self._fanout.close()
