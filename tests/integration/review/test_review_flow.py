"""The Review on a real gRPC server with a real SQLite file: ingest, additive sync, the
watch stream, decisions, the ledger, alternates, export and bad input."""

from __future__ import annotations

import json
import math

import grpc
import pytest
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from review_support import (
    CandidateWatch,
    ReviewUnderTest,
    RunningFakeScorer,
    make_conversation,
    reply_text,
    reply_ts,
)

S = review_pb2
Kind = review_pb2.CandidateEventKind
SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED


def stamps(candidates: list[review_pb2.Candidate]) -> set[int]:
    return {timestamp_ns(c.timestamp) for c in candidates}


async def test_ingest_adds_pending_candidates_seen_by_a_watcher(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    fake_scorer.scorer.divergence[reply_text("a", 1)] = 3e-8  # below 1e-7: not a candidate
    watch = CandidateWatch(review.stub)
    await watch.wait_for(
        lambda events: Kind.CANDIDATE_EVENT_KIND_SNAPSHOT_END in [e.kind for e in events]
    )

    activity = await review.ingest_and_wait(make_conversation("a", 3))

    assert activity.state == SUCCEEDED, activity.error
    listed = await review.list()
    assert stamps(listed) == {reply_ts("a", 0), reply_ts("a", 2)}
    assert {c.status for c in listed} == {S.CANDIDATE_STATUS_PENDING}
    await watch.wait_for(
        lambda events: len([e for e in events if e.kind == Kind.CANDIDATE_EVENT_KIND_ADDED]) == 2
    )
    await watch.wait_for(
        lambda events: any(e.kind == Kind.CANDIDATE_EVENT_KIND_STATS for e in events)
    )
    stats_event = watch.of_kind(Kind.CANDIDATE_EVENT_KIND_STATS)[-1]
    assert stats_event.stats.responses_seen == 3
    assert stats_event.stats.conversation_id == "a"
    watch.close()


async def test_context_is_the_messages_before_the_reply_without_memories(
    review: ReviewUnderTest,
) -> None:
    await review.ingest_and_wait(make_conversation("ctx", 2))
    second = next(c for c in await review.list() if timestamp_ns(c.timestamp) == reply_ts("ctx", 1))
    contents = [m.content for m in second.context]
    assert contents == ["You are helpful.", "question 0", reply_text("ctx", 0), "question 1"]
    assert not any(m.memory for m in second.context)


async def test_status_survives_rescoring_and_the_next_turn_scores_only_new_replies(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    await review.ingest_and_wait(make_conversation("b", 2))
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(reply_ts("b", 0))]))

    await review.ingest_and_wait(make_conversation("b", 3))  # the next turn arrived

    assert [timestamp_ns(t) for t in fake_scorer.scorer.requests[-1].only] == [reply_ts("b", 2)]
    by_ts = {timestamp_ns(c.timestamp): c for c in await review.list()}
    assert by_ts[reply_ts("b", 0)].status == S.CANDIDATE_STATUS_APPROVED
    assert by_ts[reply_ts("b", 2)].status == S.CANDIDATE_STATUS_PENDING

    # A full rescore with new scores: fresh divergence, same status, nothing dropped,
    # even for a reply that now scores below the threshold.
    fake_scorer.scorer.divergence[reply_text("b", 0)] = 2.5
    fake_scorer.scorer.divergence[reply_text("b", 1)] = 1e-9
    synced = await review.stub.SyncCandidates(S.SyncCandidatesRequest(conversation_ids=["b"]))
    for activity_id in synced.activity_ids:
        assert (await review.wait_activity(activity_id)).state == SUCCEEDED
    assert list(fake_scorer.scorer.requests[-1].only) == []
    by_ts = {timestamp_ns(c.timestamp): c for c in await review.list()}
    assert set(by_ts) == {reply_ts("b", i) for i in range(3)}
    assert by_ts[reply_ts("b", 0)].status == S.CANDIDATE_STATUS_APPROVED
    assert by_ts[reply_ts("b", 0)].divergence == 2.5
    assert by_ts[reply_ts("b", 1)].divergence == 1e-9


