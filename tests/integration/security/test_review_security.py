"""The Review with TLS and a bearer token, calling a Scorer that has both too: its own
callers need the token, and its hop to the Scorer carries the Scorer's CA and token (an
Ingest of a conversation without memories proves the hop at no model cost: the Scorer
answers it without a forward pass, but only after the token check)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from conftest import TOKEN
from ftreview.auth import channel_credentials
from ftreview.client import AsyncReviewClient
from ftreview.core.wire import to_timestamp
from ftreview.errors import Unauthenticated, Unavailable
from ftreview.v1 import activity_pb2, activity_pb2_grpc, conversation_pb2

from review_service.api.server import ReviewConfig, ReviewServer, create_server
from tests.support.certificates import Certificate

pytestmark = pytest.mark.model

BASE_NS = 1_772_000_000_000_000_000
REVIEW_TOKEN = "review-token-for-tests"


def no_memories(cid: str) -> conversation_pb2.Conversation:
    conversation = conversation_pb2.Conversation(id=cid)
    turns = (
        (conversation_pb2.ROLE_USER, "Hi there"),
        (conversation_pb2.ROLE_ASSISTANT, "Hello! How can I help?"),
    )
    for i, (role, text) in enumerate(turns):
        node = conversation.nodes.add(leaf=conversation_pb2.Leaf(role=role, content=text))
        node.timestamp.CopyFrom(to_timestamp(BASE_NS + i * 1000))
    return conversation


@dataclass
class LockedReview:
    server: ReviewServer
    address: str
    certificate: Certificate

    def client(self, token: str | None) -> AsyncReviewClient:
        return AsyncReviewClient(
            self.address,
            credentials=channel_credentials(self.certificate.cert),
            token=token,
            timeout=10.0,
        )

    async def wait_activity(self, activity_id: str, timeout: float = 60.0) -> activity_pb2.Activity:
        channel = grpc.aio.secure_channel(self.address, channel_credentials(self.certificate.cert))
        try:
            call = activity_pb2_grpc.ActivitiesStub(channel).WatchActivities(
                activity_pb2.WatchActivitiesRequest(activity_id=activity_id),
                timeout=timeout,
                metadata=(("authorization", f"Bearer {REVIEW_TOKEN}"),),
            )
            async for event in call:
                if event.HasField("activity") and event.activity.state not in (
                    activity_pb2.ACTIVITY_STATE_UNSPECIFIED,
                    activity_pb2.ACTIVITY_STATE_RUNNING,
                ):
                    return event.activity
        finally:
            await channel.close()
        raise AssertionError(f"activity {activity_id} did not end")


async def start_review(
    home: Path, scorer: str, certificate: Certificate, scorer_token: str | None,
    scorer_tls: bool = True,
) -> LockedReview:  # fmt: skip
    config = ReviewConfig(
        listen="127.0.0.1:0",
        scorer=scorer,
        home=home,
        scorer_ready_timeout=1.0,
        drain_seconds=0.5,
        tls_cert=str(certificate.cert),
        tls_key=str(certificate.key),
        token=REVIEW_TOKEN,
        scorer_tls_ca=str(certificate.cert) if scorer_tls else None,
        scorer_token=scorer_token,
    )
    server, port = create_server(config)
    await server.start()
    return LockedReview(server, f"127.0.0.1:{port}", certificate)


@pytest.fixture
async def review(
    tmp_path: Path, locked_scorer_address: str, certificate: Certificate
) -> AsyncIterator[LockedReview]:
    running = await start_review(tmp_path / "home", locked_scorer_address, certificate, TOKEN)
    yield running
    await running.server.stop()


async def test_ingest_reaches_the_locked_scorer_with_its_ca_and_token(
    review: LockedReview,
) -> None:
    async with review.client(REVIEW_TOKEN) as client:
        reply = await client.ingest(no_memories("plain"))
        ended = await review.wait_activity(reply.activity_id)
        assert ended.state == activity_pb2.ACTIVITY_STATE_SUCCEEDED, ended.error
        stats = await client.get_stats("plain")
        assert stats.conversations[0].responses_seen == 1
        assert stats.conversations[0].error == ""


async def test_the_review_refuses_callers_without_its_token(review: LockedReview) -> None:
    for token in (None, TOKEN):  # the Scorer's token is not the Review's
        async with review.client(token) as client:
            with pytest.raises(Unauthenticated):
                await client.get_config()
            with pytest.raises(Unauthenticated):
                await client.ingest(no_memories("refused"))
            assert await client.health() == "SERVING"


async def test_a_wrong_scorer_token_fails_the_scoring_with_a_reason(
    tmp_path: Path, locked_scorer_address: str, certificate: Certificate
) -> None:
    review = await start_review(
        tmp_path / "home", locked_scorer_address, certificate, scorer_token="wrong"
    )
    try:
        async with review.client(REVIEW_TOKEN) as client:
            reply = await client.ingest(no_memories("wrong-token"))
        ended = await review.wait_activity(reply.activity_id)
        assert ended.state == activity_pb2.ACTIVITY_STATE_FAILED
        assert "wrong bearer token" in ended.error and "--scorer-token-file" in ended.error
    finally:
        await review.server.stop()


async def test_a_review_without_the_scorer_ca_cannot_reach_it(
    tmp_path: Path, locked_scorer_address: str, certificate: Certificate
) -> None:
    review = await start_review(
        tmp_path / "home", locked_scorer_address, certificate, TOKEN, scorer_tls=False
    )
    try:
        async with review.client(REVIEW_TOKEN) as client:
            with pytest.raises(Unavailable, match="not reachable"):
                await client.ingest(no_memories("plain-hop"))
    finally:
        await review.server.stop()
