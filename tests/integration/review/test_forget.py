"""Forget on real servers: a Review over gRPC with its SQLite file, the in-test trainer
(`trainer_stub`) with its retract route. A fact trained through a followed job is
forgotten: the trainer is told at once and its consolidation job is followed, its
retention checks written to the ledger; a trainer that fails the retraction hears it
before the next Send's examples, or when the Review starts again; one without the route
counts as told. Bad requests are NOT_FOUND or INVALID_ARGUMENT naming what is wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, conversation_pb2
from ftreview.v1 import review_pb2 as S
from review_support import (
    BASE_NS,
    ReviewUnderTest,
    RunningFakeScorer,
    leaf,
    make_conversation,
    memory_branch,
    reply_ts,
)
from trainer_stub import StubTrainer, serve_stub_trainer

from review_service.adapters.store_sqlite import SqliteStore
from review_service.app.config import ConfigFile
from review_service.domain.examples import idempotency_key
from review_service.domain.model import KnowledgeState, TrainedEntry

SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED


@pytest.fixture
def trainer(fake_scorer: RunningFakeScorer) -> Iterator[StubTrainer]:
    with serve_stub_trainer() as state:
        state.scorer_address = fake_scorer.address
        state.first_script = [{"state": "running"}, {"state": "succeeded", "adapter": "v1"}]
        yield state


async def trained(review: ReviewUnderTest, trainer: StubTrainer, cid: str) -> int:
    """One reply of conversation `cid` sent, and learnt by its job."""
    ConfigFile(review.config_path).set_value("finetune_url", trainer.url)
    await review.ingest_and_wait(make_conversation(cid, 1))
    ts = reply_ts(cid, 0)
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(ts)]))
    sent = await review.stub.Send(S.SendRequest(timestamps=[to_timestamp(ts)]))
    ended = await review.wait_activity(f"train-{sent.job_id}")
    assert ended.state == SUCCEEDED, ended.error
    return ts


async def forget(review: ReviewUnderTest, ts: int, reason: str = "") -> S.ForgetResponse:
    request = S.ForgetRequest(timestamp=to_timestamp(ts), reason=reason, reviewer="ann")
    response: S.ForgetResponse = await review.stub.Forget(request)
    return response


def ledger(review: ReviewUnderTest) -> dict[int, TrainedEntry]:
    """The ledger as stored (read from the file of a stopped Review)."""
    store = SqliteStore(review.home / "review.sqlite3")
    try:
        return {e.timestamp_ns: e for e in store.load_ledger()}
    finally:
        store.close()


async def test_forget_tells_the_trainer_and_follows_its_consolidation_job(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    kept = await trained(review, trainer, "d")
    answer = await forget(review, ts, "the cat was renamed")
    assert timestamp_ns(answer.entry.timestamp) == ts and answer.entry.job_id == "job-1"
    assert (answer.job_id, answer.delivery_error) == ("consolidate-1", "")
    (told,) = trainer.retractions
    assert told["retract"] == [
        {"idempotency_key": idempotency_key(ts), "reason": "forgotten by ann: the cat was renamed"}
    ]
    ended = await review.wait_activity("train-consolidate-1")
    assert ended.state == SUCCEEDED, ended.error
    jobs = {j.id: j for j in (await review.stub.ListJobs(S.ListJobsRequest())).jobs}
    job = jobs["consolidate-1"]
    assert (job.kind, job.state, job.facts_checked) == (
        "consolidate",
        S.TRAINING_JOB_STATE_SUCCEEDED,
        1,
    )
    checks = {timestamp_ns(c.timestamp): c for c in job.retention}
    assert (checks[ts].retracted, checks[ts].comes_back) == (True, False)
    assert (checks[kept].retracted, checks[kept].comes_back) == (False, True)

    listed = {
        timestamp_ns(e.timestamp): e
        for e in (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    }
    gone, live = listed[ts], listed[kept]
    assert (gone.state, gone.reason, gone.retraction_delivered) == (
        S.KNOWLEDGE_STATE_RETRACTED,
        "forgotten by ann: the cat was renamed",
        True,
    )
    assert (gone.comes_back, gone.checked_by_job, gone.content) == (
        False,
        "consolidate-1",
        "c reply 0",
    )
    assert not gone.HasField("superseded_by")
    assert (live.state, live.comes_back, live.HasField("comes_back")) == (
        S.KNOWLEDGE_STATE_LIVE,
        True,
        True,
    )
    assert answer.entry.state == S.KNOWLEDGE_STATE_RETRACTED

    # Forgetting it again changes nothing and tells nobody.
    again = await forget(review, ts, "twice")
    assert (again.job_id, again.delivery_error) == ("", "")
    assert len(trainer.retractions) == 1

    await review.stop()
    stored = ledger(review)
    assert stored[ts].state == KnowledgeState.RETRACTED and stored[ts].retraction_delivered
    assert stored[ts].reason == "forgotten by ann: the cat was renamed"
    assert (stored[ts].comes_back, stored[ts].checked_by_job) == (False, "consolidate-1")
    assert (stored[kept].state, stored[kept].comes_back) == (KnowledgeState.LIVE, True)
    assert stored[kept].checked_by_job == "consolidate-1"
    assert stored[kept].content == "d reply 0"


async def test_bad_requests_say_what_is_wrong(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await forget(review, ts + 1)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert str(ts + 1) in (unknown.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unset:
        await review.stub.Forget(S.ForgetRequest(reason="no timestamp"))
    assert unset.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "timestamp" in (unset.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as long:
        await forget(review, ts, "x" * 10_000)
    assert long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in (long.value.details() or "")
    assert trainer.retractions == []


async def test_a_failed_retraction_is_told_before_the_next_send_and_at_start(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    trainer.retract_fails = 503
    answer = await forget(review, ts, "wrong")
    assert answer.job_id == "" and "503" in answer.delivery_error
    assert trainer.retractions == []

    # The next Send: the retraction first, then the examples.
    trainer.retract_fails = 0
    before = len(trainer.posted)
    other = await trained(review, trainer, "d")
    assert trainer.posted[before:] == ["retract", "examples"]
    assert [item["idempotency_key"] for item in trainer.retractions[0]["retract"]] == [
        idempotency_key(ts)
    ]

    # Pending when the Review stops: told when it starts.
    trainer.retract_fails = 503
    await forget(review, other, "")
    await review.stop()
    assert not ledger(review)[other].retraction_delivered
    trainer.retract_fails = 0
    await review.start()
    for _ in range(500):
        if len(trainer.retractions) == 2:
            break
        await asyncio.sleep(0.01)
    assert trainer.retractions[1]["retract"] == [
        {"idempotency_key": idempotency_key(other), "reason": "forgotten by ann"}
    ]
    await review.wait_activity("train-consolidate-2")
    await review.stop()
    assert ledger(review)[other].retraction_delivered


async def test_a_trainer_without_the_route_keeps_no_knowledge(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    trainer.retract_route = False
    answer = await forget(review, ts)
    assert (answer.job_id, answer.delivery_error) == ("", "")
    await review.stop()
    entry = ledger(review)[ts]
    assert entry.retraction_delivered and entry.state == KnowledgeState.RETRACTED
    assert "keeps no knowledge" in entry.reason


def dentist(cid: str, memory: str, reply: str, ts: int) -> conversation_pb2.Conversation:
    """One memory about the dentist appointment, one question, one reply at `ts`."""
    conv = conversation_pb2.Conversation(id=cid)
    conv.nodes.append(leaf(conversation_pb2.ROLE_SYSTEM, "You are helpful.", ts - 3))
    conv.nodes.append(memory_branch(leaf(conversation_pb2.ROLE_SYSTEM, memory, ts - 2)))
    conv.nodes.append(leaf(conversation_pb2.ROLE_USER, "When is my dentist appointment?", ts - 1))
    conv.nodes.append(leaf(conversation_pb2.ROLE_ASSISTANT, reply, ts))
    return conv


async def test_approving_a_replacement_and_a_changed_memory_are_told_at_the_next_send(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ConfigFile(review.config_path).set_value("finetune_url", trainer.url)
    day = 86_400 * 10**9
    old, new, cat, moved = (BASE_NS + k * day for k in (10, 11, 12, 13))
    facts = [
        dentist("a", "User's dentist appointment is on 18 March at 14:30",
                "Your dentist appointment is on 18 March at 14:30.", old),
        dentist("b", "User's cat is called Biscuit", "Your cat is called Biscuit.", cat),
    ]  # fmt: skip
    for conv in facts:
        await review.ingest_and_wait(conv)
    stamps = [to_timestamp(old), to_timestamp(cat)]
    await review.stub.Approve(S.ApproveRequest(timestamps=stamps))
    sent = await review.stub.Send(S.SendRequest())
    assert (await review.wait_activity(f"train-{sent.job_id}")).state == SUCCEEDED

    # A reply that replaces the appointment: approving it supersedes the old fact.
    await review.ingest_and_wait(
        dentist("c", "User's dentist appointment is on 20 March",
                "Your dentist appointment is on 20 March.", new)
    )  # fmt: skip
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(new)], reviewer="ann"))
    # A later conversation whose memory renamed the cat, and no reply of it that would
    # replace the fact (that reply's approval would decide): the fact is retracted.
    await review.ingest_and_wait(
        dentist("d", "User's cat is now called Mimi", "Noted, thanks.", moved)
    )
    assert trainer.retractions == []

    before = len(trainer.posted)
    await review.stub.Send(S.SendRequest(timestamps=[to_timestamp(new)]))
    assert trainer.posted[before:] == ["retract", "examples"]
    told = {item["idempotency_key"]: item["reason"] for item in trainer.retractions[0]["retract"]}
    assert told == {
        idempotency_key(old): f"superseded by {new}: 18 March 14:30 -> 20 March",
        idempotency_key(cat): "its memory changed in conversation d: Biscuit -> Mimi",
    }
    await review.wait_activity("train-consolidate-1")
    listed = {
        timestamp_ns(e.timestamp): e
        for e in (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    }
    assert listed[old].state == S.KNOWLEDGE_STATE_SUPERSEDED
    assert timestamp_ns(listed[old].superseded_by) == new
    assert listed[cat].state == S.KNOWLEDGE_STATE_RETRACTED
    assert listed[cat].reason == "its memory changed in conversation d: Biscuit -> Mimi"
    await review.stop()
    stored = ledger(review)
    assert stored[old].state == KnowledgeState.SUPERSEDED and stored[old].superseded_by_ns == new
    assert stored[cat].state == KnowledgeState.RETRACTED
    assert stored[old].retraction_delivered and stored[cat].retraction_delivered


async def test_a_consolidation_a_job_left_queued_is_followed_as_a_job_of_its_own(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    """The trainer queues a consolidation when a job ends (its adapter drifted far from the
    base model): the job names it (`queued_next`) and the Review follows it like any job,
    writing its retention checks to the ledger."""
    first = await trained(review, trainer, "c")
    key = idempotency_key(first)
    rebuilt = {
        "state": "succeeded", "kind": "consolidate", "continued_from": "", "adapter": "v3",
        "retention": [{"idempotency_key": key, "comes_back": False, "retracted": False,
                       "answer": "I don't know.", "fact": "biscuit"}],
        "facts_checked": 1, "facts_kept": 0,
    }  # fmt: skip
    trainer.script("ft-9", {"state": "running"}, rebuilt)
    trainer.first_script = [
        {"state": "running"},
        {"state": "succeeded", "adapter": "v2", "queued_next": "ft-9"},
    ]
    await trained(review, trainer, "d")
    ended = await review.wait_activity("train-ft-9")
    assert ended.state == SUCCEEDED, ended.error
    jobs = {j.id: j for j in (await review.stub.ListJobs(S.ListJobsRequest())).jobs}
    assert (jobs["ft-9"].kind, jobs["ft-9"].facts_kept, jobs["ft-9"].facts_checked) == (
        "consolidate",
        0,
        1,
    )
    entries = {
        timestamp_ns(e.timestamp): e
        for e in (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    }
    assert (entries[first].comes_back, entries[first].checked_by_job) == (False, "ft-9")