async def test_reingesting_an_unchanged_conversation_scores_nothing(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    await review.ingest_and_wait(make_conversation("same", 2))
    calls = len(fake_scorer.scorer.requests)
    activity = await review.ingest_and_wait(make_conversation("same", 2))
    assert activity.state == SUCCEEDED
    assert "nothing new" in activity.detail
    assert len(fake_scorer.scorer.requests) == calls


async def test_a_trained_reply_never_returns_across_restart_and_reingest(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    conv = make_conversation("t", 2)
    await review.ingest_and_wait(conv)
    trained = reply_ts("t", 0)
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(trained)]))
    exported = await review.stub.Export(S.ExportRequest(mark_trained=True))
    assert exported.count == 1

    await review.restart()
    await review.ingest_and_wait(conv)
    synced = await review.stub.SyncCandidates(S.SyncCandidatesRequest())
    for activity_id in synced.activity_ids:
        assert (await review.wait_activity(activity_id)).state == SUCCEEDED

    assert trained in {timestamp_ns(t) for t in fake_scorer.scorer.requests[-1].exclude}
    assert stamps(await review.list()) == {reply_ts("t", 1)}
    ledger = await review.stub.ListTrained(S.ListTrainedRequest())
    assert [timestamp_ns(e.timestamp) for e in ledger.entries] == [trained]
    assert ledger.entries[0].destination == "export:openai"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(trained)]))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_only_the_ten_most_recent_rejections_are_kept(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    await review.ingest_and_wait(make_conversation("r", 12))
    watch = CandidateWatch(review.stub)
    for i in range(12):
        await review.stub.Reject(
            S.RejectRequest(timestamps=[to_timestamp(reply_ts("r", i))], reason=f"no {i}")
        )
    rejected = await review.list(S.CANDIDATE_STATUS_REJECTED)
    assert stamps(rejected) == {reply_ts("r", i) for i in range(2, 12)}
    await watch.wait_for(
        lambda events: len([e for e in events if e.kind == Kind.CANDIDATE_EVENT_KIND_REMOVED]) == 2
    )
    watch.close()

    await review.restart()
    synced = await review.stub.SyncCandidates(S.SyncCandidatesRequest())
    for activity_id in synced.activity_ids:
        await review.wait_activity(activity_id)
    assert stamps(await review.list()) == {reply_ts("r", i) for i in range(2, 12)}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(reply_ts("r", 0))]))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_decisions_are_idempotent_and_reversible(review: ReviewUnderTest) -> None:
    await review.ingest_and_wait(make_conversation("d", 1))
    ts = [to_timestamp(reply_ts("d", 0))]
    first = await review.stub.Approve(S.ApproveRequest(timestamps=ts))
    again = await review.stub.Approve(S.ApproveRequest(timestamps=ts))
    assert first.candidates[0].decided_at == again.candidates[0].decided_at
    rejected = await review.stub.Reject(S.RejectRequest(timestamps=ts, reason="off topic"))
    assert rejected.candidates[0].status == S.CANDIDATE_STATUS_REJECTED
    assert rejected.candidates[0].reject_reason == "off topic"
    cleared = await review.stub.ClearDecision(S.ClearDecisionRequest(timestamps=ts))
    assert cleared.candidates[0].status == S.CANDIDATE_STATUS_PENDING
    assert not cleared.candidates[0].HasField("decided_at")


async def test_bad_input_is_refused_and_changes_nothing(review: ReviewUnderTest) -> None:
    await review.ingest_and_wait(make_conversation("x", 2))
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(reply_ts("x", 1))]))
    await review.stub.Export(S.ExportRequest(mark_trained=True))  # x/1 is now trained
    await review.stub.SetThreshold(S.SetThresholdRequest(value=2e-7))
    config_before = review.config_path.read_bytes()
    before = await review.list()

    stub, code = review.stub, grpc.StatusCode
    pending, trained = to_timestamp(reply_ts("x", 0)), to_timestamp(reply_ts("x", 1))
    empty = conversation_pb2.Conversation(id="empty")
    cases = [
        (stub.Approve(S.ApproveRequest(timestamps=[pending, to_timestamp(123)])), code.NOT_FOUND),
        (stub.Reject(S.RejectRequest(timestamps=[to_timestamp(999)])), code.NOT_FOUND),
        (stub.Approve(S.ApproveRequest(timestamps=[pending, trained])), code.FAILED_PRECONDITION),
        (stub.SetThreshold(S.SetThresholdRequest(value=math.nan)), code.INVALID_ARGUMENT),
        (stub.SetThreshold(S.SetThresholdRequest(value=-1e-7)), code.INVALID_ARGUMENT),
        (stub.SetThreshold(S.SetThresholdRequest(value=math.inf)), code.INVALID_ARGUMENT),
        (stub.SetThreshold(S.SetThresholdRequest(steps=400)), code.INVALID_ARGUMENT),
        (stub.Ingest(S.IngestRequest(conversation=empty)), code.INVALID_ARGUMENT),
        (stub.GenerateAlternate(S.ReviewGenerateAlternateRequest(timestamp=to_timestamp(5))),
         code.NOT_FOUND),
        (stub.SyncCandidates(S.SyncCandidatesRequest(conversation_ids=["nope"])), code.NOT_FOUND),
    ]  # fmt: skip
    for call, expected in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == expected, caught.value.details()
        assert caught.value.details()

    assert await review.list() == before
    assert review.config_path.read_bytes() == config_before
    trained = await review.stub.ListTrained(S.ListTrainedRequest())
    assert [timestamp_ns(e.timestamp) for e in trained.entries] == [reply_ts("x", 1)]


async def test_scorer_unreachable_makes_ingest_unavailable_and_keeps_nothing(
    review: ReviewUnderTest,
) -> None:
    unreachable = ReviewUnderTest(review.home.parent / "other", "127.0.0.1:1")
    await unreachable.start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unreachable.stub.Ingest(S.IngestRequest(conversation=make_conversation("u", 1)))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "127.0.0.1:1" in (caught.value.details() or "")
        stats = await unreachable.stub.GetStats(S.GetStatsRequest())
        assert list(stats.conversations) == []
    finally:
        await unreachable.stop()


