"""The latest score of every reply, as GetStats lists it: what a pass keeps, and how the
list follows the stored conversation."""

from __future__ import annotations

from review_service.domain import latest_scores
from review_service.domain.model import (
    Candidate,
    LatestScore,
    Message,
    NotCandidateReason,
    ScoredReply,
    Status,
)

NONE = NotCandidateReason.NONE
BELOW = NotCandidateReason.BELOW_THRESHOLD
UNSET = NotCandidateReason.UNSET_TIMESTAMP
TRAINED = NotCandidateReason.ALREADY_TRAINED
TOO_LONG = NotCandidateReason.TOO_LONG
NOT_REQUESTED = NotCandidateReason.NOT_REQUESTED
T1, T2, T3 = 1_772_000_000_000_000_001, 1_772_000_000_000_000_002, 1_772_000_000_000_000_003


def _conversation() -> list[Message]:
    return [
        Message("system", "Memory: the cat is Biscuit.", 5, True, "nodes[0]"),
        Message("assistant", "A memory reply.", 6, True, "nodes[1]"),
        Message("user", "cat?", 0, False, "nodes[2]"),
        Message("assistant", "From an old log.", 0, False, "nodes[3]"),
        Message("assistant", "Biscuit.", T1, False, "nodes[4]"),
        Message("assistant", "Hello.", T2, False, "nodes[5]"),
        Message("assistant", "Sent already.", T3, False, "nodes[6]"),
    ]


def _reply(
    ns: int, reason: NotCandidateReason = NONE, *, scored: bool = True, path: str = ""
) -> ScoredReply:
    return ScoredReply(
        ns, f"reply {ns}", 0.25, 0.75, scored=scored, candidate=scored and reason == NONE,
        node_path=path, reason=reason,
    )  # fmt: skip


def _kept(
    ns: int, path: str, content: str, divergence: float, reason: NotCandidateReason
) -> LatestScore:
    return LatestScore(
        "c", ns, path, content, True, divergence, divergence * 2, reason == NONE, reason
    )


def test_a_pass_keeps_what_it_looked_at_and_leaves_the_rest_alone() -> None:
    kept = latest_scores.from_pass(
        "c",
        [
            _reply(T1),
            _reply(T2, BELOW),
            _reply(0, UNSET, path="nodes[3]"),
            _reply(T3, TOO_LONG, scored=False),
            _reply(T3 + 1, NOT_REQUESTED, scored=False),
            _reply(T3 + 2, TRAINED, scored=False),
        ],
        now_ns=9,
    )
    assert [(k.timestamp_ns, k.scored, k.reason, k.divergence) for k in kept] == [
        (T1, True, NONE, 0.25),
        (T2, True, BELOW, 0.25),
        (0, True, UNSET, 0.25),
        (T3, False, TOO_LONG, 0.0),
    ]
    assert kept[2].node_path == "nodes[3]" and all(k.scored_at_ns == 9 for k in kept)


def test_every_reply_is_listed_in_order_with_its_latest_score_or_why_not() -> None:
    kept = [
        _kept(T2, "nodes[5]", "Hello.", -0.1, BELOW),
        _kept(0, "nodes[3]", "From an old log.", 0.4, UNSET),
        _kept(T3, "nodes[6]", "Sent already.", 2.0, NONE),
    ]
    listed = latest_scores.in_conversation_order("c", _conversation(), kept, {T3}, {})
    assert [(s.content, s.node_path, s.scored, s.divergence, s.candidate, s.reason)
            for s in listed] == [
        ("From an old log.", "nodes[3]", True, 0.4, False, UNSET),
        # Scored before the Review kept scores, and no candidate to borrow them from.
        ("Biscuit.", "nodes[4]", False, 0.0, False, NOT_REQUESTED),
        ("Hello.", "nodes[5]", True, -0.1, False, BELOW),
        # Trained since: says so, and keeps the scores it had.
        ("Sent already.", "nodes[6]", True, 2.0, False, TRAINED),
    ]  # fmt: skip


def test_a_reply_without_a_kept_score_borrows_its_candidates() -> None:
    candidate = Candidate(T1, "c", "Biscuit.", (), 1.8, 4.2, status=Status.APPROVED)
    listed = latest_scores.in_conversation_order("c", _conversation(), [], set(), {T1: candidate})
    biscuit = next(s for s in listed if s.timestamp_ns == T1)
    assert (biscuit.scored, biscuit.divergence, biscuit.peak, biscuit.candidate) == (
        True, 1.8, 4.2, True,
    )  # fmt: skip
    unset = next(s for s in listed if s.timestamp_ns == 0)
    assert (unset.scored, unset.reason) == (False, UNSET)


def test_an_unset_timestamp_score_counts_only_for_the_same_content_at_that_path() -> None:
    stale = _kept(0, "nodes[3]", "Another reply that sat here.", 0.4, UNSET)
    listed = latest_scores.in_conversation_order("c", _conversation(), [stale], set(), {})
    assert (listed[0].content, listed[0].scored) == ("From an old log.", False)
