"""The Scorer over real gRPC on 127.0.0.1 port 0, on the real embedded model."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ftreview.conversations import load_conversations
from ftreview.core.wire import timestamp_ns
from ftreview.v1 import (
    activity_pb2,
    activity_pb2_grpc,
    conversation_pb2,
    scorer_pb2,
    scorer_pb2_grpc,
)
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from scorer_service.backends.local import LocalBackend
from scorer_service.backends.vllm import VllmBackend
from scorer_service.server import ScorerConfig, ScorerServer, create_server


@pytest.fixture
async def channel(scorer_address: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(scorer_address) as channel:
        yield channel


def _conversation(fixtures_dir: Path, name: str) -> conversation_pb2.Conversation:
    return load_conversations(fixtures_dir / name)[0]


async def test_tokenize_returns_reply_ranges(
    channel: grpc.aio.Channel, fixtures_dir: Path, embedded_backend: LocalBackend
) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    conversation = _conversation(fixtures_dir, "biscuit.json")
    with_memories = await stub.Tokenize(scorer_pb2.TokenizeRequest(conversation=conversation))
    without = await stub.Tokenize(
        scorer_pb2.TokenizeRequest(
            conversation=conversation, variant=scorer_pb2.VARIANT_WITHOUT_MEMORIES
        )
    )
    assert "Biscuit" in with_memories.text and "Memory:" not in without.text
    assert len(without.token_ids) < len(with_memories.token_ids)
    for response in (with_memories, without):
        assert [r.content for r in response.replies] == [
            "Hello! How can I help you today?",
            "Your cat is named Biscuit.",
        ]
        for reply in response.replies:
            ids = list(response.token_ids[reply.start : reply.end])
            assert embedded_backend.tokenizer.decode(ids) == reply.content
    assert timestamp_ns(with_memories.replies[1].timestamp) == 1772355611_000000007


async def test_score_conversation_reports_candidates_and_stats(
    channel: grpc.aio.Channel, fixtures_dir: Path
) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    response = await stub.ScoreConversation(
        scorer_pb2.ScoreConversationRequest(
            conversation=_conversation(fixtures_dir, "biscuit.json"), threshold=0.5
        )
    )
    generic, fact = response.replies
    assert fact.candidate and fact.divergence > 1.0 and fact.peak > fact.divergence
    assert not generic.candidate
    assert generic.reason == scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD
    assert "".join(t.text for t in fact.tokens) == fact.content
    # The token that carried the divergence is a piece of the name only the memory knew.
    peak = max(fact.tokens, key=lambda t: t.divergence)
    assert peak.divergence == fact.peak and peak.text.strip() in "Biscuit"
    assert response.max_divergence == fact.divergence
    assert response.stats.responses_seen == 2 and response.stats.responses_above_threshold == 1
    assert response.stats.threshold == 0.5 and not response.stats.error
    assert response.activity_id


async def test_generate_alternate_answers_without_the_memories(
    channel: grpc.aio.Channel, fixtures_dir: Path
) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    conversation = _conversation(fixtures_dir, "biscuit.json")
    response = await stub.GenerateAlternate(
        scorer_pb2.GenerateAlternateRequest(
            conversation=conversation,
            reply_timestamp=conversation.nodes[-1].timestamp,
            max_new_tokens=24,
        )
    )
    assert response.text and 0 < response.token_count <= 24
    assert "Biscuit" not in response.text  # it cannot know without the memory

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateAlternate(
            scorer_pb2.GenerateAlternateRequest(
                conversation=conversation, reply_timestamp=conversation.nodes[0].timestamp
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def _collect(
    channel: grpc.aio.Channel, activity_id: str, ready: asyncio.Event
) -> list[activity_pb2.WatchActivitiesResponse]:
    stub = activity_pb2_grpc.ActivitiesStub(channel)
    events = []
    async for event in stub.WatchActivities(
        activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
    ):
        events.append(event)
        if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
            ready.set()
    return events


async def test_two_watchers_see_the_same_progress_and_end(
    scorer_address: str, fixtures_dir: Path
) -> None:
    activity_id = uuid.uuid4().hex
    async with (
        grpc.aio.insecure_channel(scorer_address) as first,
        grpc.aio.insecure_channel(scorer_address) as second,
    ):
        ready = [asyncio.Event(), asyncio.Event()]
        watchers = [
            asyncio.create_task(_collect(first, activity_id, ready[0])),
            asyncio.create_task(_collect(second, activity_id, ready[1])),
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
        response = await scorer_pb2_grpc.ScorerStub(first).ScoreConversation(
            scorer_pb2.ScoreConversationRequest(
                conversation=_conversation(fixtures_dir, "build-server.json"),
                request_id=activity_id,
            )
        )
        seen = await asyncio.wait_for(asyncio.gather(*watchers), 10)
    assert response.activity_id == activity_id
    for events in seen:
        kinds = [e.kind for e in events]
        assert kinds[0] == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END
        assert kinds[1] == activity_pb2.ACTIVITY_EVENT_KIND_STARTED
        assert kinds[-1] == activity_pb2.ACTIVITY_EVENT_KIND_ENDED
        assert activity_pb2.ACTIVITY_EVENT_KIND_PROGRESS in kinds
        end = events[-1].activity
        assert end.state == activity_pb2.ACTIVITY_STATE_SUCCEEDED and end.done == end.total > 0
    assert seen[0][-1].activity == seen[1][-1].activity

    listed = await _list_activities(scorer_address)
    assert activity_id in [a.id for a in listed]


async def _list_activities(address: str) -> list[activity_pb2.Activity]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = activity_pb2_grpc.ActivitiesStub(channel)
        response = await stub.ListActivities(activity_pb2.ListActivitiesRequest())
        return list(response.activities)


async def test_malformed_conversation_is_invalid_argument_naming_the_node(
    channel: grpc.aio.Channel,
) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    conversation = conversation_pb2.Conversation(id="bad")
    conversation.nodes.add().leaf.content = "no role"
    branch = conversation.nodes.add()
    branch.branch.label = "empty"
    for bad_node, path in (("leaf", "nodes[0]"), ("branch", "nodes[1]")):
        request = conversation_pb2.Conversation()
        request.CopyFrom(conversation)
        if bad_node == "branch":
            request.nodes[0].leaf.role = conversation_pb2.ROLE_USER
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ScoreConversation(scorer_pb2.ScoreConversationRequest(conversation=request))
        error = caught.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert path in error.details()
        status = rpc_status.from_call(error)
        assert status is not None
        violation = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(violation)
        assert violation.field_violations[0].field == f"conversation.{path}"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ScoreConversation(
            scorer_pb2.ScoreConversationRequest(conversation=conversation, threshold=float("nan"))
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def scorer_with_dead_engine(embedded_backend: LocalBackend) -> AsyncIterator[ScorerServer]:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    backend = VllmBackend([dead], model="smollm2", retries=1, backoff=0.01, connect_timeout=1.0)
    running, _ = await create_server(
        ScorerConfig(listen="127.0.0.1:0"),
        backend=backend,
        tokenizer=embedded_backend.tokenizer,
        context_length=8192,
    )
    await running.start()
    yield running
    await running.stop(None)


async def test_engine_down_fails_the_call_with_unavailable_and_the_server_stays_up(
    scorer_with_dead_engine: ScorerServer, fixtures_dir: Path
) -> None:
    address = f"127.0.0.1:{scorer_with_dead_engine.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ScoreConversation(
                scorer_pb2.ScoreConversationRequest(
                    conversation=_conversation(fixtures_dir, "biscuit.json"), request_id="down-1"
                ),
                timeout=30,
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "127.0.0.1" in caught.value.details()
        status = rpc_status.from_call(caught.value)
        assert status is not None
        stats = scorer_pb2.FinetuneScoringStats()
        assert status.details[0].Unpack(stats) and stats.error and stats.responses_seen == 2

        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # Without memories there is nothing to ask the engine: still answered.
        calm = await stub.ScoreConversation(
            scorer_pb2.ScoreConversationRequest(
                conversation=_conversation(fixtures_dir, "no-memories.json")
            )
        )
        assert calm.replies[0].divergence == 0.0
    (failed,) = [a for a in await _list_activities(address) if a.id == "down-1"]
    assert failed.state == activity_pb2.ACTIVITY_STATE_FAILED and failed.error


async def test_duplicate_request_id_is_already_exists(
    channel: grpc.aio.Channel, fixtures_dir: Path
) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    request = scorer_pb2.ScoreConversationRequest(
        conversation=_conversation(fixtures_dir, "no-memories.json"), request_id="same-id"
    )
    await stub.ScoreConversation(request)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ScoreConversation(request)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_an_engine_failure_leaves_one_log_line_without_traceback(
    scorer_with_dead_engine: ScorerServer, fixtures_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 7, item 9: the wrapper aborted twice and logged two ERROR tracebacks."""
    caplog.set_level(logging.INFO)
    address = f"127.0.0.1:{scorer_with_dead_engine.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await scorer_pb2_grpc.ScorerStub(channel).ScoreConversation(
                scorer_pb2.ScoreConversationRequest(
                    conversation=_conversation(fixtures_dir, "biscuit.json")
                ),
                timeout=30,
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    calls = [r for r in caplog.records if r.name == "ftreview.calls"]
    assert [(r.levelno, r.exc_info) for r in calls] == [(logging.WARNING, None)]
    assert "Scorer/ScoreConversation ended UNAVAILABLE" in calls[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
