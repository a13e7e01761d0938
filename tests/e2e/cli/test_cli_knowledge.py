"""`ftreview forget` and `ftreview trained --json` against a real Review (gRPC, SQLite, in
this process, its Scorer the integration tests' stand-in) and the in-test trainer with its
retract route: the one-line answer (told, with the consolidation job; or why not), the
JSON answer, a reply that is not trained (one line, no traceback), and the ledger's JSON
keeping its keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from ftreview.core.wire import to_timestamp
from ftreview.v1 import review_pb2 as S

from review_service.app.config import ConfigFile
from tests.e2e.cli.conftest import AsyncCli, threaded_cli
from tests.integration.review.review_support import (
    ReviewUnderTest,
    make_conversation,
    reply_ts,
    serve_fake_scorer,
)
from tests.integration.review.trainer_stub import StubTrainer, serve_stub_trainer


@pytest.fixture
def trainer() -> Iterator[StubTrainer]:
    with serve_stub_trainer() as state:
        state.first_script = [{"state": "succeeded", "adapter": "v1"}]
        yield state


@pytest.fixture
async def review(tmp_path: Path) -> AsyncIterator[ReviewUnderTest]:
    async with serve_fake_scorer() as scorer:
        running = ReviewUnderTest(tmp_path / "home", scorer.address)
        await running.start()
        yield running
        await running.stop()


@pytest.fixture
def cli(
    review: ReviewUnderTest, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> AsyncCli:
    return threaded_cli(review.port, capsys, monkeypatch)


async def trained(review: ReviewUnderTest, trainer: StubTrainer, cid: str) -> int:
    ConfigFile(review.config_path).set_value("finetune_url", trainer.url)
    await review.ingest_and_wait(make_conversation(cid, 1))
    ts = reply_ts(cid, 0)
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(ts)]))
    sent = await review.stub.Send(S.SendRequest(timestamps=[to_timestamp(ts)]))
    await review.wait_activity(f"train-{sent.job_id}")
    return ts


async def test_forget_says_the_trainer_was_told_and_its_job(
    cli: AsyncCli, review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    code, out, err = await cli("forget", str(ts), "--reason", "wrong cat")
    assert (code, err) == (0, "")
    assert out == f"forgot {ts} (retracted; trainer told, consolidation job consolidate-1)\n"
    (told,) = trainer.retractions
    assert told["retract"][0]["reason"] == "forgotten by ann: wrong cat"

    kept = await trained(review, trainer, "d")
    await review.wait_activity("train-consolidate-1")
    code, out, err = await cli("trained", "--json")
    assert code == 0, err
    entries = {e["timestamp_ns"]: e for e in json.loads(out)["trained"]}
    entry = entries[ts]
    for key in ("timestamp_ns", "conversation_id", "trained_at", "destination", "job_id",
                "divergence_before", "divergence_after", "adapter"):  # fmt: skip
        assert key in entry
    assert (entry["timestamp_ns"], entry["job_id"]) == (ts, "job-1")
    assert (entry["state"], entry["reason"], entry["retraction_delivered"]) == (
        "retracted",
        "forgotten by ann: wrong cat",
        True,
    )
    assert (entry["superseded_by"], entry["content"]) == (None, "c reply 0")
    # The consolidation job checked it (gone) and the kept fact (still there).
    assert (entry["comes_back"], entry["checked_by_job"]) == (False, "consolidate-1")
    assert (entries[kept]["state"], entries[kept]["comes_back"]) == ("live", True)

    code, out, err = await cli("jobs", "--json")
    assert code == 0, err
    (job,) = [j for j in json.loads(out)["jobs"] if j["id"] == "consolidate-1"]
    assert (job["kind"], job["continued_from"]) == ("consolidate", "")
    checks = {c["timestamp_ns"]: c for c in job["retention"]}
    assert (checks[ts]["retracted"], checks[ts]["comes_back"]) == (True, False)

    code, out, err = await cli("trained", "--json", "--state", "live")
    assert [e["timestamp_ns"] for e in json.loads(out)["trained"]] == [kept]

    code, out, err = await cli("trained")
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    (row,) = [line for line in lines if line.startswith(str(ts)) and "retracted" in line]
    assert "no · consolidate-1" in row
    assert f"{ts} forgotten by ann: wrong cat" in lines

    code, out, err = await cli("forget", str(ts))
    assert (code, out) == (
        0,
        f"{ts} was retracted already, nothing changed: forgotten by ann: wrong cat\n",
    )


async def test_forget_json_and_a_trainer_that_could_not_be_told(
    cli: AsyncCli, review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    trainer.retract_fails = 503
    code, out, err = await cli("forget", str(ts), "--json", "--reviewer", "bob")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["timestamp_ns"], shown["job_id"]) == (ts, "")
    assert "503" in shown["delivery_error"]
    assert shown["entry"]["timestamp_ns"] == ts and shown["entry"]["job_id"] == "job-1"
    assert trainer.retractions == []


async def test_forget_of_a_reply_not_trained_is_one_line(
    cli: AsyncCli, review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    ts = await trained(review, trainer, "c")
    code, out, err = await cli("forget", str(ts + 1))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and str(ts + 1) in err and "Traceback" not in err
    code, out, err = await cli("forget", "not-an-id")
    assert code == 2 and err.count("\n") == 1 and "not a candidate id" in err
