"""The Review's side of the closed loop (docs/design.md §9) on the domain alone: what a send
tells the trainer, the job followed on the Review's activity stream to its end, the trained
replies re-scored on the promoted adapter, a restart that picks up what was left, Ask, and the
alternate's progress relayed.

The trainer's jobs route is `ScriptedTrainer` (httpx's MockTransport, read by the Review's
real `JobFollower`); the Scorer is the in-memory `TableScorer`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ftreview.v1 import activity_pb2, review_pb2
from review_fakes import (
    RecordingEndpoint,
    ScriptedTrainer,
    TableScorer,
    conversation,
    ended,
    ingest,
    job_ended,
    open_review,
    reply_ts,
)

from review_service.app.config import ConfigFile
from review_service.app.review import Review
from review_service.domain.errors import InvalidArgument, NotFound, ScorerUnavailable
from review_service.domain.examples import HELD_OUT_LIMIT
from review_service.domain.jobs import JobState
from review_service.domain.model import Status
from review_service.domain.ports import Progress

URL = "http://trainer.test/finetune"
SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED
FAILED = activity_pb2.ACTIVITY_STATE_FAILED
CANCELLED = activity_pb2.ACTIVITY_STATE_CANCELLED

DONE = {
    "state": "succeeded", "examples": 1, "epochs": 5, "step": 10, "total_steps": 10,
    "adapter": "v1", "adapter_path": "/adapters/v1", "trained_divergence_before": 0.5,
    "trained_divergence_after": 0.04, "recall": 1.0, "generic_loglik_change": -0.03,
    "ended_at": "2026-03-01T09:00:11.000Z",
}  # fmt: skip


@pytest.fixture
def scorer() -> TableScorer:
    return TableScorer()


@pytest.fixture
def endpoint() -> RecordingEndpoint:
    return RecordingEndpoint()


@pytest.fixture
def trainer() -> ScriptedTrainer:
    return ScriptedTrainer()


@pytest.fixture
async def review(
    tmp_path: Path, scorer: TableScorer, endpoint: RecordingEndpoint, trainer: ScriptedTrainer
) -> AsyncIterator[Review]:
    ConfigFile(tmp_path / "config.json5").set_value("finetune_url", URL)
    running = open_review(tmp_path, scorer, endpoint, trainer)
    yield running
    await running.close()


class ActivityLog:
    """Every event of one activity of the Review's hub, from before it starts to its end."""

    def __init__(self, review: Review, activity_id: str) -> None:
        self.events: list[activity_pb2.Activity] = []
        self.changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._pump(review, activity_id))

    async def _pump(self, review: Review, activity_id: str) -> None:
        async for event in review.hub.watch(activity_id):
            if event.HasField("activity"):
                copy = activity_pb2.Activity()
                copy.CopyFrom(event.activity)
                self.events.append(copy)
                self.changed.set()

    async def until(self, seen: Any, timeout: float = 10) -> activity_pb2.Activity:
        async def wait() -> activity_pb2.Activity:
            while True:
                for event in self.events:
                    if seen(event):
                        return event
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def end(self, timeout: float = 10) -> activity_pb2.Activity:
        return await self.until(lambda a: a.state in (SUCCEEDED, FAILED, CANCELLED), timeout)


async def sent(review: Review, cid: str = "c", turns: int = 2, chosen: int = 1) -> int:
    """Ingest a conversation, approve reply `chosen`, send it; returns its timestamp."""
    await ingest(review, conversation(cid, turns))
    ts = reply_ts(cid, chosen)
    await review.approve([ts])
    report = await review.send([ts])
    assert report.accepted == [ts] and report.job_id == "job-1"
    done = await asyncio.wait_for(ended(review, report.activity_id), 10)
    assert (done.kind, done.result.accepted, list(done.result.job_ids)) == ("send", 1, ["job-1"])
    return ts


# -- what a send tells the trainer --------------------------------------------------------


