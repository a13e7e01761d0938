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
    started = ledger.start(job)
    assert [e.key for e in started.learn] == ["k1"] and started.run == 2
    assert "started again" in ledger.job(job)["detail"]  # type: ignore[index]


def test_a_job_learns_its_own_keys_and_replays_the_promoted_ones(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    first, _ = ledger.accept([_example("k1")], [], {})
    ledger.start(first)
    ledger.finish(first, succeeded=False, detail="x", figures={}, trained_keys=[], error="guard")
    second, _ = ledger.accept(
        [_example("k2"), _example("k3")],
        [HeldOut([{"role": "user", "content": "hi"}], "hello")],
        {},
    )
    started = ledger.start(second)
    # k1's job ended without learning it: it waits to be sent again, not swept in.
    assert [e.key for e in started.learn] == ["k2", "k3"] and started.live == []
    ledger.finish(
        second,
        succeeded=True,
        detail="ok",
        figures={"recall": 0.5},
        trained_keys=["k2"],  # partial: k3 was not learnt
        adapter="v1",
    )
    assert ledger.trained_keys() == {"k2": "v1"}
    third, _ = ledger.accept([_example("k4")], [], {})
    started = ledger.start(third)
    assert [e.key for e in started.learn] == ["k4"] and [k.key for k in started.live] == ["k2"]
    assert ledger.held_out()[0].reply == "hello"
    assert ledger.job(second)["recall"] == 0.5  # type: ignore[index]


def test_a_key_returned_unlearnt_goes_into_the_job_that_sends_it_again(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    first, _ = ledger.accept([_example("k1"), _example("k2")], [], {})
    ledger.start(first)
    ledger.finish(first, succeeded=True, detail="ok", figures={}, trained_keys=["k1"], adapter="v1")
    # Sent again: the learnt key keeps its job, the returned one gets a new job.
    second, owners = ledger.accept([_example("k1"), _example("k2")], [], {})
    assert second and second != first
    assert owners == {"k1": first, "k2": second}
    started = ledger.start(second)
    assert [e.key for e in started.learn] == ["k2"] and [k.key for k in started.live] == ["k1"]
    # While that job is queued or running, the key is answered with it and starts nothing.
    assert ledger.accept([_example("k2")], [], {}) == ("", {"k2": second})
    ledger.finish(second, succeeded=False, detail="x", figures={}, trained_keys=[], error="no")
    third, owners = JobLedger(tmp_path / "trainer.sqlite3").accept([_example("k2")], [], {})
    assert third not in ("", first, second) and owners == {"k2": third}


def test_a_jobs_guard_figures_are_kept_also_in_a_file_of_an_earlier_version(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "trainer.sqlite3"
    JobLedger(path).close()
    with sqlite3.connect(path) as db:  # the jobs table as the first version wrote it
        db.execute("ALTER TABLE jobs DROP COLUMN learnt")
        db.execute("ALTER TABLE jobs DROP COLUMN drift")
        db.execute("ALTER TABLE jobs DROP COLUMN general_retention")
    ledger = JobLedger(path)
    job, _ = ledger.accept([_example("k1"), _example("k2")], [], {})
    ledger.start(job)
    figures = {"learnt": 1, "drift": 0.04, "general_retention": 0.96, "per_example": []}
    ledger.finish(
        job, succeeded=True, detail="ok", figures=figures, trained_keys=["k1"], adapter="v1"
    )
    shown = JobLedger(path).job(job)
    assert shown is not None
    assert (shown["learnt"], shown["drift"], shown["general_retention"]) == (1, 0.04, 0.96)
