"""Knowledge that lasts, without a model: retraction and knowledge state in a real SQLite
ledger, the plan a job starts with (replay and retention samples), the consolidation rule,
and the retract body's contract."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from trainer_service.body import decode_retract
from trainer_service.contract import MAX_KEY_CHARS, MAX_RETRACT, ContractError, parse_retract
from trainer_service.examples import Example
from trainer_service.lasting import (
    CONSOLIDATE,
    CONSOLIDATION_CHECK,
    LEARN,
    REPAIR_SHARE,
    REPLAY_SAMPLE,
    RETENTION_SAMPLE,
    Checked,
    Known,
    consolidation_problem,
    drift_reason,
    facts_figures,
    lost_indices,
    lost_summary,
    plan_job,
    sample,
)
from trainer_service.ledger import JobLedger


def _example(key: str) -> Example:
    return Example(key, [{"role": "user", "content": f"q {key}"}], f"a {key}", divergence=1.0)


def _learnt(ledger: JobLedger, keys: list[str], adapter: str, fact: str = "x") -> str:
    """A job that learnt `keys` into `adapter`, continuing from whatever the plan says."""
    job, _ = ledger.accept([_example(k) for k in keys], [], {})
    started = ledger.start(job)
    exists = started.served is not None
    plan = plan_job(started, exists, True)
    ledger.planned(job, plan.kind, plan.continued_from, len(plan.examples))
    per_example = [{"idempotency_key": k, "fact": [fact, k]} for k in keys]
    ledger.finish(
        job,
        succeeded=True,
        detail="ok",
        figures={"per_example": per_example},
        trained_keys=keys,
        adapter=adapter,
        adapter_path=f"/adapters/{adapter}",
    )
    return job


def _learn_k3_into_v2(ledger: JobLedger, checks: dict[str, bool]) -> tuple[str, Any]:
    """A learn job on "k3" that promoted v2, its retention check finding `checks`."""
    job, _ = ledger.accept([_example("k3")], [], {})
    plan = plan_job(ledger.start(job), True, True)
    ledger.planned(job, plan.kind, plan.continued_from, len(plan.examples))
    ledger.finish(
        job,
        succeeded=True,
        detail="ok",
        figures={"per_example": [{"idempotency_key": "k3", "fact": ["f"]}]},
        trained_keys=["k3"],
        adapter="v2",
        checks=checks,
    )
    return job, plan


def _state(path: Path, key: str) -> dict[str, Any]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM examples WHERE key = ?", (key,)).fetchone()
    return dict(row)


def test_a_retracted_key_is_never_learnt_again_and_retracting_it_again_answers_the_same(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trainer.sqlite3"
    ledger = JobLedger(path)
    first = _learnt(ledger, ["k1", "k2"], "v1")
    answer = ledger.retract([("k1", "superseded by k9"), ("nope", "never sent")])
    assert answer["retracted"] == ["k1"] and answer["unknown"] == ["nope"]
    consolidation = answer["job_id"]
    job = ledger.job(consolidation)
    assert job is not None and job["kind"] == CONSOLIDATE and job["state"] == "queued"
    state = _state(path, "k1")
    assert (state["state"], state["reason"]) == ("retracted", "superseded by k9")
    ledger.close()
    # Again, after a restart, with another reason: the same answer, the first reason kept.
    reopened = JobLedger(path)
    assert reopened.retract([("k1", "again")]) == {
        "retracted": ["k1"],
        "unknown": [],
        "job_id": consolidation,
    }
    assert _state(path, "k1")["reason"] == "superseded by k9"
    # Sent again, it is answered with its job and starts nothing.
    assert reopened.accept([_example("k1")], [], {}) == ("", {"k1": first})
    # Never replayed or checked as live: the consolidation rebuilds on k2 and checks k1 as
    # retracted.
    started = reopened.start(consolidation)
    assert [k.key for k in started.live] == ["k2"]
    assert [k.key for k in started.retracted_served] == ["k1"]
    plan = plan_job(started, True, True)
    assert plan.kind == CONSOLIDATE and plan.continue_from is None
    assert plan.served == ("v1", "/adapters/v1")
    assert [e.key for e in plan.examples] == ["k2"]
    assert [(k.key, k.retracted, k.fact) for k in plan.checks] == [
        ("k2", False, ("x", "k2")),
        ("k1", True, ("x", "k1")),
    ]


def test_a_consolidation_is_queued_once_and_only_for_keys_the_served_adapter_holds(
    tmp_path: Path,
) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    _learnt(ledger, ["k1", "k2", "k3"], "v1")
    one = ledger.retract([("k1", "r")])["job_id"]
    two = ledger.retract([("k2", "r")])["job_id"]
    assert one and one == two
    assert [j["kind"] for j in ledger.jobs()].count(CONSOLIDATE) == 1
    # A key in no adapter (its job still queued) needs no consolidation.
    ledger.accept([_example("k4"), _example("k5")], [], {})
    assert ledger.retract([("k4", "r")])["job_id"] == ""


def test_a_retracted_key_leaves_its_queued_job_and_an_emptied_job_fails_saying_why(
    tmp_path: Path,
) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    job, _ = ledger.accept([_example("k1"), _example("k2")], [], {})
    assert ledger.retract([("k1", "wrong")]) == {
        "retracted": ["k1"],
        "unknown": [],
        "job_id": "",
    }
    shown = ledger.job(job)
    assert shown is not None and shown["state"] == "queued" and shown["examples"] == 1
    ledger.retract([("k2", "wrong too")])
    shown = ledger.job(job)
    assert shown is not None and shown["state"] == "failed" and shown["examples"] == 0
    assert "every key was retracted before the job ran" in shown["detail"]
    assert ledger.next_queued() is None


def test_a_learn_job_continues_from_the_served_adapter_and_records_it(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    first = _learnt(ledger, ["k1"], "v1")
    second = _learnt(ledger, ["k2"], "v2")
    one, two = ledger.job(first), ledger.job(second)
    assert one is not None and two is not None
    assert (one["kind"], one["continued_from"]) == (LEARN, "")
    assert (two["kind"], two["continued_from"]) == (LEARN, "v1")
    # v2 continued from v1: retracting a key v1 learnt still needs a consolidation.
    assert ledger.retract([("k1", "r")])["job_id"]
    job, _ = ledger.accept([_example("k3")], [], {})
    ledger.finish(  # (the consolidation ran and failed; the served adapter still holds k1)
        ledger.jobs()[1]["job_id"], succeeded=False, detail="x", figures={}, trained_keys=[]
    )
    started = ledger.start(job)
    # A refused consolidation does not make every later job a rebuild: the next learn job
    # continues from v2, replays k2 and checks whether the retracted k1 still comes back.
    plan = plan_job(started, True, True)
    assert (plan.kind, plan.continued_from) == (LEARN, "v2")
    assert [e.key for e in plan.examples] == ["k3"] and [e.key for e in plan.replay] == ["k2"]
    assert [(k.key, k.retracted) for k in plan.checks] == [("k2", False), ("k1", True)]
    # The served adapter's folder gone: the job rebuilds from the base model.
    plan = plan_job(started, False, True)
    assert plan.kind == CONSOLIDATE and [e.key for e in plan.examples] == ["k3", "k2"]


@pytest.mark.parametrize("old_comes_back", [True, False])
def test_after_a_refused_consolidation_a_learn_job_queues_another_while_the_old_comes_back(
    tmp_path: Path, old_comes_back: bool
) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    _learnt(ledger, ["k1", "k2"], "v1")
    refused = ledger.retract([("k1", "superseded by k3")])["job_id"]
    ledger.start(refused)
    ledger.finish(refused, succeeded=False, detail="refused", figures={}, trained_keys=[])
    job, plan = _learn_k3_into_v2(ledger, {"k1": old_comes_back, "k2": True})
    assert (plan.kind, plan.continued_from) == (LEARN, "v1")
    # v2 continued from v1 and still holds k1: a rebuild is due only while k1 comes back.
    queued = ledger.next_queued()
    shown = ledger.job(job)
    assert shown is not None
    if old_comes_back:
        assert queued is not None and queued != refused and shown["queued_next"] == queued
        assert (ledger.job(queued) or {})["kind"] == CONSOLIDATE
    else:
        assert queued is None and shown["queued_next"] == ""
    # A fresh retraction always queues one, whatever was checked before.
    assert ledger.retract([("k2", "forgotten")])["job_id"]


def test_a_consolidation_keeps_every_live_key_it_trained_and_stores_what_it_checked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trainer.sqlite3"
    ledger = JobLedger(path)
    _learnt(ledger, ["k1", "k2", "k3"], "v1")
    job = ledger.retract([("k1", "r")])["job_id"]
    started = ledger.start(job)
    plan = plan_job(started, True, True)
    ledger.planned(job, plan.kind, plan.continued_from, len(plan.examples))
    per_example = [{"idempotency_key": k, "fact": ["f"]} for k in ("k2", "k3")]
    ledger.finish(
        job,
        succeeded=True,
        detail="ok",
        figures={"per_example": per_example, "facts_checked": 2, "facts_kept": 1},
        trained_keys=["k2"],
        adapter="v2",
        checks={"k1": False, "k2": True, "k3": False},
    )
    # k3 was trained and not learnt: still in v2 (and replayed later), said not to come back.
    assert ledger.trained_keys() == {"k2": "v2", "k3": "v2"}
    assert (_state(path, "k1")["comes_back"], _state(path, "k1")["checked_job"]) == (0, job)
    assert (_state(path, "k3")["comes_back"], _state(path, "k3")["adapter"]) == (0, "v2")
    shown = ledger.job(job)
    assert shown is not None and (shown["facts_checked"], shown["facts_kept"]) == (2, 1)
    # The served adapter (v2, from the base model) no longer holds k1: nothing queued.
    assert ledger.retract([("k1", "r")])["job_id"] == job
    assert ledger.next_queued() is None


def test_the_replay_takes_the_keys_last_checked_missing_first_up_to_its_share() -> None:
    from trainer_service.lasting import Started

    def plan(live: list[Known]) -> list[str]:
        started = Started("ft-9", LEARN, 1, [_example("new")], live, [], ("v", "/v"))
        return [e.key for e in plan_job(started, True, True).replay]

    plain = _known(80)
    # With no key missing the draw is the plain one of the job's seed (its number, 9).
    assert plan(plain) == [k.key for k in sample(plain, REPLAY_SAMPLE, 9)]
    three = [Known(k.example, k.fact, missing=k.key in {"k5", "k17", "k33"}) for k in plain]
    chosen = plan(three)
    assert {"k5", "k17", "k33"} <= set(chosen) and len(chosen) == REPLAY_SAMPLE
    assert chosen == sorted(chosen, key=lambda key: int(key[1:]))  # acceptance order
    # Many missing: they take at most their share, the rest is rehearsal of the others.
    most = [Known(k.example, k.fact, missing=int(k.key[1:]) < 30) for k in plain]
    taken = plan(most)
    missing_taken = [key for key in taken if int(key[1:]) < 30]
    assert len(taken) == REPLAY_SAMPLE
    assert len(missing_taken) == int(REPAIR_SHARE * REPLAY_SAMPLE)


def test_the_ledger_marks_a_live_key_missing_once_a_check_found_it_not_coming_back(
    tmp_path: Path,
) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    _learnt(ledger, ["k1", "k2"], "v1")
    _, plan = _learn_k3_into_v2(ledger, {"k1": True, "k2": False})
    assert [(k.key, k.missing) for k in plan.checks] == [("k1", False), ("k2", False)]
    job, _ = ledger.accept([_example("k4")], [], {})
    live = ledger.start(job).live
    assert [(k.key, k.missing) for k in live] == [("k1", False), ("k2", True), ("k3", False)]


def test_the_lost_keys_are_named_by_their_fact_words() -> None:
    before = [True, True, False, True, True]
    now = [False, True, False, False, False]
    retracted = [False, False, False, False, True]
    assert lost_indices(before, now, retracted) == [0, 3]
    assert lost_summary([]) == ""
    assert lost_summary([("Haldorsen",), ("23", "June")]) == 'lost "Haldorsen", "23 June"'
    five = [(str(i),) for i in range(5)]
    assert lost_summary(five) == 'lost "0", "1", "2" and 2 more'
    marked = lost_summary(five, [False, True, False, True, True])
    assert marked == 'lost "0", "1" (replayed), "2" and 2 more'


def test_older_ledger_files_get_the_knowledge_columns(tmp_path: Path) -> None:
    path = tmp_path / "trainer.sqlite3"
    JobLedger(path).close()
    with sqlite3.connect(path) as db:  # the tables as the version before wrote them
        for table, column in (
            ("jobs", "kind"),
            ("jobs", "continued_from"),
            ("jobs", "facts_checked"),
            ("jobs", "facts_kept"),
            ("jobs", "retention"),
            ("examples", "state"),
            ("examples", "reason"),
            ("examples", "fact"),
            ("examples", "comes_back"),
            ("examples", "checked_job"),
            ("examples", "retract_job"),
        ):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute(
            "INSERT INTO jobs (job_id, state, created_at, adapter, adapter_path) "
            "VALUES ('ft-1', 'succeeded', 'then', 'v1', '/a/v1')"
        )
        db.execute(
            "INSERT INTO examples (key, job_id, payload, adapter) VALUES ('old', 'ft-1', ?, 'v1')",
            ('{"key": "old", "context": [], "reply": "r"}',),
        )
    ledger = JobLedger(path)
    job = ledger.job("ft-1")
    assert job is not None and (job["kind"], job["continued_from"], job["retention"]) == (
        LEARN,
        "",
        [],
    )
    job_id, _ = ledger.accept([_example("new")], [], {})
    started = ledger.start(job_id)
    # An old key is live, with no stored fact words (the job reads them off the base model).
    assert [(k.key, k.fact, k.retracted) for k in started.live] == [("old", None, False)]
    assert ledger.retract([("old", "r")])["job_id"]


def _known(n: int) -> list[Known]:
    return [Known(_example(f"k{i}"), ("f",)) for i in range(n)]


def test_the_replay_sample_is_bounded_and_the_same_for_the_same_job() -> None:
    from trainer_service.lasting import Started

    live = _known(200)
    started = Started("ft-7", LEARN, 1, [_example("new")], live, [], ("v3", "/a/v3"))
    plan = plan_job(started, True, True)
    again = plan_job(
        Started("ft-7", LEARN, 2, [_example("new")], live, [], ("v3", "/a/v3")), True, True
    )
    other = plan_job(
        Started("ft-8", LEARN, 1, [_example("new")], live, [], ("v3", "/a/v3")), True, True
    )
    assert plan.kind == LEARN and plan.continue_from == ("v3", "/a/v3")
    assert len(plan.replay) == REPLAY_SAMPLE and len(plan.checks) == RETENTION_SAMPLE
    assert [e.key for e in plan.replay] == [e.key for e in again.replay]
    assert [k.key for k in plan.checks] == [k.key for k in again.checks]
    assert [e.key for e in plan.replay] != [e.key for e in other.replay]
    # Rows do not grow with history: the job's own keys plus the sample, at 200 keys as at 40.
    small = plan_job(
        Started("ft-7", LEARN, 1, [_example("new")], _known(40), [], ("v", "/v")), True, True
    )
    assert len(small.replay) == REPLAY_SAMPLE and len(small.checks) == RETENTION_SAMPLE
    # Fewer earlier keys than the sample: every one is replayed and checked.
    few = plan_job(
        Started("ft-7", LEARN, 1, [_example("new")], _known(20), [], ("v", "/v")), True, True
    )
    assert len(few.replay) == 20 and len(few.checks) == 20


def test_the_settings_replay_count_sizes_the_sample() -> None:
    from trainer_service.lasting import Started
    from trainer_service.settings import DEFAULTS

    assert DEFAULTS.replay == REPLAY_SAMPLE
    started = Started("ft-7", LEARN, 1, [_example("new")], _known(40), [], ("v3", "/a/v3"))
    assert len(plan_job(started, True, True, 32).replay) == 32
    assert len(plan_job(started, True, True, 4).replay) == 4
    # Every earlier fact when there are fewer than the count, the job's own never.
    fewer = Started("ft-7", LEARN, 1, [_example("k3")], _known(20), [], ("v3", "/a/v3"))
    assert [e.key for e in plan_job(fewer, True, True, 32).replay] == [
        f"k{i}" for i in range(20) if i != 3
    ]


def test_the_retention_sample_size_rule() -> None:
    from trainer_service.lasting import Started

    few = _known(10)
    own = few[0].example
    plan = plan_job(Started("ft-2", LEARN, 1, [own], few, [], ("v1", "/v1")), True, True)
    # All when fewer than the sample, never the job's own keys.
    assert [k.key for k in plan.checks] == [f"k{i}" for i in range(1, 10)]
    many = _known(100)
    retracted = [Known(_example("gone"), ("g",), retracted=True)]
    # A learn job on an adapter that holds a retracted key: the live sample, plus the
    # retracted keys (up to the same sample size).
    learn = plan_job(Started("ft-3", LEARN, 1, [own], many, retracted, ("v1", "/v1")), True, True)
    assert learn.kind == LEARN and learn.continue_from == ("v1", "/v1")
    assert len(learn.checks) == RETENTION_SAMPLE + 1 and learn.checks[-1].retracted
    gone = [Known(_example(f"gone{i}"), ("g",), retracted=True) for i in range(50)]
    learn = plan_job(Started("ft-3", LEARN, 1, [own], many, gone, ("v1", "/v1")), True, True)
    assert sum(k.retracted for k in learn.checks) == RETENTION_SAMPLE
    rebuild = plan_job(
        Started("ft-4", CONSOLIDATE, 1, [], many, retracted, ("v1", "/v1")), True, True
    )
    assert rebuild.kind == CONSOLIDATE and rebuild.continue_from is None
    assert len(rebuild.checks) == CONSOLIDATION_CHECK + 1 and rebuild.checks[-1].retracted
    assert len(rebuild.examples) == 100
    consolidate = plan_job(
        Started("ft-4", CONSOLIDATE, 1, [], few, retracted, ("v1", "/v1")), True, True
    )
    assert len(consolidate.checks) == 11
    # The first job: the base model, nothing to replay or check.
    first = plan_job(Started("ft-1", LEARN, 1, [own], [], [], None), False, True)
    assert (first.kind, first.continue_from, first.replay, first.checks) == (LEARN, None, [], [])
    # A served adapter whose folder is gone, or a method that cannot continue: rebuild.
    assert (
        plan_job(Started("ft-5", LEARN, 1, [own], few, [], ("v1", "/v1")), False, True).kind
        == CONSOLIDATE
    )
    assert (
        plan_job(Started("ft-5", LEARN, 1, [own], few, [], ("v1", "/v1")), True, False).kind
        == CONSOLIDATE
    )


def _checked(
    key: str, before: bool, now: bool, retracted: bool = False, base: bool = False
) -> Checked:
    return Checked(Known(_example(key), ("f",), retracted), ("f",), before, now, "a", base)


def test_the_consolidation_rule() -> None:
    kept = [_checked("a", True, True), _checked("b", False, True), _checked("r", True, False, True)]
    assert consolidation_problem(kept, (70, 76), (69, 76)) == ""
    assert facts_figures(kept) == (1, 1)
    assert "general 68/76" in consolidation_problem(kept, (70, 76), (68, 76))
    back = [*kept, _checked("r2", True, True, retracted=True)]
    assert "retracted keys still come back: r2" in consolidation_problem(back, None, None)
    # ...unless the base model already said it cold.
    known = [*kept, _checked("r2", True, True, retracted=True, base=True)]
    assert consolidation_problem(known, None, None) == ""
    fewer = [_checked("a", True, False), _checked("b", True, True)]
    assert "1 of 2 checked live keys come back, the served adapter 2" in consolidation_problem(
        fewer, None, None
    )


def _retract(body: Any) -> list[tuple[str, str]]:
    return parse_retract(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the body must be a JSON object, got list"),
        ({}, "retract: missing"),
        ({"retract": []}, "retract: expected a non-empty list"),
        ({"retract": "k1"}, "retract: expected a non-empty list"),
        ({"retract": [1]}, "retract[0]: expected an object, got int"),
        ({"retract": [{"reason": "r"}]}, "retract[0].idempotency_key: expected a non-empty string"),
        (
            {"retract": [{"idempotency_key": " ", "reason": "r"}]},
            "retract[0].idempotency_key: expected a non-empty string",
        ),
        ({"retract": [{"idempotency_key": "k"}]}, "retract[0].reason: expected a string"),
        (
            {"retract": [{"idempotency_key": "k", "reason": 3}]},
            "retract[0].reason: expected a string",
        ),
        (
            {
                "retract": [
                    {"idempotency_key": "k", "reason": ""},
                    {"idempotency_key": "k", "reason": ""},
                ]
            },
            "retract[1].idempotency_key: 'k' is also retract[0]",
        ),
        (
            {"retract": [{"idempotency_key": "k" * (MAX_KEY_CHARS + 1), "reason": ""}]},
            f"retract[0].idempotency_key: {MAX_KEY_CHARS + 1} characters, at most {MAX_KEY_CHARS}",
        ),
        (
            {"retract": [{"idempotency_key": "k", "reason": "r" * 4097}]},
            "retract[0].reason: 4097 characters, at most 4096",
        ),
        (
            {
                "retract": [
                    {"idempotency_key": f"k{i}", "reason": ""} for i in range(MAX_RETRACT + 1)
                ]
            },
            f"retract: {MAX_RETRACT + 1} keys, at most {MAX_RETRACT} a request",
        ),
    ],
)
def test_a_bad_retract_body_is_refused_naming_the_field(body: Any, message: str) -> None:
    with pytest.raises(ContractError) as refused:
        _retract(body)
    assert str(refused.value) == message


def test_a_good_retract_body_parses_and_bad_json_is_a_400() -> None:
    body = {"retract": [{"idempotency_key": "k1", "reason": "superseded by k2"}]}
    assert _retract(body) == [("k1", "superseded by k2")]
    refused = decode_retract(b'{"retract": [{"idempotency_key": "k", "reason": NaN}]}')
    assert not isinstance(refused, list) and refused.status == 400
    assert "NaN is not a JSON number" in refused.message


def test_max_lost_facts_is_a_per_request_setting_within_bounds() -> None:
    from trainer_service.contract import parse_request
    from trainer_service.settings import DEFAULTS
    from trainer_service.worker import settings_for

    example = {
        "idempotency_key": "k",
        "divergence": 1.0,
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "weight": 1},
        ],
    }
    parsed = parse_request({"examples": [example], "settings": {"max_lost_facts": 2}})
    assert parsed.settings == {"max_lost_facts": 2}
    assert settings_for(DEFAULTS, parsed.settings).guard.max_lost_facts == 2
    assert DEFAULTS.guard.max_lost_facts == 0
    # A request's settings change only what they name: the trainer's own stay.
    guard = replace(DEFAULTS.guard, back_off_on_lost_facts=False)
    held = replace(DEFAULTS, replay=32, guard=guard)
    job = settings_for(held, parsed.settings)
    assert job.replay == 32 and not job.guard.back_off_on_lost_facts
    with pytest.raises(ContractError, match=r"settings\.max_lost_facts: must be at least 0"):
        parse_request({"examples": [example], "settings": {"max_lost_facts": -1}})
    with pytest.raises(ContractError, match=r"settings\.max_lost_facts: expected a whole number"):
        parse_request({"examples": [example], "settings": {"max_lost_facts": 0.5}})


def test_drift_calls_for_a_consolidation_only_when_a_continued_adapter_was_far_from_base() -> None:
    assert drift_reason(LEARN, 0.099, 0.1) == ""
    assert drift_reason(LEARN, 0.12, 0.1) == (
        "the adapter it continued was 0.120 from the base model, at least 1× max_drift 0.1"
    )
    # A job from the base model (nothing continued) and a consolidation never queue one.
    assert drift_reason(LEARN, None, 0.1) == ""
    assert drift_reason(CONSOLIDATE, 0.5, 0.1) == ""


def test_a_learn_job_that_drifted_queues_one_consolidation_with_its_reason(
    tmp_path: Path,
) -> None:
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    _learnt(ledger, ["k1"], "v1")
    job, _ = ledger.accept([_example("k2")], [], {})
    started = ledger.start(job)
    plan = plan_job(started, True, True)
    assert plan.kind == LEARN
    ledger.planned(job, plan.kind, plan.continued_from, len(plan.examples))
    why = drift_reason(plan.kind, 0.15, 0.1)
    ledger.finish(
        job, succeeded=True, detail="ok", figures={}, trained_keys=["k2"], adapter="v2",
        adapter_path="/adapters/v2", consolidate_because=why,
    )  # fmt: skip
    queued = ledger.next_queued()
    assert queued is not None and queued != job
    shown = ledger.job(queued)
    assert shown is not None and shown["kind"] == CONSOLIDATE
    assert shown["detail"] == f"queued: rebuild the adapter from the base model ({why})"
    assert ledger.settings(queued) == {"why": why}
    # The job that queued it names it, so the Review follows it too.
    ended = ledger.job(job)
    assert ended is not None and ended["queued_next"] == queued
    # Its plan rebuilds from the base model on every live key, with nothing retracted.
    started = ledger.start(queued)
    plan = plan_job(started, True, True)
    assert (plan.kind, plan.continued_from) == (CONSOLIDATE, "")
    assert sorted(e.key for e in plan.examples) == ["k1", "k2"]


def test_a_learn_job_checks_every_fact_it_replays_then_fills_its_check_from_the_rest() -> None:
    from trainer_service.lasting import Started

    live = _known(38)
    started = Started("ft-10", LEARN, 1, [_example("new")], live, [], ("v9", "/v9"))
    plan = plan_job(started, True, True)
    replayed = [e.key for e in plan.replay]
    # Replay as large as the check: the check asks exactly what the job trains.
    assert [k.key for k in plan.checks] == replayed and len(replayed) == RETENTION_SAMPLE
    # A smaller replay: all of it checked, and others drawn up to the check's size.
    small = plan_job(started, True, True, 8)
    small_replayed = {e.key for e in small.replay}
    checked = [k.key for k in small.checks]
    assert len(checked) == RETENTION_SAMPLE and small_replayed <= set(checked)
    assert checked == sorted(checked, key=lambda key: int(key[1:])), "in acceptance order"
    # A larger one: every replayed fact checked, however many.
    large = plan_job(started, True, True, 36)
    assert [k.key for k in large.checks] == [e.key for e in large.replay]
    assert len(large.checks) == 36
