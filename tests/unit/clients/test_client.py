"""The clients send what their plain arguments mean, find their servers the documented
way, and present streams as iterators that end the call when the caller stops."""

from __future__ import annotations

import asyncio

import pytest
from ftreview import client as client_module
from ftreview.client import (
    AsyncReviewClient,
    ReviewClient,
    resolve_review_address,
    resolve_scorer_address,
)
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, review_pb2

from tests.unit.clients.conftest import Serve
from tests.unit.clients.fakes import FakeActivities, FakeReview

# A reply id with every nanosecond digit in use: a float would round it.
REPLY_NS = 1_718_000_000_123_456_789

_Kind = activity_pb2.ActivityEventKind


def test_address_comes_from_argument_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FTREVIEW_SCORER_ADDR", raising=False)
    monkeypatch.delenv("FTREVIEW_REVIEW_ADDR", raising=False)
    assert resolve_scorer_address() == "127.0.0.1:50051"
    assert resolve_review_address() == "127.0.0.1:50052"
    monkeypatch.setenv("FTREVIEW_SCORER_ADDR", "scorer.internal:7000")
    monkeypatch.setenv("FTREVIEW_REVIEW_ADDR", "review.internal:7001")
    assert resolve_scorer_address() == "scorer.internal:7000"
    assert resolve_review_address() == "review.internal:7001"
    assert resolve_review_address("10.0.0.5:9") == "10.0.0.5:9"
    assert ReviewClient().address == "review.internal:7001"


def test_ids_keep_every_nanosecond_and_names_map_to_enums(serve: Serve) -> None:
    fake = FakeReview()
    with ReviewClient(serve(review=fake)) as client:
        approved = client.approve([REPLY_NS, REPLY_NS + 1])
        client.list_candidates(["approved", "sent"], order="time", conversation_id="c1")
        client.export("trl", timestamps_ns=[REPLY_NS], mark_trained=True)
    assert [timestamp_ns(c.timestamp) for c in approved] == [REPLY_NS, REPLY_NS + 1]
    sent = dict(fake.requests)
    assert [timestamp_ns(t) for t in sent["Approve"].timestamps] == [REPLY_NS, REPLY_NS + 1]
    listing = sent["ListCandidates"]
    assert list(listing.statuses) == [
        review_pb2.CANDIDATE_STATUS_APPROVED,
        review_pb2.CANDIDATE_STATUS_SENT,
    ]
    assert listing.order == review_pb2.CANDIDATE_ORDER_TIME
    assert listing.conversation_id == "c1"
    assert sent["Export"].format == review_pb2.EXPORT_FORMAT_TRL
    assert sent["Export"].mark_trained


