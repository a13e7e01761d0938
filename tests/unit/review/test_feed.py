"""Candidate fan-out: snapshot then changes; a slow watcher gets coalesced events."""

from __future__ import annotations

from review_service.app.feed import CandidateEvent, CandidateFeed, EventKind
from review_service.domain.model import Candidate, Status


def cand(ts: int, status: Status = Status.PENDING) -> Candidate:
    return Candidate(ts, "c", "r", (), 1.0, 1.0, status=status)


async def test_snapshot_then_live_changes() -> None:
    feed = CandidateFeed()
    stream = feed.watch(lambda: [cand(1)])
    assert (await anext(stream)).kind == EventKind.SNAPSHOT
    assert (await anext(stream)).kind == EventKind.SNAPSHOT_END
    feed.publish(CandidateEvent(EventKind.ADDED, cand(2)))
    event = await anext(stream)
    assert (event.kind, event.candidate and event.candidate.timestamp_ns) == (EventKind.ADDED, 2)
    feed.close()
    assert [e async for e in stream] == []


async def test_a_backlog_is_coalesced_to_one_event_per_candidate_with_the_right_kind() -> None:
    feed = CandidateFeed()
    stream = feed.watch(list)
    await anext(stream)  # SNAPSHOT_END registers nothing new; the watcher is live
    feed.publish(CandidateEvent(EventKind.ADDED, cand(1)))
    feed.publish(CandidateEvent(EventKind.STATUS_CHANGED, cand(1, Status.APPROVED)))
    feed.publish(CandidateEvent(EventKind.UPDATED, cand(2)))
    feed.publish(CandidateEvent(EventKind.STATUS_CHANGED, cand(2, Status.REJECTED)))
    feed.publish(CandidateEvent(EventKind.UPDATED, cand(3)))
    feed.publish(CandidateEvent(EventKind.REMOVED, cand(3, Status.SENT)))
    feed.close()
    events = [
        (e.kind, e.candidate.timestamp_ns, e.candidate.status) async for e in stream if e.candidate
    ]
    assert events == [
        (EventKind.ADDED, 1, Status.APPROVED),
        (EventKind.STATUS_CHANGED, 2, Status.REJECTED),
        (EventKind.REMOVED, 3, Status.SENT),
    ]
