"""Additive sync and decision rules, on plain values."""

from __future__ import annotations

from review_service.domain import sync
from review_service.domain.model import Candidate, ScoredReply, Status


def reply(ts: int, divergence: float = 1.0, candidate: bool = True) -> ScoredReply:
    return ScoredReply(ts, f"reply {ts}", divergence, divergence, scored=True, candidate=candidate)


def known(ts: int, status: Status = Status.PENDING, decided: int = 0) -> Candidate:
    return Candidate(ts, "c", f"reply {ts}", (), 1.0, 1.0, status=status, decided_at_ns=decided)


def test_new_candidates_arrive_pending_and_known_ones_keep_their_status() -> None:
    existing = {1: known(1, Status.APPROVED)}
    outcome = sync.merge_scores(existing, set(), "c", [reply(1, 2.0), reply(2)], {}, now_ns=5)
    assert [c.timestamp_ns for c in outcome.added] == [2]
    assert outcome.added[0].status == Status.PENDING
    (updated,) = outcome.updated
    assert (updated.status, updated.divergence) == (Status.APPROVED, 2.0)


def test_a_known_candidate_below_the_threshold_now_is_refreshed_not_dropped() -> None:
    outcome = sync.merge_scores({1: known(1)}, set(), "c", [reply(1, 1e-9, candidate=False)], {}, 5)
    assert outcome.added == []
    assert outcome.updated[0].divergence == 1e-9


def test_trained_unset_unscored_and_forgotten_replies_never_become_candidates() -> None:
    unscored = ScoredReply(4, "r", 0.0, 0.0, scored=False, candidate=False)
    outcome = sync.merge_scores(
        {3: known(3, Status.FORGOTTEN)}, {1}, "c", [reply(1), reply(0), reply(3), unscored], {}, 5
    )
    assert outcome.added == [] and outcome.updated == []


def test_approve_and_reject_are_idempotent_and_reversible() -> None:
    candidate = known(1)
    approved = sync.approve(candidate, 10)
    assert sync.approve(approved, 20) is approved
    rejected = sync.reject(approved, "wrong", 30)
    assert (rejected.status, rejected.reject_reason, rejected.decided_at_ns) == (
        Status.REJECTED, "wrong", 30,
    )  # fmt: skip
    assert sync.reject(rejected, "", 40) is rejected
    cleared = sync.clear_decision(rejected)
    assert (cleared.status, cleared.decided_at_ns, cleared.reject_reason) == (Status.PENDING, 0, "")


def test_only_the_ten_most_recently_rejected_are_kept() -> None:
    rejected = [known(ts, Status.REJECTED, decided=100 + ts) for ts in range(1, 13)]
    forgotten = sync.rejected_overflow([*rejected, known(50, Status.APPROVED)])
    assert sorted(c.timestamp_ns for c in forgotten) == [1, 2]
    assert {c.status for c in forgotten} == {Status.FORGOTTEN}
