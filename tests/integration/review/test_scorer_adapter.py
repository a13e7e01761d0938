"""The Review's Scorer adapter (`GrpcScorer`) against a stand-in Scorer over real gRPC on
127.0.0.1: results come back as domain values and name the adapter that served them, the
bearer token travels on every call (streams too), and each failure becomes the Review's
domain error with the Scorer's message."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import grpc.aio
import pytest
from ftreview.core.activity_hub import ActivityHub
from ftreview.core.security import BearerTokenInterceptor
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import (
    activity_pb2_grpc,
    conversation_pb2,
    scorer_pb2,
    scorer_pb2_grpc,
)
from review_support import FakeActivities

from review_service.adapters.scorer_grpc import GrpcScorer
from review_service.adapters.scorer_wire import conversation_from_wire
from review_service.domain.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ScorerUnavailable,
)
from review_service.domain.model import Conversation

TOKEN = "review-to-scorer"
REPLY_NS = 1_772_000_000_000_001_000


def conversation() -> Conversation:
    wire = conversation_pb2.Conversation(id="c1")
    memory = wire.nodes.add(
        memory=True,
        leaf=conversation_pb2.Leaf(role=conversation_pb2.ROLE_SYSTEM, content="Cat: Biscuit."),
    )
    memory.timestamp.CopyFrom(to_timestamp(REPLY_NS - 2))
    asked = wire.nodes.add(
        leaf=conversation_pb2.Leaf(role=conversation_pb2.ROLE_USER, content="My cat?")
    )
    asked.timestamp.CopyFrom(to_timestamp(REPLY_NS - 1))
    reply = wire.nodes.add(
        leaf=conversation_pb2.Leaf(role=conversation_pb2.ROLE_ASSISTANT, content="Biscuit.")
    )
    reply.timestamp.CopyFrom(to_timestamp(REPLY_NS))
    return conversation_from_wire(wire)


class StandIn(scorer_pb2_grpc.ScorerServicer):  # type: ignore[misc]
    """Answers as a Scorer serving `adapter`; `abort` makes every call end with that status;
    `delay` holds an alternate that long."""

    def __init__(self, hub: ActivityHub) -> None:
        self.hub = hub
        self.adapter = "v3"
        self.abort: tuple[grpc.StatusCode, str] | None = None
        self.delay = 0.0
        self.requests: list[object] = []

    async def _check(self, request: object, context: grpc.aio.ServicerContext) -> None:
        self.requests.append(request)
        if self.abort is not None:
            await context.abort(*self.abort)

    async def ScoreConversation(
        self, request: scorer_pb2.ScoreConversationRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ScoreConversationResponse:
        await self._check(request, context)
        activity = self.hub.start("score", "score", total=2, activity_id=request.request_id)
        activity.progress(1, 2, "half way")
        await asyncio.sleep(0.2)  # a watcher started with the call sees the progress
        activity.succeed()
        response = scorer_pb2.ScoreConversationResponse(
            activity_id=activity.id,
            conversation_id=request.conversation.id,
            max_divergence=0.5,
            adapter=self.adapter,
        )
        reply = response.replies.add(content="Biscuit.", divergence=0.5, scored=True)
        reply.candidate = True
        reply.timestamp.CopyFrom(to_timestamp(REPLY_NS))
        reply.tokens.add(token_id=7, text="Bis", divergence=1.0)
        response.stats.conversation_id = request.conversation.id
        response.stats.responses_seen = 1
        return response

    async def GenerateAlternate(
        self, request: scorer_pb2.GenerateAlternateRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.GenerateAlternateResponse:
        await self._check(request, context)
        await asyncio.sleep(self.delay)
        text = f"alternate of {timestamp_ns(request.reply_timestamp)}"
        return scorer_pb2.GenerateAlternateResponse(text=text, adapter=self.adapter)

    async def Answer(
        self, request: scorer_pb2.AnswerRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.AnswerResponse:
        await self._check(request, context)
        return scorer_pb2.AnswerResponse(text="Biscuit", adapter=self.adapter)


@dataclass
class Running:
    scorer: StandIn
    address: str


@pytest.fixture
async def stand_in() -> AsyncIterator[Running]:
    hub = ActivityHub()
    scorer = StandIn(hub)
    server = grpc.aio.server(interceptors=[BearerTokenInterceptor(TOKEN)])
    scorer_pb2_grpc.add_ScorerServicer_to_server(scorer, server)
    activity_pb2_grpc.add_ActivitiesServicer_to_server(FakeActivities(hub), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Running(scorer, f"127.0.0.1:{port}")
    await server.stop(None)


@pytest.fixture
async def adapter(stand_in: Running) -> AsyncIterator[GrpcScorer]:
    scorer = GrpcScorer(stand_in.address, 64 * 1024 * 1024, token=TOKEN)
    await scorer.ready(5.0)
    yield scorer
    await scorer.close()


async def test_a_score_names_the_adapter_that_served_it(adapter: GrpcScorer) -> None:
    result = await adapter.score(conversation(), 0.1, [], [REPLY_NS], "req-1")
    assert result.adapter == "v3"
    assert [r.timestamp_ns for r in result.replies] == [REPLY_NS]
    assert result.replies[0].candidate and result.replies[0].tokens[0].text == "Bis"
    assert result.max_divergence == 0.5 and result.stats.conversation_id == "c1"


async def test_the_base_model_is_named_by_an_empty_adapter(
    adapter: GrpcScorer, stand_in: Running
) -> None:
    stand_in.scorer.adapter = ""
    assert (await adapter.score(conversation(), 0.1, [], [], "req-2")).adapter == ""
    assert (await adapter.answer(conversation(), 8)).adapter == ""


async def test_alternates_and_answers_come_back(adapter: GrpcScorer, stand_in: Running) -> None:
    assert await adapter.alternate(conversation(), REPLY_NS, "alt-1", 5.0) == (
        f"alternate of {REPLY_NS}"
    )
    answer = await adapter.answer(conversation(), 8)
    assert (answer.text, answer.adapter) == ("Biscuit", "v3")
    sent = stand_in.scorer.requests[0]
    assert isinstance(sent, scorer_pb2.GenerateAlternateRequest)
    assert sent.request_id == "alt-1" and timestamp_ns(sent.reply_timestamp) == REPLY_NS


async def test_progress_is_relayed_with_the_token(adapter: GrpcScorer) -> None:
    seen = []

    async def watch() -> None:
        async for progress in adapter.progress("req-3"):
            seen.append(progress)

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.1)  # watching before the call starts, as the Review does
    await adapter.score(conversation(), 0.1, [], [], "req-3")
    await asyncio.sleep(0.1)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert any(p.done == 1 and p.total == 2 and p.detail == "half way" for p in seen)


async def test_an_alternate_past_its_deadline_is_deadline_exceeded(
    adapter: GrpcScorer, stand_in: Running
) -> None:
    stand_in.scorer.delay = 2.0
    with pytest.raises(DeadlineExceeded, match="did not answer in time"):
        await adapter.alternate(conversation(), REPLY_NS, "alt-2", 0.2)


@pytest.mark.parametrize(
    ("code", "expected", "words"),
    [
        (grpc.StatusCode.UNAVAILABLE, ScorerUnavailable, "is unavailable: engine down"),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument, "the Scorer refused it: engine down"),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition, "refused: engine down"),
    ],
)
async def test_scorer_failures_become_review_errors(
    adapter: GrpcScorer,
    stand_in: Running,
    code: grpc.StatusCode,
    expected: type[Exception],
    words: str,
) -> None:
    stand_in.scorer.abort = (code, "engine down")
    with pytest.raises(expected, match=re.escape(words)) as caught:
        await adapter.score(conversation(), 0.1, [], [], "req-4")
    assert caught.value.__cause__ is not None  # the client's error, chained


async def test_a_wrong_token_says_how_to_give_the_right_one(stand_in: Running) -> None:
    scorer = GrpcScorer(stand_in.address, 64 * 1024 * 1024, token="wrong")
    try:
        with pytest.raises(FailedPrecondition, match=r"wrong bearer token.*--scorer-token-file"):
            await scorer.score(conversation(), 0.1, [], [], "req-5")
        # Progress cannot be watched either, and ends quietly.
        assert [p async for p in scorer.progress("req-5")] == []
    finally:
        await scorer.close()


async def test_an_unreachable_scorer_is_unavailable() -> None:
    scorer = GrpcScorer("127.0.0.1:9", 64 * 1024 * 1024)
    try:
        with pytest.raises(ScorerUnavailable, match="not reachable"):
            await scorer.ready(0.3)
        with pytest.raises(ScorerUnavailable, match=r"127\.0\.0\.1:9 is unavailable"):
            await scorer.answer(conversation(), 8)
    finally:
        await scorer.close()
