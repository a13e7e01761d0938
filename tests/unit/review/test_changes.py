"""The change rule's API (review_service/domain/changes.py): which fact a reply supersedes,
which undecided candidates it conflicts with, which trained fact a later memory changes.
The rule's quality on labelled cases is test_changes_cases.py."""

from __future__ import annotations

from review_service.domain.changes import (
    Change,
    conflicts,
    memory_changed,
    subject_keys,
    superseded_fact,
)
from review_service.domain.model import Candidate, MemoryAttribution, Status

DENTIST_18 = "User's dentist appointment is on 18 March at 14:30."
DENTIST_20 = "User moved the dentist appointment to 20 March."
DENTIST_22 = "User's dentist appointment is on 22 March."


def reply(ts: int, content: str, *memories: str, status: Status = Status.PENDING) -> Candidate:
    return Candidate(
        ts, f"conv-{ts}", content, (), 1.5, 3.0, status=status,
        memories=tuple(
            MemoryAttribution(f"nodes[1].children[{i}]", m, 2.0 - i) for i, m in enumerate(memories)
        ),
    )  # fmt: skip


def test_a_change_line_gives_the_old_value_first() -> None:
    assert Change(5, "18 March 14:30", "20 March").line == "18 March 14:30 -> 20 March"


def test_a_reply_supersedes_the_newest_live_fact_about_its_subject() -> None:
    old = reply(100, "It's on March 18th at 2:30 pm.", DENTIST_18)
    newer = reply(200, "It's on 22 March.", DENTIST_22)
    cat = reply(300, "Your cat is Biscuit.", "The user's cat is Biscuit.")
    mine = reply(400, "It's on 20 March now.", DENTIST_20)
    found = superseded_fact(mine, [old, newer, cat])
    assert found == Change(200, "22 March", "20 March")
    assert superseded_fact(mine, [old]) == Change(100, "18 March 14:30", "20 March")


def test_the_same_value_the_reply_itself_and_a_reply_without_values_supersede_nothing() -> None:
    fact = reply(100, "It's on 20 March.", DENTIST_20)
    assert superseded_fact(reply(200, "Yes, 20 March.", DENTIST_20), [fact]) is None
    assert superseded_fact(fact, [fact]) is None
    assert superseded_fact(reply(300, "Noted!", DENTIST_18), [fact]) is None


def test_the_memory_leaned_on_most_is_the_reply_s_fact() -> None:
    """The reply states the dentist date of its top memory; a second memory about the cat
    is not what it is about."""
    fact = reply(100, "Your cat is Biscuit.", "The user's cat is Biscuit.")
    mine = reply(200, "It's on 20 March.", DENTIST_20, "The user's cat is Mimi.")
    assert superseded_fact(mine, [fact]) is None


def test_conflicts_are_the_undecided_candidates_oldest_first_older_value_first() -> None:
    mine = reply(300, "It's on 20 March now.", DENTIST_20)
    others = [
        reply(400, "It's on 22 March.", DENTIST_22, status=Status.APPROVED),
        reply(100, "It's on March 18th at 2:30 pm.", DENTIST_18),
        reply(150, "It's on 22 March.", DENTIST_22, status=Status.REJECTED),
        reply(160, "It's on 22 March.", DENTIST_22, status=Status.SENT),
        reply(170, "Your cat is Biscuit.", "The user's cat is Biscuit."),
        mine,
    ]
    assert conflicts(mine, others) == [
        Change(100, "18 March 14:30", "20 March"),
        Change(400, "20 March", "22 March"),
    ]


def test_a_later_memory_that_says_otherwise_changes_a_trained_fact() -> None:
    fact = reply(100, "It's on March 18th at 2:30 pm.", DENTIST_18)
    later = [
        MemoryAttribution("nodes[1].children[0]", "User lives in Leeds.", 0.0),
        MemoryAttribution("nodes[1].children[1]", DENTIST_20, 0.0),
    ]
    assert memory_changed(fact, later) == Change(100, "18 March 14:30", "20 March")
    same = [MemoryAttribution("m", "Dentist appointment on 18 March at 14:30.", 0.0)]
    assert memory_changed(fact, same) is None
    assert memory_changed(fact, []) is None


def test_subject_keys_are_shared_by_replies_about_one_subject() -> None:
    a = reply(1, "It's on March 18th.", DENTIST_18)
    b = reply(2, "It's on 20 March.", "The user's appointment with the dentist is on 20 March.")
    c = reply(3, "Your cat is Biscuit.", "The user's cat is Biscuit.")
    (a_keys,), (b_keys,), (c_keys,) = subject_keys(a), subject_keys(b), subject_keys(c)
    assert a_keys == b_keys == {"dent", "appo"}
    assert not a_keys & c_keys
    assert subject_keys(reply(4, "Noted.", DENTIST_18)) == ()
