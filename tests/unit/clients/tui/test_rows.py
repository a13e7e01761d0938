"""The list's rows (`ftreview.tui.rows`) on plain values: what a filter admits and how it
names itself, identical replies folded into one row in the board's order, and marks that
follow a row across redraws."""

from __future__ import annotations

import pytest
from ftreview.tui.rows import Marks, Row, RowFilter, rows
from ftreview.tui.views import CandidateView, Status


def reply(
    timestamp_ns: int,
    content: str,
    divergence: float = 1.0,
    status: Status = Status.PENDING,
    conversation_id: str = "c1",
) -> CandidateView:
    return CandidateView(
        timestamp_ns=timestamp_ns,
        conversation_id=conversation_id,
        content=content,
        divergence=divergence,
        peak=2 * divergence,
        status=status,
    )


# -- the filter ---------------------------------------------------------------------------


def test_the_default_filter_admits_everything_and_names_nothing() -> None:
    everything = RowFilter()
    for status in Status:
        assert everything.admits(reply(1, "anything", divergence=0.0, status=status))
    assert everything.describe() == ""


@pytest.mark.parametrize(
    ("search", "content", "admitted"),
    [
        ("biscuit", "Your cat is named Biscuit.", True),
        ("TROMSØ", "You live in Tromsø.", True),
        ("strasse", "Sie wohnt in der Hauptstraße.", True),  # casefold: ß is ss
        ("小饼干", "你的猫叫小饼干 🐱", True),
        ("Marisol", "Your cat is named Biscuit.", False),
    ],
)
def test_search_ignores_case_the_unicode_way(search: str, content: str, admitted: bool) -> None:
    assert RowFilter(search=search).admits(reply(1, content)) is admitted


def test_statuses_and_conversation_narrow_the_list() -> None:
    only = RowFilter(statuses=frozenset({Status.APPROVED, Status.SENT}), conversation_id="c2")
    assert only.admits(reply(1, "x", status=Status.SENT, conversation_id="c2"))
    assert not only.admits(reply(1, "x", status=Status.PENDING, conversation_id="c2"))
    assert not only.admits(reply(1, "x", status=Status.APPROVED, conversation_id="c1"))


@pytest.mark.parametrize(
    ("divergence", "admitted"), [(0.49, False), (0.5, True), (0.99, True), (1.0, False)]
)
def test_a_divergence_range_includes_its_low_end_and_excludes_its_high_end(
    divergence: float, admitted: bool
) -> None:
    ranged = RowFilter(min_divergence=0.5, max_divergence=1.0)
    assert ranged.admits(reply(1, "x", divergence=divergence)) is admitted


def test_hiding_below_the_threshold_keeps_a_reply_at_the_threshold() -> None:
    hidden = RowFilter(hide_below=0.3)
    assert hidden.admits(reply(1, "x", divergence=0.3))
    assert not hidden.admits(reply(1, "x", divergence=0.29))


def test_describe_names_every_part_in_a_fixed_order() -> None:
    every = RowFilter(
        search="cat",
        statuses=frozenset({Status.REJECTED, Status.APPROVED}),
        conversation_id="c7",
        min_divergence=0.5,
        max_divergence=2.0,
        hide_below=0.1,
    )
    assert every.describe() == "/cat approved,rejected conv c7 div 0.5..2 below threshold hidden"
    assert RowFilter(max_divergence=0.25).describe() == "div ..0.25"
    assert RowFilter(min_divergence=1e-6).describe() == "div 1e-06.."


# -- the rows -----------------------------------------------------------------------------


def test_identical_replies_with_one_status_are_one_row_strongest_first() -> None:
    same = "There are seven days in a week."
    ordered = [
        reply(5, same, 3.0),
        reply(2, "Your cat is named Biscuit.", 2.5),
        reply(9, same, 2.0),
        reply(1, same, 1.5, Status.APPROVED),  # same words, another status: its own row
        reply(4, same, 1.0),
    ]
    listed = rows(ordered, RowFilter())
    assert [row.timestamps for row in listed] == [[5, 9, 4], [2], [1]]
    assert [row.key for row in listed] == [
        (same, Status.PENDING),
        ("Your cat is named Biscuit.", Status.PENDING),
        (same, Status.APPROVED),
    ]
    assert listed[0].lead.timestamp_ns == 5


def test_a_row_holds_only_the_members_the_filter_shows() -> None:
    same = "There are seven days in a week."
    ordered = [
        reply(1, same, 3.0, conversation_id="a"),
        reply(2, same, 2.0, conversation_id="b"),
        reply(3, same, 1.0, conversation_id="a"),
    ]
    (row,) = rows(ordered, RowFilter(conversation_id="a"))
    assert row.timestamps == [1, 3]
    assert 1 in row and 3 in row and 2 not in row
    assert rows(ordered, RowFilter(search="month")) == []


def test_a_row_sits_where_its_strongest_member_sits() -> None:
    ordered = [reply(1, "a", 3.0), reply(2, "b", 2.0), reply(3, "a", 1.0), reply(4, "c", 0.5)]
    assert [row.lead.content for row in rows(ordered, RowFilter())] == ["a", "b", "c"]


# -- the marks ----------------------------------------------------------------------------


def test_marks_follow_a_row_across_a_redraw_and_leave_with_it() -> None:
    first = Row((reply(1, "a", 3.0),))
    second = Row((reply(2, "b", 2.0),))
    marks = Marks()
    marks.toggle(first)
    marks.toggle(second)
    # Redrawn: the same rows with a new member; the marks are on their keys.
    redrawn = rows([reply(1, "a", 3.0), reply(7, "a", 2.5), reply(2, "b", 2.0)], RowFilter())
    assert [row.timestamps for row in marks.marked(redrawn)] == [[1, 7], [2]]
    # Row "a" was approved: a row of another key; its mark is dropped for good.
    approved = rows([reply(1, "a", 3.0, Status.APPROVED), reply(2, "b", 2.0)], RowFilter())
    assert [row.key for row in marks.marked(approved)] == [("b", Status.PENDING)]
    assert marks.keys == {("b", Status.PENDING)}


def test_toggling_twice_unmarks_and_clear_unmarks_all() -> None:
    row = Row((reply(1, "a"),))
    marks = Marks()
    marks.toggle(row)
    marks.toggle(row)
    assert marks.marked([row]) == []
    marks.toggle(row)
    marks.clear()
    assert marks.marked([row]) == []
