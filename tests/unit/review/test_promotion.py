"""What a job's word does to the replies an endpoint accepted (issue 16), on the domain
alone: which replies a job learnt (the trainer's per-example `learnt`, or its state when it
does not say), an endpoint that names no job, a reply re-sent into a job that had ended,
and a restart that finds replies in training in an ended job."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from review_fakes import (
    RecordingEndpoint,
    ScriptedTrainer,
    TableScorer,
    conversation,
    ingest,
    job_ended,
    open_review,
    reply_ts,
)

from review_service.adapters.job_http import parse_job
from review_service.adapters.store_sqlite import SqliteStore
from review_service.app.config import ConfigFile
from review_service.app.review import Review
from review_service.domain.examples import idempotency_key
from review_service.domain.jobs import JobState, TrainingJob
from review_service.domain.model import Candidate, Status
from review_service.domain.ports import StoreChange

URL = "http://trainer.test/finetune"


def learnt(*results: tuple[int, bool]) -> dict[str, Any]:
    return {
        "state": "succeeded", "adapter": "v1",
        "per_example": [{"idempotency_key": idempotency_key(ts), "learnt": ok}
                        for ts, ok in results],
    }  # fmt: skip


@pytest.fixture
def trainer() -> ScriptedTrainer:
    return ScriptedTrainer()


@pytest.fixture
def endpoint() -> RecordingEndpoint:
    return RecordingEndpoint()


@pytest.fixture
async def review(
    tmp_path: Path, endpoint: RecordingEndpoint, trainer: ScriptedTrainer
) -> AsyncIterator[Review]:
    ConfigFile(tmp_path / "config.json5").set_value("finetune_url", URL)
    running = open_review(tmp_path, TableScorer(), endpoint, trainer)
    yield running
    await running.close()


async def approved(review: Review, cid: str, n: int) -> list[int]:
    await ingest(review, conversation(cid, n))
    stamps = [reply_ts(cid, i) for i in range(n)]
    await review.approve(stamps)
    return stamps


async def out_of_training(review: Review, ts: int) -> Candidate | None:
    """Polls (with a deadline) until `ts` is no longer SENT; its candidate, None if learnt."""

    async def wait() -> Candidate | None:
        while True:
            listed = {c.timestamp_ns: c for c in review.candidates()}
            if ts not in listed or not listed[ts].in_training:
                return listed.get(ts)
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(wait(), 10)


def test_a_job_says_which_replies_it_learnt() -> None:
    answer = {
        "state": "succeeded", "adapter": "v4",
        "per_example": [
            {"idempotency_key": "a", "learnt": True, "reason": ""},
            {"idempotency_key": "b", "learnt": False,
             "reason": 'not learnt: divergence 0.71,\n recall answer "I don\'t know."'},
            {"idempotency_key": "c", "learnt": False},
            {"idempotency_key": "d", "learnt": "yes"},  # not a boolean: not reported
        ],
    }  # fmt: skip
    job = parse_job(answer, "ft-3", URL)
    assert [(r.learnt, r.reason) for r in job.per_example] == [
        (True, ""),
        (False, 'not learnt: divergence 0.71, recall answer "I don\'t know."'),
        (False, ""),
        (None, ""),
    ]
    assert job.not_learnt("a") is None
    assert job.not_learnt("b") == (
        'job ft-3 did not learn it: not learnt: divergence 0.71, recall answer "I don\'t know."'
    )
    assert job.not_learnt("c") == "job ft-3 did not learn it: the trainer gave no reason"
    # A trainer that reports learning and leaves a reply out did not learn it.
    assert job.not_learnt("d") == "job ft-3 did not learn it: the trainer did not report it"

    # A trainer that does not say: a succeeded job learnt every reply, a failed one none.
    silent = parse_job({"state": "succeeded", "per_example": [{"idempotency_key": "a"}]}, "j", URL)
    assert silent.not_learnt("a") is None and silent.not_learnt("z") is None
    failed = dataclasses.replace(job, state=JobState.FAILED, error="guard: recall 0/3")
    assert failed.not_learnt("a") == "job ft-3 failed: guard: recall 0/3"
    bare = TrainingJob("ft-4", URL, state=JobState.FAILED, detail="stopped at epoch 2")
    assert bare.not_learnt("a") == "job ft-4 failed: stopped at epoch 2"


async def test_an_endpoint_that_names_no_job_puts_accepted_replies_in_the_ledger_at_once(
    review: Review, endpoint: RecordingEndpoint
) -> None:
    endpoint.job_id = ""
    stamps = await approved(review, "nojob", 2)
    report = await review.send([])
    assert sorted(report.accepted) == stamps and report.job_id == ""
    # Nothing can ever say what it learnt: acceptance is all anyone will know.
    assert {e.timestamp_ns: (e.job_id, e.adapter) for e in review.trained()} == {
        ts: ("", "") for ts in stamps
    }
    assert review.candidates() == [] and review.jobs() == []


async def test_a_reply_re_sent_into_a_job_that_ended_asks_that_job_again(
    review: Review, trainer: ScriptedTrainer
) -> None:
    first, second = await approved(review, "again", 2)
    trainer.scripts["job-1"] = [learnt((first, True))]
    await review.send([first])
    await job_ended(review)
    assert [e.timestamp_ns for e in review.trained()] == [first]

    # The endpoint answers the next send with the job that has ended (as an endpoint that
    # reuses a job may): the Review asks it again what it learnt.
    await review.send([second])
    back = await out_of_training(review, second)
    assert back is not None and back.status == Status.APPROVED
    assert back.send_error == "job job-1 did not learn it: the trainer did not report it"

    trainer.scripts["job-1"] = [learnt((first, True), (second, True))]
    await review.send([second])
    assert await out_of_training(review, second) is None
    assert {e.timestamp_ns: e.adapter for e in review.trained()} == {first: "v1", second: "v1"}


async def test_a_restart_follows_an_ended_job_that_still_has_replies_in_training(
    tmp_path: Path, review: Review, trainer: ScriptedTrainer
) -> None:
    (ts,) = await approved(review, "crash", 1)
    candidate = {c.timestamp_ns: c for c in review.candidates()}[ts]
    await review.close()
    # What a crash leaves after a send put the reply into a job that had already ended and
    # before that job was asked again.
    store = SqliteStore(tmp_path / "review.sqlite3")
    in_training = dataclasses.replace(candidate, status=Status.SENT, job_id="job-1", sent_to=URL)
    ended = TrainingJob("job-1", URL, JobState.SUCCEEDED, adapter="v0", measured_at_ns=1)
    store.commit([StoreChange(upsert=[in_training], jobs=[ended])])
    store.close()

    later = ScriptedTrainer()
    later.scripts["job-1"] = [learnt((ts, True))]
    again = open_review(tmp_path, TableScorer(), trainer=later)
    try:
        assert await out_of_training(again, ts) is None
        (entry,) = again.trained()
        assert (entry.timestamp_ns, entry.job_id, entry.adapter) == (ts, "job-1", "v1")
    finally:
        await again.close()