async def test_each_example_carries_its_prompt_with_memories_and_the_request_generic_replies(
    review: Review, scorer: TableScorer, endpoint: RecordingEndpoint
) -> None:
    bodies: list[dict[str, Any]] = []
    endpoint.during_post = bodies.append
    scorer.divergence["c reply 0"] = 0.0  # below the threshold: a generic reply
    await ingest(review, conversation("c", 3))
    await review.reject([reply_ts("c", 2)], "not a fact")
    await review.approve([reply_ts("c", 1)])
    await review.send([reply_ts("c", 1)])

    (body,) = bodies
    (example,) = body["examples"]
    # The README's fields as they were: the context without memories, the reply weight 1.
    assert example["messages"] == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "question 0"},
        {"role": "assistant", "content": "c reply 0", "weight": 0},
        {"role": "user", "content": "question 1"},
        {"role": "assistant", "content": "c reply 1", "weight": 1},
    ]
    # The prompt the reply was written with: the memory in, the reply itself out.
    assert example["messages_with_memories"] == [
        {"role": "system", "content": "You are helpful."},
        {"role": "system", "content": "Memory of c."},
        {"role": "user", "content": "question 0"},
        {"role": "assistant", "content": "c reply 0"},
        {"role": "user", "content": "question 1"},
    ]
    # Below-threshold replies, then rejected ones; their context never has the memories.
    assert body["held_out"] == [
        {"messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "question 0"},
            {"role": "assistant", "content": "c reply 0", "weight": 1},
        ]},
        {"messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "question 0"},
            {"role": "assistant", "content": "c reply 0", "weight": 0},
            {"role": "user", "content": "question 1"},
            {"role": "assistant", "content": "c reply 1", "weight": 0},
            {"role": "user", "content": "question 2"},
            {"role": "assistant", "content": "c reply 2", "weight": 1},
        ]},
    ]  # fmt: skip


async def test_held_out_replies_are_capped_least_memory_dependent_first(
    review: Review, scorer: TableScorer, endpoint: RecordingEndpoint
) -> None:
    bodies: list[dict[str, Any]] = []
    endpoint.during_post = bodies.append
    for i in range(20):
        scorer.divergence[f"g reply {i}"] = -0.001 * (i + 1)  # below the threshold
    scorer.divergence["g reply 15"] = 1.0  # the one candidate
    await ingest(review, conversation("g", 20))
    await review.approve([reply_ts("g", 15)])
    await review.send([reply_ts("g", 15)])
    (body,) = bodies
    held = [h["messages"][-1]["content"] for h in body["held_out"]]
    assert HELD_OUT_LIMIT == 16
    assert held == [f"g reply {i}" for i in (*range(15), 16)]


# -- the job followed ---------------------------------------------------------------------