async def test_a_scorer_backend_failure_fails_the_activity_and_keeps_nothing_half_done(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    fake_scorer.scorer.down = True
    activity = await review.ingest_and_wait(make_conversation("f", 2))
    assert activity.state == activity_pb2.ACTIVITY_STATE_FAILED
    assert "backend down" in activity.error
    stats = await review.stub.GetStats(S.GetStatsRequest(conversation_id="f"))
    assert "backend down" in stats.conversations[0].error
    assert await review.list() == []

    fake_scorer.scorer.down = False
    activity = await review.ingest_and_wait(make_conversation("f", 2))
    assert activity.state == SUCCEEDED
    assert len(await review.list()) == 2  # the failed pass marked nothing as scored


async def test_alternate_is_generated_once_and_stored(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    await review.ingest_and_wait(make_conversation("alt", 1))
    ts = to_timestamp(reply_ts("alt", 0))
    response = await review.stub.GenerateAlternate(S.ReviewGenerateAlternateRequest(timestamp=ts))
    assert response.candidate.alternate == f"alternate of {reply_ts('alt', 0)}"
    await review.restart()
    fake_scorer.scorer.down = True  # a stored alternate needs no Scorer
    again = await review.stub.GenerateAlternate(S.ReviewGenerateAlternateRequest(timestamp=ts))
    assert again.candidate.alternate == response.candidate.alternate
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.GenerateAlternate(
            S.ReviewGenerateAlternateRequest(timestamp=ts, regenerate=True)
        )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_export_writes_openai_and_trl_examples(review: ReviewUnderTest) -> None:
    await review.ingest_and_wait(make_conversation("e", 2))
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(reply_ts("e", 1))]))

    openai = await review.stub.Export(S.ExportRequest(format=S.EXPORT_FORMAT_OPENAI))
    trl = await review.stub.Export(S.ExportRequest(format=S.EXPORT_FORMAT_TRL))

    (line,) = openai.jsonl.splitlines()
    messages = json.loads(line)["messages"]
    assert [(m["role"], m.get("weight")) for m in messages] == [
        ("system", None), ("user", None), ("assistant", 0), ("user", None), ("assistant", 1),
    ]  # fmt: skip
    assert messages[-1]["content"] == reply_text("e", 1)
    assert "Memory" not in openai.jsonl
    (trl_line,) = trl.jsonl.splitlines()
    example = json.loads(trl_line)
    assert example["completion"] == [{"role": "assistant", "content": reply_text("e", 1)}]
    assert [m["content"] for m in example["prompt"]][-1] == "question 1"
    # Without mark_trained nothing moved to the ledger.
    assert len(await review.list(S.CANDIDATE_STATUS_APPROVED)) == 1


async def test_threshold_steps_persist_and_the_next_ingest_uses_them(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    up = await review.stub.SetThreshold(S.SetThresholdRequest(steps=1))
    assert up.config.threshold == pytest.approx(1e-6, rel=1e-12)
    await review.restart()
    config = await review.stub.GetConfig(S.GetConfigRequest())
    assert config.config.threshold == pytest.approx(1e-6, rel=1e-12)
    assert config.config.config_path == str(review.config_path)
    await review.ingest_and_wait(make_conversation("th", 1))
    assert fake_scorer.scorer.requests[-1].threshold == pytest.approx(1e-6, rel=1e-12)


async def test_health_and_reflection_answer(review: ReviewUnderTest) -> None:
    assert review.channel is not None
    health = health_pb2_grpc.HealthStub(review.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="ftreview.v1.Review"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(review.channel)
    call = reflect.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    names = {s.name for s in response.list_services_response.service}
    assert {"ftreview.v1.Review", "ftreview.v1.Activities", "grpc.health.v1.Health"} <= names


async def test_a_watcher_that_never_reads_does_not_hold_up_the_others(
    review: ReviewUnderTest,
) -> None:
    await review.ingest_and_wait(make_conversation("slow", 10))  # at most 10 rejected: all kept
    stalled = review.stub.WatchCandidates(S.WatchCandidatesRequest())  # never read
    watch = CandidateWatch(review.stub)
    stamp_list = [to_timestamp(reply_ts("slow", i)) for i in range(10)]
    for round_ in range(60):  # ~600 events: more than a stalled stream's flow-control window
        if round_ % 2:
            await review.stub.Reject(S.RejectRequest(timestamps=stamp_list, reason=str(round_)))
        else:
            await review.stub.Approve(S.ApproveRequest(timestamps=stamp_list))
    last = timestamp_ns(stamp_list[-1])

    def saw_last_rejection(events: list[review_pb2.WatchCandidatesResponse]) -> bool:
        return any(
            timestamp_ns(e.candidate.timestamp) == last and e.candidate.reject_reason == "59"
            for e in events
        )

    await watch.wait_for(saw_last_rejection, timeout=10)
    stalled.cancel()
    watch.close()
