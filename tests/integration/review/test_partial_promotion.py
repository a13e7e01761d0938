"""Partial promotion (issue 16) on real servers: a real Review (gRPC, SQLite) and the in-test
HTTP trainer (`trainer_stub`), which answers the job states and the per-example `learnt`
the test scripts, and, as ftreview's trainer does, puts a re-sent key that its job did not
learn into a new job.

The rule: no reply is in the trained ledger unless an adapter that learnt it is served.
Accepted replies are SENT (listed, not decidable) while their job runs; the job's end puts
the learnt ones in the ledger with its adapter and the others back to approved with the
trainer's reason, and the next Send sends exactly those again. Also: a failed job, a
restart mid-job, and a database an earlier version left with replies a failed job
stranded in the ledger."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2
from ftreview.v1 import review_pb2 as S
from review_support import (
    CandidateWatch,
    ReviewUnderTest,
    RunningFakeScorer,
    make_conversation,
    reply_text,
    reply_ts,
)
from trainer_stub import StubTrainer, serve_stub_trainer

from review_service.adapters.store_sqlite import SCHEMA_VERSION
from review_service.api.server import DATABASE_NAME
from review_service.app.config import ConfigFile
from review_service.domain.examples import idempotency_key
from review_service.domain.jobs import JobState

SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED
FAILED = activity_pb2.ACTIVITY_STATE_FAILED
RUNNING = {"state": "running", "step": 1, "total_steps": 4, "detail": "epoch 1/2"}
WHY = "not learnt: divergence 0.71, recall answer \"I don't know your cat's name.\""
Kind = S.CandidateEventKind


@pytest.fixture
def trainer(fake_scorer: RunningFakeScorer) -> Iterator[StubTrainer]:
    with serve_stub_trainer() as state:
        state.first_script = [RUNNING]
        state.scorer_address = fake_scorer.address  # it promotes there, as the trainer does
        yield state


def succeeded(adapter: str, *results: tuple[int, bool, str]) -> dict[str, Any]:
    """A job's end that promoted `adapter`, with each reply's (timestamp, learnt, reason)."""
    return {
        "state": "succeeded", "adapter": adapter, "epochs": 2, "step": 4, "total_steps": 4,
        "per_example": [
            {"idempotency_key": idempotency_key(ts), "learnt": learnt, "reason": reason}
            for ts, learnt, reason in results
        ],
    }  # fmt: skip


async def approved_replies(review: ReviewUnderTest, url: str, cid: str, n: int) -> list[int]:
    ConfigFile(review.config_path).set_value("finetune_url", url)
    assert (await review.ingest_and_wait(make_conversation(cid, n))).state == SUCCEEDED
    stamps = [reply_ts(cid, i) for i in range(n)]
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(t) for t in stamps]))
    return stamps


async def ledger(review: ReviewUnderTest) -> dict[int, S.TrainedEntry]:
    entries = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    return {timestamp_ns(e.timestamp): e for e in entries}


async def by_time(review: ReviewUnderTest, *statuses: int) -> dict[int, S.Candidate]:
    return {timestamp_ns(c.timestamp): c for c in await review.list(*statuses)}


async def send(review: ReviewUnderTest, *stamps: int) -> S.SendResponse:
    return await review.stub.Send(S.SendRequest(timestamps=[to_timestamp(t) for t in stamps]))


async def assert_only_learnt_replies_are_trained(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    """The invariant: every ledger entry of a followed endpoint was learnt by a succeeded job
    whose answer reported that reply learnt, and names the adapter served now (the newest
    succeeded job's, which holds every live fact: docs/design.md §13)."""
    jobs = {j.id: j for j in (await review.stub.ListJobs(S.ListJobsRequest())).jobs}
    promoted = [j for j in jobs.values() if j.state == S.TRAINING_JOB_STATE_SUCCEEDED]
    served = max(promoted, key=lambda j: timestamp_ns(j.ended_at)).adapter if promoted else ""
    for ts, entry in (await ledger(review)).items():
        assert entry.destination == trainer.url
        assert entry.adapter, f"{ts} is in the ledger without an adapter"
        assert entry.adapter == served, f"{ts} names {entry.adapter}, {served} is served"
        job = jobs[entry.job_id]
        assert job.state == S.TRAINING_JOB_STATE_SUCCEEDED
        answer = trainer.answered[entry.job_id]
        results = {r["idempotency_key"]: r for r in answer["per_example"]}
        assert answer["state"] == "succeeded" and results[idempotency_key(ts)]["learnt"] is True


async def test_a_partial_promotion_trains_what_was_learnt_and_sends_the_rest_again(
    review: ReviewUnderTest, trainer: StubTrainer, fake_scorer: RunningFakeScorer
) -> None:
    first, second, third = await approved_replies(review, trainer.url, "p", 3)

    sent = await send(review)
    assert sorted(timestamp_ns(t) for t in sent.accepted) == [first, second, third]
    assert sent.job_id == "job-1"
    trainer.script("job-1", succeeded("v4", (first, True, ""), (second, False, WHY),
                                      (third, True, "")))  # fmt: skip
    end = await review.wait_activity("train-job-1")
    assert end.state == SUCCEEDED, end.error
    assert end.detail.startswith("job job-1: learnt 2 of 3, adapter v4")
    assert end.detail.endswith("1 returned to approved (the next Send sends it again)")

    entries = await ledger(review)
    assert set(entries) == {first, third}
    assert {(e.job_id, e.adapter, e.divergence_before) for e in entries.values()} == {
        ("job-1", "v4", 0.5)
    }
    (back,) = (await by_time(review)).values()
    assert timestamp_ns(back.timestamp) == second
    assert (back.status, back.job_id) == (S.CANDIDATE_STATUS_APPROVED, "")
    assert back.send_error == f"job job-1 did not learn it: {WHY}"
    # Re-scored on the adapter: the learnt replies only.
    assert (await review.wait_activity("verify-job-1")).state == SUCCEEDED
    rescored = fake_scorer.scorer.requests[-1]
    assert sorted(timestamp_ns(t) for t in rescored.only) == [first, third]
    await assert_only_learnt_replies_are_trained(review, trainer)

    # The next Send sends exactly the one not learnt, in a new job, which can learn it.
    again = await send(review)
    assert [timestamp_ns(t) for t in again.accepted] == [second] and again.job_id == "job-2"
    assert [e["idempotency_key"] for e in trainer.requests[-1]["examples"]] == [
        idempotency_key(second)
    ]
    trainer.script("job-2", succeeded("v5", (second, True, "")))
    assert (await review.wait_activity("train-job-2")).state == SUCCEEDED
    entries = await ledger(review)
    assert set(entries) == {first, second, third}
    assert (entries[second].job_id, entries[second].adapter) == ("job-2", "v5")
    assert await review.list() == []
    await assert_only_learnt_replies_are_trained(review, trainer)


async def test_a_failed_job_leaves_every_reply_approved_and_send_retries_them(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    stamps = await approved_replies(review, trainer.url, "f", 2)
    watch = CandidateWatch(review.stub)
    try:
        reason = "guard: generic log-likelihood fell by 0.42 nats/token at epoch 3"
        sent = await send(review)
        assert len(sent.accepted) == 2 and sent.job_id == "job-1"
        assert await ledger(review) == {}
        trainer.script("job-1", {"state": "failed", "error": reason})
        end = await review.wait_activity("train-job-1")
        assert end.state == FAILED
        assert end.error == f"job job-1 failed: {reason}; 2 returned to approved " + (
            "(the next Send sends them again)"
        )
        assert await ledger(review) == {}
        back = await by_time(review)
        assert set(back) == set(stamps)
        assert {(c.status, c.send_error) for c in back.values()} == {
            (S.CANDIDATE_STATUS_APPROVED, f"job job-1 failed: {reason}")
        }

        # Send tries them again: the trainer puts keys a job did not learn in a new job.
        retried = await send(review)
        assert sorted(timestamp_ns(t) for t in retried.accepted) == stamps
        assert retried.job_id == "job-2"
        assert {c.status for c in (await by_time(review)).values()} == {S.CANDIDATE_STATUS_SENT}
        assert await ledger(review) == {}
        trainer.script("job-2", {"state": "failed", "error": "out of memory"})
        assert (await review.wait_activity("train-job-2")).state == FAILED
        assert {c.send_error for c in (await by_time(review)).values()} == {
            "job job-2 failed: out of memory"
        }
        assert await ledger(review) == {}
        # At no point did a reply leave the list for the ledger.
        assert watch.of_kind(Kind.CANDIDATE_EVENT_KIND_REMOVED) == []
    finally:
        watch.close()


async def test_while_the_job_runs_its_replies_are_sent_and_cannot_be_decided_or_sent_again(
    review: ReviewUnderTest, trainer: StubTrainer, fake_scorer: RunningFakeScorer
) -> None:
    first, second = await approved_replies(review, trainer.url, "r", 2)
    await send(review)

    in_training = await by_time(review, S.CANDIDATE_STATUS_SENT)
    assert set(in_training) == {first, second}
    assert {c.job_id for c in in_training.values()} == {"job-1"}
    assert set(await by_time(review)) == {first, second}  # listed by default too
    assert await ledger(review) == {}
    stats = await review.stub.GetStats(S.GetStatsRequest())
    assert (stats.training, stats.approved, stats.trained) == (2, 0, 0)

    stamps = [to_timestamp(first)]
    refused: dict[str, Callable[[], Awaitable[Any]]] = {
        "approve": lambda: review.stub.Approve(S.ApproveRequest(timestamps=stamps)),
        "reject": lambda: review.stub.Reject(S.RejectRequest(timestamps=stamps, reason="no")),
        "undo": lambda: review.stub.ClearDecision(S.ClearDecisionRequest(timestamps=stamps)),
        "send": lambda: review.stub.Send(S.SendRequest(timestamps=stamps)),
        "export": lambda: review.stub.Export(S.ExportRequest(timestamps=stamps)),
    }
    for name, call in refused.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, name
        assert "in training job job-1" in (caught.value.details() or ""), name
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.Export(S.ExportRequest(statuses=[S.CANDIDATE_STATUS_SENT]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing approved is left to send or export: nothing reaches the trainer again.
    assert list((await send(review)).accepted) == []
    assert (await review.stub.Export(S.ExportRequest())).count == 0
    assert len(trainer.requests) == 1

    # Rescoring keeps them SENT, with the scores they were sent with.
    fake_scorer.scorer.divergence[reply_text("r", 0)] = 0.9
    (activity_id,) = (await review.stub.SyncCandidates(S.SyncCandidatesRequest())).activity_ids
    assert (await review.wait_activity(activity_id)).state == SUCCEEDED
    after = await by_time(review)
    assert {c.status for c in after.values()} == {S.CANDIDATE_STATUS_SENT}
    assert after[first].divergence == 0.5
    await assert_only_learnt_replies_are_trained(review, trainer)


async def test_a_restart_while_the_job_runs_keeps_the_replies_sent_and_resumes(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    first, second, third = await approved_replies(review, trainer.url, "s", 3)
    await send(review)
    await review.restart()

    assert set(await by_time(review, S.CANDIDATE_STATUS_SENT)) == {first, second, third}
    assert await ledger(review) == {}
    trainer.script("job-1", succeeded("v4", (first, True, ""), (second, False, WHY),
                                      (third, True, "")))  # fmt: skip
    end = await review.wait_activity("train-job-1")
    assert end.state == SUCCEEDED and "learnt 2 of 3" in end.detail

    # The same end state as without the restart.
    entries = await ledger(review)
    assert set(entries) == {first, third} and {e.adapter for e in entries.values()} == {"v4"}
    (back,) = (await by_time(review)).values()
    assert (timestamp_ns(back.timestamp), back.status) == (second, S.CANDIDATE_STATUS_APPROVED)
    assert back.send_error == f"job job-1 did not learn it: {WHY}"
    await assert_only_learnt_replies_are_trained(review, trainer)


# The schema the previous release (5) left in a file, with the columns it added.
_SCHEMA_V5 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE candidates (
    timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, content TEXT NOT NULL,
    context TEXT NOT NULL, divergence REAL NOT NULL, peak REAL NOT NULL, tokens TEXT NOT NULL,
    alternate TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'forgotten')),
    scored_at_ns INTEGER NOT NULL, decided_at_ns INTEGER NOT NULL, reject_reason TEXT NOT NULL,
    question TEXT, memories TEXT, send_error TEXT
);
CREATE TABLE trained (
    timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL,
    trained_at_ns INTEGER NOT NULL, destination TEXT NOT NULL, job_id TEXT NOT NULL,
    divergence_before REAL, divergence_after REAL, adapter TEXT
);
CREATE TABLE scored_replies (
    timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, node_path TEXT,
    content TEXT, scored INTEGER, divergence REAL, peak REAL, candidate INTEGER,
    reason INTEGER, context_tokens_cut INTEGER, scored_at_ns INTEGER
);
CREATE INDEX scored_by_conversation ON scored_replies (conversation_id);
CREATE TABLE conversations (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE reply_owners (timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL);
CREATE TABLE jobs (
    destination TEXT NOT NULL, id TEXT NOT NULL, state INTEGER NOT NULL,
    examples INTEGER NOT NULL, epochs INTEGER NOT NULL, step INTEGER NOT NULL,
    total_steps INTEGER NOT NULL, detail TEXT NOT NULL, adapter TEXT NOT NULL,
    adapter_path TEXT NOT NULL, trained_divergence_before REAL, trained_divergence_after REAL,
    recall REAL, generic_loglik_change REAL, error TEXT NOT NULL, created_at_ns INTEGER NOT NULL,
    ended_at_ns INTEGER NOT NULL, follow_note TEXT NOT NULL, measured_at_ns INTEGER NOT NULL,
    PRIMARY KEY (destination, id)
);
CREATE INDEX trained_by_job ON trained (job_id);
CREATE TABLE decisions (
    timestamp_ns INTEGER PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'forgotten')),
    decided_at_ns INTEGER NOT NULL, reject_reason TEXT NOT NULL
);
CREATE TABLE sends_in_flight (
    timestamp_ns INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL, url TEXT NOT NULL,
    started_at_ns INTEGER NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '5');
"""


def _database_of_the_old_code_path(home: Path, url: str) -> list[int]:
    """What the previous release left after sending the four replies of conversation "old":
    each went to the ledger when `url` accepted it. Job ft-3 (reply 0) then failed, job ft-4
    (reply 1) promoted v2, and job ft-5 (replies 2 and 3) was still running."""
    home.mkdir(parents=True)
    stamps = [reply_ts("old", i) for i in range(4)]
    db = sqlite3.connect(home / DATABASE_NAME)
    db.executescript(_SCHEMA_V5)
    body = make_conversation("old", 4).SerializeToString(deterministic=True)
    db.execute("INSERT INTO conversations VALUES ('old', ?)", (body,))
    db.executemany("INSERT INTO reply_owners VALUES (?, 'old')", [(ts,) for ts in stamps])
    db.executemany(
        "INSERT INTO scored_replies VALUES (?, 'old', ?, ?, 1, 0.5, 1.0, 1, 0, 0, 1)",
        [(ts, f"nodes[{3 + 2 * i}]", reply_text("old", i)) for i, ts in enumerate(stamps)],
    )
    db.executemany(
        "INSERT INTO trained VALUES (?, 'old', 1, ?, ?, 0.5, ?, ?)",
        [(stamps[0], url, "ft-3", None, ""), (stamps[1], url, "ft-4", 0.1, "v2"),
         (stamps[2], url, "ft-5", None, ""), (stamps[3], url, "ft-5", None, "")],
    )  # fmt: skip
    db.executemany(
        "INSERT INTO jobs VALUES (?, ?, ?, ?, 1, 0, 0, '', ?, '',"
        " NULL, NULL, NULL, NULL, ?, 1, ?, '', ?)",
        [(url, "ft-3", int(JobState.FAILED), 1, "", "guard: recall 0/1", 2, 0),
         (url, "ft-4", int(JobState.SUCCEEDED), 1, "v2", "", 2, 3),
         (url, "ft-5", int(JobState.RUNNING), 2, "", "", 0, 0)],
    )  # fmt: skip
    db.commit()
    db.close()
    return stamps


async def test_an_old_database_gives_back_what_failed_jobs_stranded_in_the_ledger(
    tmp_path: Path,
    fake_scorer: RunningFakeScorer,
    trainer: StubTrainer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "home"
    stranded, promoted, learnt, unlearnt = _database_of_the_old_code_path(home, trainer.url)
    ConfigFile(home / "config.json5").set_value("finetune_url", trainer.url)
    trainer.script("ft-5", RUNNING)
    trainer.answered["ft-4"] = succeeded("v2", (promoted, True, ""))  # what it said then
    review = ReviewUnderTest(home, fake_scorer.address)
    with caplog.at_level(logging.WARNING, logger="review_service"):
        await review.start()
    try:
        assert any(
            "1 reply of failed training jobs left the trained ledger" in r.getMessage()
            for r in caplog.records
        )
        # The failed job's reply is out; the promoted one stays; the running job's wait.
        assert set(await ledger(review)) == {promoted, learnt, unlearnt}

        # The running job ends (followed again on start) and its word holds for the entries
        # the old version wrote at acceptance too.
        trainer.script("ft-5", succeeded("v6", (learnt, True, ""), (unlearnt, False, WHY)))
        end = await review.wait_activity("train-ft-5")
        assert end.state == SUCCEEDED and "learnt 1 of 2, adapter v6" in end.detail
        assert "1 left the trained ledger" in end.detail
        entries = await ledger(review)
        # v6 is served now and holds the earlier live fact too.
        assert {ts: e.adapter for ts, e in entries.items()} == {promoted: "v6", learnt: "v6"}
        # Each still names the job that learnt it.
        assert entries[promoted].job_id != "ft-5" and entries[learnt].job_id == "ft-5"
        await assert_only_learnt_replies_are_trained(review, trainer)

        # Their conversation is stored: SyncCandidates brings both back as candidates.
        (activity_id,) = (await review.stub.SyncCandidates(S.SyncCandidatesRequest())).activity_ids
        assert (await review.wait_activity(activity_id)).state == SUCCEEDED
        back = await by_time(review)
        assert set(back) == {stranded, unlearnt}
        assert {c.status for c in back.values()} == {S.CANDIDATE_STATUS_PENDING}
    finally:
        await review.stop()

    db = sqlite3.connect(home / DATABASE_NAME)
    columns = {row[1] for row in db.execute("PRAGMA table_info(candidates)")}
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert {"job_id", "sent_to"} <= columns and version == (str(SCHEMA_VERSION),)
