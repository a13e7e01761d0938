"""The clients send what their plain arguments mean, find their servers the documented
way, and present streams as iterators that end the call when the caller stops."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import grpc
import pytest
from ftreview import client as client_module
from ftreview import errors
from ftreview.client import (
    AsyncReviewClient,
    AsyncScorerClient,
    ReviewClient,
    ScorerClient,
    resolve_review_address,
    resolve_scorer_address,
)
from ftreview.client.base import stream, unary
from ftreview.client.common import ServerCalls
from ftreview.client.review import ReviewCalls
from ftreview.client.scorer import ScorerCalls
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2
from google.protobuf.descriptor import ServiceDescriptor

from tests.unit.clients.conftest import Serve
from tests.unit.clients.fakes import FakeActivities, FakeReview, FakeScorer

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


class DeadlineReview(FakeReview):
    """Records, per call, the time its deadline left it when it reached the server (None:
    no deadline). `Send` then fails as the plain fake's does: UNIMPLEMENTED."""

    def __init__(self) -> None:
        super().__init__()
        self.time_left: dict[str, float | None] = {}

    def GetConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.time_left["GetConfig"] = context.time_remaining()
        return super().GetConfig(request, context)

    def Send(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.time_left["Send"] = context.time_remaining()
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Send is not served here")


def test_unary_calls_carry_a_deadline(serve: Serve) -> None:
    fake = DeadlineReview()
    with ReviewClient(serve(review=fake), timeout=7.5, long_timeout=99.0) as client:
        client.get_config()
        with pytest.raises(errors.Unimplemented):
            client.send()
    # The server sees the deadline sent, less the trip there (gRPC rounds the timeout it
    # puts on the wire up to a coarser unit, so a little more is possible too).
    assert fake.time_left == {
        "GetConfig": pytest.approx(7.5, abs=0.5),
        "Send": pytest.approx(99.0, abs=1.0),
    }


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


def _review_activities() -> FakeActivities:
    return FakeActivities(
        [_activity("send-1", _Kind.ACTIVITY_EVENT_KIND_SNAPSHOT),
         activity_pb2.WatchActivitiesResponse(kind=_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END),
         _activity("score-1", _Kind.ACTIVITY_EVENT_KIND_STARTED),
         _activity("send-1", _Kind.ACTIVITY_EVENT_KIND_ENDED, state=2)]
    )  # fmt: skip


async def test_watch_activities_is_the_review_stream_alone(serve: Serve) -> None:
    """The Review relays the Scorer's progress itself: its client needs no Scorer."""
    activities = _review_activities()
    address = serve(review=FakeReview(), activities=activities)
    async with AsyncReviewClient(address) as client:
        events = [e async for e in client.watch_activities("x")]
    with ReviewClient(address) as blocking:
        assert list(blocking.watch_activities("x")) == events
    assert events == activities.events
    assert [r.activity_id for r in activities.requests] == ["x", "x"]


def _rpc_names(service: ServiceDescriptor) -> set[str]:
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", m.name).lower() for m in service.methods}


@pytest.mark.parametrize(
    ("calls", "services"),
    [
        (ReviewCalls, [review_pb2.DESCRIPTOR.services_by_name["Review"]]),
        (ScorerCalls, [scorer_pb2.DESCRIPTOR.services_by_name["Scorer"]]),
    ],
)
def test_every_rpc_of_the_contract_is_described_once_for_both_clients(
    calls: type, services: list[ServiceDescriptor]
) -> None:
    described = {name for name, value in vars(calls).items() if isinstance(value, unary | stream)}
    assert _rpc_names(services[0]) <= described
    shared = {"health", "list_activities", "watch_activities"}
    assert shared <= {n for n, v in vars(ServerCalls).items() if isinstance(v, unary | stream)}


async def test_sync_and_async_send_the_same_requests_for_the_new_calls(serve: Serve) -> None:
    fake = FakeReview()
    address = serve(review=fake)

    with ReviewClient(address) as client:
        jobs = client.list_jobs()
        answer = client.ask("What is my cat called?", conversation_id="c1", max_new_tokens=9)
        conversation = client.get_conversation("c1")
        client.list_candidates(search="cat", min_divergence=0.5, conversation_id="c1")
    blocking = list(fake.requests)
    fake.requests.clear()
    async with AsyncReviewClient(address) as aclient:
        assert await aclient.list_jobs() == jobs
        assert (
            await aclient.ask("What is my cat called?", conversation_id="c1", max_new_tokens=9)
            == answer
        )
        assert await aclient.get_conversation("c1") == conversation
        await aclient.list_candidates(search="cat", min_divergence=0.5, conversation_id="c1")
    assert fake.requests == blocking

    assert [j.id for j in jobs] == ["job-1"]
    assert (answer.answer, answer.adapter) == ("echo: What is my cat called?", "v1")
    assert conversation.id == "c1"
    sent = dict(blocking)
    assert sent["Ask"].max_new_tokens == 9 and sent["Ask"].conversation_id == "c1"
    listing = sent["ListCandidates"]
    assert listing.search == "cat" and listing.min_divergence == 0.5
    # An unset bound is absent, not 0: "no upper bound" is not "below 0".
    assert listing.HasField("min_divergence") and not listing.HasField("max_divergence")


async def test_scorer_load_adapter_and_answer(serve: Serve) -> None:
    fake = FakeScorer()
    address = serve(scorer=fake)
    question = conversation_pb2.Conversation(id="q")
    with ScorerClient(address) as client:
        assert client.load_adapter("/adapters/v3", name="v3") == "v3"
        assert client.load_adapter("/adapters/v4") == "folder-name"
    async with AsyncScorerClient(address) as aclient:
        answered = await aclient.answer(question, max_new_tokens=5)
    assert (answered.text, answered.adapter) == ("Biscuit", "v1")
    assert [name for name, _ in fake.requests] == ["LoadAdapter", "LoadAdapter", "Answer"]
    assert fake.requests[0][1].path == "/adapters/v3"
    answer_request = fake.requests[2][1]
    assert answer_request.max_new_tokens == 5 and answer_request.conversation.id == "q"


def test_status_and_reason_names() -> None:
    assert client_module.status_name(review_pb2.CANDIDATE_STATUS_APPROVED) == "approved"
    assert client_module.reason_name(1) == "below_threshold"
    assert client_module.activity_state_name(3) == "failed"
    assert client_module.job_state_name(review_pb2.TRAINING_JOB_STATE_SUCCEEDED) == "succeeded"
