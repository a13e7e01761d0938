"""The job ledger on a real SQLite file: idempotency, recovery, what a job learns."""

from __future__ import annotations

from pathlib import Path

from trainer_service.examples import Example, HeldOut
from trainer_service.ledger import JobLedger


def _example(key: str) -> Example:
    return Example(key, [{"role": "user", "content": f"q {key}"}], f"a {key}", divergence=1.0)


def test_a_key_is_accepted_once_and_answered_with_its_job_after_a_reopen(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    job, owners = ledger.accept([_example("k1"), _example("k2")], [], {})
    assert job == "ft-1" and owners == {"k1": "ft-1", "k2": "ft-1"}
    ledger.close()
    reopened = JobLedger(tmp_path / "trainer.sqlite3")
    again, owners = reopened.accept([_example("k2"), _example("k3")], [], {})
    assert again == "ft-2" and owners == {"k2": "ft-1", "k3": "ft-2"}
    none, owners = reopened.accept([_example("k1")], [], {})
    assert none == "" and owners == {"k1": "ft-1"}
    assert [j["job_id"] for j in reopened.jobs()] == ["ft-2", "ft-1"]
    assert reopened.job("ft-2")["examples"] == 1  # type: ignore[index]


def test_a_running_job_is_queued_again_and_says_so(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    job, _ = ledger.accept([_example("k1")], [], {})
    ledger.start(job)
    assert ledger.job(job)["state"] == "running"  # type: ignore[index]
    assert ledger.recover() == [job]
    recovered = ledger.job(job)
    assert recovered is not None and recovered["state"] == "queued"
    assert "runs again from the start" in recovered["detail"]
    learn, _, run = ledger.start(job)
    assert [e.key for e in learn] == ["k1"] and run == 2
    assert "started again" in ledger.job(job)["detail"]  # type: ignore[index]


def test_failed_keys_are_learnt_by_the_next_job_and_promoted_ones_replayed(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    first, _ = ledger.accept([_example("k1")], [], {})
    ledger.start(first)
    ledger.finish(first, succeeded=False, detail="x", figures={}, trained_keys=[], error="guard")
    second, _ = ledger.accept(
        [_example("k2")], [HeldOut([{"role": "user", "content": "hi"}], "hello")], {}
    )
    learn, replay, _ = ledger.start(second)
    assert [e.key for e in learn] == ["k1", "k2"] and replay == []
    ledger.finish(
        second,
        succeeded=True,
        detail="ok",
        figures={"recall": 1.0},
        trained_keys=["k1", "k2"],
        adapter="v1",
    )
    assert ledger.trained_keys() == {"k1": "v1", "k2": "v1"}
    third, _ = ledger.accept([_example("k3")], [], {})
    learn, replay, _ = ledger.start(third)
    assert [e.key for e in learn] == ["k3"] and {e.key for e in replay} == {"k1", "k2"}
    assert ledger.held_out()[0].reply == "hello"
    assert ledger.job(second)["recall"] == 1.0  # type: ignore[index]
