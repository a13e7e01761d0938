"""`send` following its training job, `jobs`, `trained` before -> after, and `ask`, against a
real Review and the module's real Scorer (embedded model).

The fine-tuning endpoint is the in-test HTTP trainer of the Review's integration tests
(`trainer_stub`): it speaks the README's contract and ftreview's jobs route, trains nothing
and answers the job states the test scripts. It promotes as ftreview's trainer does, on the
module's Scorer, an adapter that scores as the base model (`tests.support.adapters`): the
test checks that the CLI shows what the Review measured on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc

from tests.e2e.cli.conftest import Cli, Review, Stack
from tests.integration.review.trainer_stub import StubTrainer, serve_stub_trainer
from tests.support.adapters import identity_adapter

pytestmark = pytest.mark.model

BISCUIT_REPLY_NS = 1772355611000000007  # "Your cat is named Biscuit." in biscuit.json
SUCCEEDED = {
    "state": "succeeded", "step": 4, "total_steps": 4, "epochs": 2, "adapter": "ftreview-1",
    "trained_divergence_before": 1.8, "trained_divergence_after": 0.04, "recall": 1.0,
    "generic_loglik_change": -0.03,
}  # fmt: skip


def ok(cli: Cli, *args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def adapter(embedded_backend: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return identity_adapter(embedded_backend.model, tmp_path_factory.mktemp("adapters") / "a")


@pytest.fixture
def trainer(review: Review, stack: Stack, adapter: Path) -> Iterator[StubTrainer]:
    with serve_stub_trainer() as stub:
        stub.scorer_address, stub.adapter_path = stack.scorer, str(adapter)
        review.home.mkdir(parents=True, exist_ok=True)
        (review.home / "config.json5").write_text(
            json.dumps({"learn": {"finetune_url": stub.url}}), encoding="utf-8"
        )
        yield stub
    with grpc.insecure_channel(stack.scorer) as channel:  # the module's Scorer: back to base
        scorer_pb2_grpc.ScorerStub(channel).LoadAdapter(scorer_pb2.LoadAdapterRequest())


@pytest.fixture
def approved(cli: Cli, fixtures_dir: Path) -> Cli:
    ok(cli, "score", "--quiet", str(fixtures_dir / "biscuit.json"))
    ok(cli, "approve", str(BISCUIT_REPLY_NS))
    return cli


def test_send_follows_the_job_and_shows_before_and_after(
    approved: Cli, trainer: StubTrainer
) -> None:
    trainer.first_script = [
        {"state": "running", "step": 1, "total_steps": 4, "detail": "epoch 1/2"},
        {"state": "running", "step": 3, "total_steps": 4, "detail": "epoch 2/2"},
        SUCCEEDED,
    ]
    code, out, err = approved("send")  # not a terminal: not asked
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "sent 1 (job job-1)"
    assert lines[1].startswith("job job-1: succeeded; divergence 1.8 → 0.04, recall 100%")
    assert f"{BISCUIT_REPLY_NS}  divergence " in lines[2]
    assert "→" in lines[2] and lines[2].endswith("Your cat is named Biscuit.")
    # The progress: the training, then the re-scoring on the adapter, each ending once.
    assert "started: train 1 reply" in err and "succeeded: train 1 reply" in err
    assert "started: verify 1 reply on adapter ftreview-1" in err
    assert "succeeded: verify 1 reply" in err

    (entry,) = json.loads(ok(approved, "trained", "--json"))["trained"]
    assert entry["adapter"] == "ftreview-1" and entry["job_id"] == "job-1"
    assert entry["divergence_before"] > 0.5
    # Re-scored on what the Scorer serves (here the base model: the stub loads nothing).
    assert isinstance(entry["divergence_after"], float)
    assert "→" in ok(approved, "trained")

    (job,) = json.loads(ok(approved, "jobs", "--json"))["jobs"]
    expected: dict[str, Any] = {
        "id": "job-1", "state": "succeeded", "examples": 1, "epochs": 2,
        "adapter": "ftreview-1", "trained_divergence_before": 1.8,
        "trained_divergence_after": 0.04, "recall": 1.0, "generic_loglik_change": -0.03,
        "error": "", "destination": trainer.url,
        # A trainer that keeps no knowledge says nothing of it.
        "kind": None, "continued_from": "", "facts_checked": None, "facts_kept": None,
        "retention": [],
    }  # fmt: skip
    assert {k: job[k] for k in expected} == expected
    assert job["created_at_ns"] > 0 and job["created_at"].endswith("Z")
    assert job["ended_at_ns"] >= job["created_at_ns"]
    table = ok(approved, "jobs")
    assert "job-1" in table and "succeeded" in table and "recall 100%" in table


def test_a_failed_job_fails_the_send_with_its_reason(approved: Cli, trainer: StubTrainer) -> None:
    trainer.first_script = [{"state": "failed", "error": "the guard stopped it: recall 0/1"}]
    code, out, err = approved("send", "--json")
    assert code == 1
    sent = json.loads(out)
    assert sent["accepted"] == [BISCUIT_REPLY_NS] and sent["job_id"] == "job-1"
    (job,) = sent["jobs"]
    assert job["state"] == "failed" and "recall 0/1" in job["error"]
    # Nothing learnt: nothing in the ledger, the reply approved again with the reason.
    assert sent["trained"] == []
    assert sent["returned"] == [
        {
            "timestamp_ns": BISCUIT_REPLY_NS,
            "reason": "job job-1 failed: the guard stopped it: recall 0/1",
        }
    ]
    assert err.strip() == ("ftreview: training job job-1 failed: the guard stopped it: recall 0/1")
    listing = ok(approved, "candidates")
    assert "approved" in listing and "job job-1 failed: the guard stopped it" in listing


def test_a_reply_the_job_did_not_learn_is_approved_again_and_said(
    approved: Cli, trainer: StubTrainer
) -> None:
    why = 'not learnt: divergence 0.71, recall answer "I don\'t know."'
    trainer.first_script = [
        {**SUCCEEDED, "per_example": [
            {"idempotency_key": f"ftreview-reply-{BISCUIT_REPLY_NS}", "learnt": False,
             "reason": why},
        ]},
    ]  # fmt: skip
    code, out, err = approved("send")
    assert code == 1
    expected = f"  not learnt {BISCUIT_REPLY_NS}: job job-1 did not learn it: {why}"
    assert expected in out.splitlines()
    assert "1 reply was not learnt" in err
    assert json.loads(ok(approved, "trained", "--json"))["trained"] == []
    (candidate,) = json.loads(ok(approved, "candidates", "--json"))["candidates"]
    assert (candidate["status"], candidate["job_id"]) == ("approved", "")
    assert candidate["send_error"] == f"job job-1 did not learn it: {why}"


def test_send_no_wait_returns_after_the_send(approved: Cli, trainer: StubTrainer) -> None:
    # The job never ends: only --no-wait can return.
    code, out, err = approved("send", "--no-wait", "--json")
    assert code == 0, err
    sent = json.loads(out)
    assert sent["job_id"] == "job-1" and "jobs" not in sent
    # While the job runs the reply is in training, listed as such, not in the ledger.
    (candidate,) = json.loads(ok(approved, "candidates", "--json"))["candidates"]
    assert (candidate["status"], candidate["job_id"]) == ("sent", "job-1")
    assert "training · job-1" in ok(approved, "candidates")
    assert "1 in training; 0 trained" in ok(approved, "stats")
    assert json.loads(ok(approved, "trained", "--json"))["trained"] == []


def test_ask_an_empty_question_is_bad_usage(cli: Cli) -> None:
    code, out, err = cli("ask", "  ")
    assert (code, out) == (2, "") and "empty" in err and err.count("\n") == 1


def test_ask_answers_without_memories_and_names_the_model(cli: Cli, fixtures_dir: Path) -> None:
    answer = json.loads(ok(cli, "ask", "What is my cat's name?", "--max-tokens", "12", "--json"))
    assert answer["answer"].strip() and answer["adapter"] is None
    assert answer["conversation_id"] is None
    shown = ok(cli, "ask", "What is my cat's name?", "--max-tokens", "12")
    assert shown.splitlines()[-1] == "(answered without memories by the base model)"
    ok(cli, "score", "--quiet", str(fixtures_dir / "biscuit.json"))
    inside = json.loads(
        ok(cli, "ask", "What's my cat's name?", "--conversation", "biscuit", "--json",
           "--max-tokens", "12")
    )  # fmt: skip
    assert inside["conversation_id"] == "biscuit" and inside["answer"].strip()
