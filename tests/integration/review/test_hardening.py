"""Issue 7 on a real Review server: values the Review cannot hold are refused at the call
with INVALID_ARGUMENT naming the field (never INTERNAL), a timestamp held by another
conversation is refused saying which, and nothing stored changes; the new fields and
filters, GetConversation, and a config left by a killed write, over the wire."""

from __future__ import annotations

import grpc
import pytest
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import conversation_pb2
from ftreview.v1 import review_pb2 as S
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from review_support import (
    ReviewUnderTest,
    RunningFakeScorer,
    make_conversation,
    reply_text,
    reply_ts,
)

YEAR_10000 = Timestamp(seconds=253_402_300_800)
BEYOND_INT64 = Timestamp(seconds=9_300_000_000)  # a valid Timestamp in 2264


def field_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return str(bad.field_violations[0].field)


async def snapshot(review: ReviewUnderTest) -> tuple[object, ...]:
    listed = await review.list()
    trained = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    config = review.config_path.read_bytes() if review.config_path.exists() else b""
    return tuple(listed), tuple(trained), config


async def test_out_of_range_values_are_refused_at_the_call_naming_the_field(
    review: ReviewUnderTest,
) -> None:
    await review.ingest_and_wait(make_conversation("x", 2))
    await review.stub.SetThreshold(S.SetThresholdRequest(value=1e-7))
    ok = to_timestamp(reply_ts("x", 0))
    before = await snapshot(review)
    far_node = conversation_pb2.Conversation(id="far")
    far_node.CopyFrom(make_conversation("far", 1))
    far_node.nodes[-1].timestamp.CopyFrom(BEYOND_INT64)
    stub = review.stub
    cases = [
        (stub.Approve(S.ApproveRequest(timestamps=[ok, YEAR_10000])), "timestamps[1]"),
        (stub.Reject(S.RejectRequest(timestamps=[BEYOND_INT64])), "timestamps[0]"),
        (stub.ClearDecision(S.ClearDecisionRequest(timestamps=[ok, ok, BEYOND_INT64])),
         "timestamps[2]"),
        (stub.GenerateAlternate(S.ReviewGenerateAlternateRequest(timestamp=YEAR_10000)),
         "timestamp"),
        (stub.Export(S.ExportRequest(timestamps=[BEYOND_INT64], mark_trained=True)),
         "timestamps[0]"),
        (stub.Send(S.SendRequest(timestamps=[YEAR_10000])), "timestamps[0]"),
        (stub.Ingest(S.IngestRequest(conversation=far_node)), "conversation.nodes[3].timestamp"),
        (stub.SetThreshold(S.SetThresholdRequest(steps=-(2**31))), "steps"),
        (stub.SetThreshold(S.SetThresholdRequest(steps=2**31 - 1)), "steps"),
        (stub.ListCandidates(S.ListCandidatesRequest(min_divergence=float("nan"))),
         "min_divergence"),
        (stub.ListCandidates(S.ListCandidatesRequest(statuses=[99])), "statuses[0]"),
        (stub.GetConversation(S.GetConversationRequest()), "conversation_id"),
    ]  # fmt: skip
    for call, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert field_of(caught.value) == field
    assert await snapshot(review) == before


async def test_a_timestamp_held_by_another_conversation_is_refused_saying_which(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    await review.ingest_and_wait(make_conversation("alpha", 2))
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(reply_ts("alpha", 0))]))
    before = await snapshot(review)
    calls = len(fake_scorer.scorer.requests)
    beta = make_conversation("beta", 2)
    beta.nodes[3].timestamp.CopyFrom(to_timestamp(reply_ts("alpha", 0)))  # beta reply 0

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.Ingest(S.IngestRequest(conversation=beta))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'alpha'" in (caught.value.details() or "")
    assert field_of(caught.value) == "conversation.nodes[3].timestamp"
    assert await snapshot(review) == before
    assert len(fake_scorer.scorer.requests) == calls
    (alpha0,) = [
        c for c in await review.list() if timestamp_ns(c.timestamp) == reply_ts("alpha", 0)
    ]
    assert alpha0.content == reply_text("alpha", 0)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await review.stub.GetConversation(S.GetConversationRequest(conversation_id="beta"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_candidates_carry_question_memories_and_filter_on_the_wire(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    fake_scorer.scorer.divergence.update({reply_text("w", 0): 0.2, reply_text("w", 1): 2.0})
    conv = make_conversation("w", 2)
    await review.ingest_and_wait(conv)

    found = await review.stub.ListCandidates(
        S.ListCandidatesRequest(search="W REPLY", min_divergence=0.5, conversation_id="w")
    )
    (strong,) = found.candidates
    assert strong.content == reply_text("w", 1) and strong.question == "question 1"
    assert [(m.node_path, m.content) for m in strong.memories] == [
        ("nodes[1].children[0]", "Memory of w.")
    ]
    below = await review.stub.ListCandidates(S.ListCandidatesRequest(max_divergence=2.0))
    assert [c.content for c in below.candidates] == [reply_text("w", 0)]
    stored = await review.stub.GetConversation(S.GetConversationRequest(conversation_id="w"))
    assert stored.conversation == conv


async def test_a_config_left_by_a_killed_write_is_cleaned_at_start(
    review: ReviewUnderTest,
) -> None:
    await review.stub.SetThreshold(S.SetThresholdRequest(value=3e-7))
    stale = review.home / ".config.json5.k1ll3d.tmp"
    stale.write_text("{learn: {thresh")
    await review.restart()
    assert not stale.exists()
    config = await review.stub.GetConfig(S.GetConfigRequest())
    assert config.config.threshold == pytest.approx(3e-7)