def test_unknown_names_are_refused_before_any_call(serve: Serve) -> None:
    fake = FakeReview()
    with ReviewClient(serve(review=fake)) as client:
        with pytest.raises(ValueError, match="unknown status 'done'"):
            client.list_candidates(["done"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="exactly one of value or steps"):
            client.set_threshold()
        with pytest.raises(ValueError, match="exactly one of value or steps"):
            client.set_threshold(1e-3, steps=1)
    assert fake.requests == []


async def test_set_threshold_sends_a_value_or_steps(serve: Serve) -> None:
    fake = FakeReview()
    async with AsyncReviewClient(serve(review=fake)) as client:
        config = await client.set_threshold(steps=-2)
        await client.set_threshold(0.5)
    assert config.threshold == 1e-6
    by_steps, by_value = (r for name, r in fake.requests if name == "SetThreshold")
    assert by_steps.WhichOneof("change") == "steps" and by_steps.steps == -2
    assert by_value.WhichOneof("change") == "value" and by_value.value == 0.5


def test_unary_calls_carry_a_deadline(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    fake = FakeReview()
    with ReviewClient(serve(review=fake), timeout=7.5) as client:
        original = client._stub.GetConfig

        def spy(request: object, **kwargs: object) -> object:
            seen.append(kwargs.get("timeout"))
            return original(request, **kwargs)

        monkeypatch.setattr(client._stub, "GetConfig", spy)
        client.get_config()
    assert seen == [7.5]


async def test_breaking_out_of_watch_candidates_cancels_the_call(serve: Serve) -> None:
    fake = FakeReview()
    fake.watch_events = [
        review_pb2.WatchCandidatesResponse(
            kind=review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT,
            candidate=review_pb2.Candidate(timestamp=to_timestamp(REPLY_NS)),
        ),
        review_pb2.WatchCandidatesResponse(kind=review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT_END),
    ]
    async with AsyncReviewClient(serve(review=fake)) as client:
        kinds = []
        async for event in client.watch_candidates():
            kinds.append(event.kind)
            if event.kind == review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT_END:
                break
    assert kinds == [
        review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT,
        review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT_END,
    ]
    deadline = asyncio.get_running_loop().time() + 5
    while not fake.watch_cancelled and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert fake.watch_cancelled


def _activity(activity_id: str, kind: int, state: int = 1) -> activity_pb2.WatchActivitiesResponse:
    return activity_pb2.WatchActivitiesResponse(
        kind=kind, activity=activity_pb2.Activity(id=activity_id, state=state)
    )


def _end() -> activity_pb2.WatchActivitiesResponse:
    return activity_pb2.WatchActivitiesResponse(kind=_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END)


def _merged_scenario() -> tuple[FakeActivities, FakeActivities]:
    review = FakeActivities(
        [_activity("send-1", _Kind.ACTIVITY_EVENT_KIND_SNAPSHOT), _end(),
         _activity("send-1", _Kind.ACTIVITY_EVENT_KIND_ENDED, state=2)]
    )  # fmt: skip
    scorer = FakeActivities(
        [_end(), _activity("score-1", _Kind.ACTIVITY_EVENT_KIND_STARTED),
         _activity("score-1", _Kind.ACTIVITY_EVENT_KIND_ENDED, state=3)]
    )  # fmt: skip
    return review, scorer


async def test_review_watch_activities_merges_review_and_scorer_with_one_snapshot_end(
    serve: Serve,
) -> None:
    review_acts, scorer_acts = _merged_scenario()
    review = serve(review=FakeReview(), activities=review_acts)
    scorer = serve(activities=scorer_acts)
    async with AsyncReviewClient(review, scorer_address=scorer) as client:
        events = [e async for e in client.watch_activities("x")]
    ends = [i for i, e in enumerate(events) if e.kind == _Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END]
    assert len(ends) == 1
    # The snapshot precedes the single end marker.
    assert (
        events.index(next(e for e in events if e.kind == _Kind.ACTIVITY_EVENT_KIND_SNAPSHOT))
        < ends[0]
    )
    ended = {e.activity.id for e in events if e.kind == _Kind.ACTIVITY_EVENT_KIND_ENDED}
    assert ended == {"send-1", "score-1"}
    assert [r.activity_id for r in review_acts.requests] == ["x"]
    assert [r.activity_id for r in scorer_acts.requests] == ["x"]


def test_sync_watch_activities_merges_the_same_way(serve: Serve) -> None:
    review_acts, scorer_acts = _merged_scenario()
    review = serve(review=FakeReview(), activities=review_acts)
    scorer = serve(activities=scorer_acts)
    with ReviewClient(review, scorer_address=scorer) as client:
        events = list(client.watch_activities())
    kinds = [e.kind for e in events]
    assert kinds.count(_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END) == 1
    assert {e.activity.id for e in events if e.kind == _Kind.ACTIVITY_EVENT_KIND_ENDED} == {
        "send-1",
        "score-1",
    }


async def test_a_review_server_without_activities_leaves_only_the_scorers(serve: Serve) -> None:
    _, scorer_acts = _merged_scenario()
    review = serve(review=FakeReview())  # no Activities service: UNIMPLEMENTED
    scorer = serve(activities=scorer_acts)
    async with AsyncReviewClient(review, scorer_address=scorer) as client:
        events = [e async for e in client.watch_activities()]
    assert [e.kind for e in events] == [
        _Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END,
        _Kind.ACTIVITY_EVENT_KIND_STARTED,
        _Kind.ACTIVITY_EVENT_KIND_ENDED,
    ]


def test_status_and_reason_names() -> None:
    assert client_module.status_name(review_pb2.CANDIDATE_STATUS_APPROVED) == "approved"
    assert client_module.reason_name(1) == "below_threshold"
    assert client_module.activity_state_name(3) == "failed"


def test_merge_holds_live_events_until_every_snapshot_has_ended() -> None:
    merge = client_module._ActivityMerge(2)
    out = []
    out += merge.event(_end())  # the first server's snapshot is done
    out += merge.event(_activity("a", _Kind.ACTIVITY_EVENT_KIND_STARTED))  # live, held
    out += merge.event(_activity("b", _Kind.ACTIVITY_EVENT_KIND_SNAPSHOT))  # second's snapshot
    assert [e.kind for e in out] == [_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT]
    out += merge.event(_end())
    assert [(e.kind, e.activity.id) for e in out] == [
        (_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT, "b"),
        (_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END, ""),
        (_Kind.ACTIVITY_EVENT_KIND_STARTED, "a"),
    ]


def test_the_scorers_copy_of_a_scoring_activity_is_left_out_of_the_review_merge() -> None:
    merge = client_module._ActivityMerge(2, client_module._REVIEW_MERGE_HIDDEN)
    score = activity_pb2.WatchActivitiesResponse(
        kind=_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT,
        activity=activity_pb2.Activity(id="r1", kind="score"),
    )
    alternate = activity_pb2.WatchActivitiesResponse(
        kind=_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT,
        activity=activity_pb2.Activity(id="a1", kind="alternate"),
    )
    assert merge.event(score, 0) == [score]  # the Review's own
    assert merge.event(score, 1) == []  # the Scorer's copy
    assert merge.event(alternate, 1) == [alternate]