async def test_a_job_is_followed_to_success_then_its_replies_are_re_scored_on_the_adapter(
    review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    trainer.scripts["job-1"] = [
        {"state": "queued"},
        {"state": "running", "step": 2, "total_steps": 10, "detail": "epoch 1/5, loss 1.9"},
    ]
    train = ActivityLog(review, "train-job-1")
    verify = ActivityLog(review, "verify-job-1")
    ts = await sent(review)

    running = await train.until(lambda a: a.done == 2)
    assert (running.kind, running.label, running.total) == ("train", "train 1 reply", 10)
    assert list(running.result.job_ids) == ["job-1"]  # whose it is, from the start
    assert running.detail == "epoch 1/5, loss 1.9"
    (job,) = review.jobs()
    assert (job.id, job.destination, job.state, job.examples) == ("job-1", URL, JobState.RUNNING, 1)

    scorer.divergence["c reply 1"] = 0.04  # what the Scorer measures on the new adapter
    calls_before = len(scorer.calls)
    trainer.scripts["job-1"] = [DONE]
    end = await train.end()
    assert end.state == SUCCEEDED
    assert end.detail == "job job-1: learnt 1 of 1, adapter v1"
    result = end.result
    assert (list(result.job_ids), result.adapter, result.learnt, result.returned) == (
        ["job-1"], "v1", 1, 0,
    )  # fmt: skip
    checked = await verify.end()
    assert checked.state == SUCCEEDED, checked.error
    assert "0.5 → 0.04" in checked.detail
    assert (checked.kind, list(checked.result.job_ids), checked.result.adapter) == (
        "verify", ["job-1"], "v1",
    )  # fmt: skip

    (entry,) = review.trained()
    assert (entry.timestamp_ns, entry.adapter) == (ts, "v1")
    assert (entry.divergence_before, entry.divergence_after) == (0.5, 0.04)
    # Re-scored alone, not excluded, without attribution; a measurement, not a review.
    (call,) = scorer.calls[calls_before:]
    assert call == ("c", [], [ts]) and scorer.skipped_attribution[-1] is True
    assert ts not in {c.timestamp_ns for c in review.candidates()}
    (job,) = review.jobs()
    assert job.state == JobState.SUCCEEDED and job.measured_at_ns > 0
    figures = review_pb2.TrainingJob.FromString(job.figures)  # as the trainer said them
    assert (job.adapter, figures.recall, figures.epochs) == ("v1", 1.0, 5)
    assert (figures.trained_divergence_before, figures.generic_loglik_change) == (0.5, -0.03)
    assert job.ended_at_ns == 1_772_355_611_000_000_000


async def test_a_score_on_another_model_is_not_recorded_as_the_adapters_proof(
    review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    """An endpoint that trains but never has the Scorer load its adapter: re-scoring runs on
    the base model, which proves nothing about v1, so nothing is recorded as v1's proof."""
    trainer.loads = False
    trainer.scripts["job-1"] = [DONE]
    verify = ActivityLog(review, "verify-job-1")
    ts = await sent(review)
    failed = await verify.end()
    assert failed.state == FAILED
    assert "scored on the base model, not on the job's adapter v1" in failed.error
    (entry,) = review.trained()
    assert (entry.timestamp_ns, entry.adapter, entry.divergence_after) == (ts, "v1", None)
    (job,) = review.jobs()
    assert job.measured_at_ns == 0  # measured again when the Review starts


async def test_a_failed_job_fails_its_activity_with_the_trainers_reason(
    review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    reason = "guard: no epoch kept the generic change above -0.1 (epoch 3: -0.42)"
    trainer.scripts["job-1"] = [{"state": "running"}, {"state": "failed", "error": reason}]
    train = ActivityLog(review, "train-job-1")
    calls = len(scorer.calls)
    ts = await sent(review)
    end = await train.end()
    assert end.state == FAILED and reason in end.error
    assert "1 returned to approved" in end.error
    assert (end.result.returned, end.result.learnt, end.result.adapter) == (1, 0, "")
    (job,) = review.jobs()
    assert (job.state, job.error) == (JobState.FAILED, reason)
    # Nothing learnt: not in the ledger, approved again with the reason, sent by the next Send.
    assert review.trained() == []
    back = {c.timestamp_ns: c for c in review.candidates()}[ts]
    assert (back.status, back.job_id, back.send_error) == (
        Status.APPROVED, "", f"job job-1 failed: {reason}",
    )  # fmt: skip
    assert len(scorer.calls) == calls + 1  # the ingest only: nothing re-scored


async def test_an_endpoint_without_a_jobs_route_leaves_the_job_accepted(
    tmp_path: Path, review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    train = ActivityLog(review, "train-job-1")
    ts = await sent(review)  # no script: the jobs route answers 404
    end = await train.end()
    assert end.state == SUCCEEDED and "not followed" in end.detail and "404" in end.detail
    assert "1 reply in the trained ledger" in end.detail
    (job,) = review.jobs()
    assert job.state == JobState.QUEUED and "404" in job.follow_note
    assert review.is_trained(ts)
    await review.close()

    polls = trainer.polls["job-1"]
    again = open_review(tmp_path, scorer, trainer=trainer)
    try:
        (job,) = again.jobs()
        assert job.state == JobState.QUEUED  # kept; not polled again after a restart
        assert trainer.polls["job-1"] == polls
    finally:
        await again.close()


async def test_a_trainer_that_stops_answering_is_followed_again_after_a_restart(
    tmp_path: Path, review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    trainer.scripts["job-1"] = [{"state": "running", "step": 1, "total_steps": 4}]
    train = ActivityLog(review, "train-job-1")
    await sent(review)
    await train.until(lambda a: a.done == 1)
    trainer.silent = True
    lost = await train.end()
    assert lost.state == CANCELLED and "connection refused" in lost.error
    (job,) = review.jobs()
    assert (job.state, job.follow_note) == (JobState.RUNNING, "")  # not ended, not given up
    await review.close()

    later = ScriptedTrainer()
    later.scripts["job-1"] = [DONE]
    again = open_review(tmp_path, scorer, trainer=later)
    try:
        assert (await ended(again, "verify-job-1")).state == SUCCEEDED
        assert again.jobs()[0].state == JobState.SUCCEEDED
    finally:
        await again.close()


async def test_a_restart_follows_the_unended_job_again_and_measures_it(
    tmp_path: Path, review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    trainer.scripts["job-1"] = [{"state": "running", "step": 1, "total_steps": 4}]
    train = ActivityLog(review, "train-job-1")
    ts = await sent(review)
    await train.until(lambda a: a.done == 1)
    await asyncio.wait_for(_stored_state(tmp_path, "running"), 10)
    await review.close()
    assert (await train.end()).state == CANCELLED

    later = ScriptedTrainer()
    later.scripts["job-1"] = [DONE]
    scorer.divergence["c reply 1"] = 0.02
    again = open_review(tmp_path, scorer, trainer=later)
    try:
        verify = ActivityLog(again, "verify-job-1")
        assert (await verify.end()).state == SUCCEEDED
        (entry,) = again.trained()
        assert (entry.timestamp_ns, entry.adapter, entry.divergence_after) == (ts, "v1", 0.02)
        assert again.jobs()[0].state == JobState.SUCCEEDED
    finally:
        await again.close()


async def test_a_measurement_that_failed_is_made_after_a_restart(
    tmp_path: Path, review: Review, scorer: TableScorer, trainer: ScriptedTrainer
) -> None:
    trainer.scripts["job-1"] = [DONE]
    scorer_calls = len(scorer.calls)
    verify = ActivityLog(review, "verify-job-1")
    await ingest(review, conversation("c", 2))
    scorer.broken = "the engine ran out of memory"
    await review.approve([reply_ts("c", 1)])
    await review.send([reply_ts("c", 1)])
    failed = await verify.end()
    assert failed.state == FAILED and "ran out of memory" in failed.error
    assert review.trained()[0].divergence_after is None
    assert review.jobs()[0].measured_at_ns == 0
    await review.close()

    scorer.broken = ""
    scorer.divergence["c reply 1"] = 0.03
    again = open_review(tmp_path, scorer, trainer=ScriptedTrainer())
    try:
        verify = ActivityLog(again, "verify-job-1")
        assert (await verify.end()).state == SUCCEEDED
        assert again.trained()[0].divergence_after == 0.03
        assert again.jobs()[0].measured_at_ns > 0
        assert len(scorer.calls) == scorer_calls + 3  # ingest, failed, made
    finally:
        await again.close()


async def _stored_state(home: Path, state: str) -> None:
    wanted = JobState[state.upper()].value
    while True:
        db = sqlite3.connect(home / "review.sqlite3")
        try:
            row = db.execute("SELECT state FROM jobs").fetchone()
        finally:
            db.close()
        if row == (wanted,):
            return
        await asyncio.sleep(0.01)


async def test_a_ledger_of_an_older_file_reads_back_unmeasured(
    tmp_path: Path, review: Review, scorer: TableScorer
) -> None:
    ts = await sent(review)
    await job_ended(review)  # no jobs route: in the ledger
    await review.close()
    db = sqlite3.connect(tmp_path / "review.sqlite3")
    db.executescript(
        """
        CREATE TABLE old AS SELECT timestamp_ns, conversation_id, trained_at_ns, destination,
            job_id FROM trained;
        DROP TABLE trained;
        ALTER TABLE old RENAME TO trained;
        DROP TABLE jobs;
        """
    )
    db.close()
    again = open_review(tmp_path, scorer)
    try:
        (entry,) = again.trained()
        assert (entry.timestamp_ns, entry.job_id) == (ts, "job-1")
        assert (entry.divergence_before, entry.divergence_after, entry.adapter) == (None, None, "")
        assert again.jobs() == []
    finally:
        await again.close()


# -- Ask and the alternate's progress ------------------------------------------------------


async def test_ask_puts_the_question_after_the_stored_conversation(
    review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("c", 1))
    scorer.adapter = "v2"
    answer = await review.ask("What is my cat's name?", "c", 0)
    assert (answer.text, answer.adapter) == ('answer to "What is my cat\'s name?"', "v2")
    asked = scorer.asked[-1]
    assert [m.content for m in asked.messages] == [
        "You are helpful.", "Memory of c.", "question 0", "c reply 0", "What is my cat's name?",
    ]  # fmt: skip
    alone = await review.ask("Who am I?", "", 16)
    assert alone.text == "answer to 'Who am I?'"
    assert [m.content for m in scorer.asked[-1].messages] == ["Who am I?"]

    with pytest.raises(InvalidArgument) as empty:
        await review.ask("  ", "", 0)
    assert empty.value.field == "question"
    with pytest.raises(NotFound):
        await review.ask("Who?", "nobody", 0)


async def test_the_alternate_is_an_activity_that_relays_the_scorers_progress(
    review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("c", 1))
    ts = reply_ts("c", 0)
    scorer.reports = [Progress(done=1, total=1, detail="12 tokens")]
    log = ActivityLog(review, "alt-1")
    candidate = await review.generate_alternate(ts, False, "alt-1", None)
    assert candidate.alternate == f"alternate of {ts}"
    end = await log.end()
    assert (end.kind, end.state) == ("alternate", SUCCEEDED)
    assert any(a.detail == "12 tokens" for a in log.events)

    scorer.down = True
    failed = ActivityLog(review, "alt-2")
    with pytest.raises(ScorerUnavailable):
        await review.generate_alternate(ts, True, "alt-2", None)
    assert (await failed.end()).state == FAILED
    assert review.candidates()[0].status == Status.PENDING


async def test_a_job_activity_is_watchable_by_its_id_until_the_end(
    review: Review, trainer: ScriptedTrainer
) -> None:
    trainer.scripts["job-1"] = [DONE]
    await sent(review)
    end = await asyncio.wait_for(ended(review, "train-job-1"), 10)
    assert end.state == SUCCEEDED and end.done == end.total == 10
