"""Service to service on real servers: the Review ingests a fixture through the real Scorer
on the embedded model, follows the activity to its end, finds the candidate, approves it
and exports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftreview.conversations import load_conversations
from ftreview.v1 import activity_pb2, scorer_pb2
from ftreview.v1 import review_pb2 as S
from review_support import ReviewUnderTest

pytestmark = pytest.mark.model


async def test_ingest_through_the_real_scorer_then_approve_and_export(
    tmp_path: Path, scorer_address: str, fixtures_dir: Path
) -> None:
    (conversation,) = load_conversations(fixtures_dir / "biscuit.json")
    review = ReviewUnderTest(tmp_path / "home", scorer_address)
    await review.start()
    try:
        # High enough that the generic reply is below it whatever its sign, far below Biscuit.
        await review.stub.SetThreshold(S.SetThresholdRequest(value=0.5))
        activity = await review.ingest_and_wait(conversation, timeout=240)
        assert activity.state == activity_pb2.ACTIVITY_STATE_SUCCEEDED, activity.error

        candidates = await review.list()
        biscuit = next(c for c in candidates if c.content == "Your cat is named Biscuit.")
        assert biscuit.divergence > 0.5  # about 1.8 nats/token on the embedded model
        assert biscuit.tokens
        assert "Biscuit" not in "".join(m.content for m in biscuit.context)
        stats = await review.stub.GetStats(S.GetStatsRequest(conversation_id="biscuit"))
        assert stats.conversations[0].responses_seen == 2
        assert stats.conversations[0].error == ""
        # Every reply with its latest score, in conversation order, not just the candidate.
        generic, named = stats.replies
        assert generic.content == "Hello! How can I help you today?"
        assert generic.scored and not generic.candidate
        assert generic.reason == scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD
        assert -0.5 < generic.divergence < 0.5  # between -0.2 and 0.3 on the embedded model
        assert generic.divergence != 0.0 and generic.peak >= generic.divergence
        assert named.content == biscuit.content and named.candidate and named.scored
        assert named.divergence > 1.0 and named.divergence == biscuit.divergence
        assert named.peak == biscuit.peak and named.node_path == "nodes[5]"

        await review.stub.Approve(S.ApproveRequest(timestamps=[biscuit.timestamp]))
        exported = await review.stub.Export(S.ExportRequest(format=S.EXPORT_FORMAT_OPENAI))
        (line,) = exported.jsonl.splitlines()
        messages = json.loads(line)["messages"]
        assert messages[-1] == {
            "role": "assistant", "content": "Your cat is named Biscuit.", "weight": 1,
        }  # fmt: skip
        assert all("Memory" not in m["content"] for m in messages)
    finally:
        await review.stop()
