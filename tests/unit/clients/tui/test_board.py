"""The review screen's board (`ftreview.tui.board`) on plain values: the order it keeps, the
snapshot rule, a selection that follows its reply, and the undo history. No Textual app and
no service: each test feeds the board what the Review's stream would say."""

from __future__ import annotations

from ftreview.tui.board import Board, Decision, Prior
from ftreview.tui.rows import RowFilter
from ftreview.tui.views import CandidateView, Status


def reply(
    timestamp_ns: int,
    divergence: float = 1.0,
    status: Status = Status.PENDING,
    content: str | None = None,
    conversation_id: str = "c1",
    reject_reason: str = "",
) -> CandidateView:
    """A candidate as the Review lists it; its content names it unless given."""
    return CandidateView(
        timestamp_ns=timestamp_ns,
        conversation_id=conversation_id,
        content=f"reply {timestamp_ns}" if content is None else content,
        divergence=divergence,
        peak=2 * divergence,
        status=status,
        reject_reason=reject_reason,
    )


def loaded(*candidates: CandidateView) -> Board:
    """A board that has received one complete snapshot of `candidates`."""
    board = Board()
    board.replace_all(candidates)
    return board


def order(board: Board) -> list[int]:
    return [c.timestamp_ns for c in board.ordered]


def shown(board: Board) -> list[int]:
    """The lead reply of every row, top to bottom."""
    return [row.lead.timestamp_ns for row in board.rows]


# -- order --------------------------------------------------------------------------------


def test_highest_divergence_comes_first_and_ties_go_by_reply_time() -> None:
    board = loaded(reply(30, 1.0), reply(10, 0.5), reply(20, 1.0), reply(40, 2.5))
    assert order(board) == [40, 20, 30, 10]
    assert shown(board) == [40, 20, 30, 10]


def test_a_live_update_moves_a_reply_to_where_its_new_divergence_puts_it() -> None:
    board = loaded(reply(1, 3.0), reply(2, 2.0), reply(3, 1.0))
    board.upsert(reply(3, 5.0))
    assert order(board) == [3, 1, 2]
    board.upsert(reply(4, 2.0))  # a new reply: ties with 2, later in time
    assert order(board) == [3, 1, 2, 4]


# -- the snapshot -------------------------------------------------------------------------


def test_nothing_is_loaded_until_the_first_snapshot_is_complete() -> None:
    board = Board()
    board.begin_snapshot()
    board.add_to_snapshot(reply(1))
    assert not board.loaded and board.ordered == [] and board.selected is None
    board.end_snapshot()
    assert board.loaded and order(board) == [1]


def test_a_new_snapshot_replaces_the_set_only_once_it_is_complete() -> None:
    board = loaded(reply(1, 2.0), reply(2, 1.0))
    board.begin_snapshot()
    board.add_to_snapshot(reply(3))
    # Live events while the snapshot streams in change the snapshot, not what is shown.
    board.upsert(reply(4, 4.0))
    board.remove(3)
    assert order(board) == [1, 2]
    board.end_snapshot()
    assert order(board) == [4]


def test_an_abandoned_snapshot_keeps_the_last_complete_set() -> None:
    board = loaded(reply(1, 2.0), reply(2, 1.0))
    board.begin_snapshot()
    board.add_to_snapshot(reply(3))
    board.abandon_snapshot()
    assert order(board) == [1, 2]
    board.upsert(reply(3, 0.5))  # after it, live events apply at once again
    assert order(board) == [1, 2, 3]


# -- the selection ------------------------------------------------------------------------


def test_the_first_selection_is_the_first_pending_row() -> None:
    board = loaded(reply(1, 3.0, Status.APPROVED), reply(2, 2.0), reply(3, 1.0))
    assert board.selected == 2
    assert loaded(reply(1, 3.0, Status.REJECTED)).selected == 1  # no pending: the first


def test_the_selection_follows_its_reply_when_rows_appear_above_it() -> None:
    board = loaded(reply(1, 3.0), reply(2, 2.0), reply(3, 1.0))
    board.select(2)
    assert board.selected_index() == 1
    board.upsert(reply(9, 9.0))  # a stronger reply arrives on top
    assert board.selected == 2 and board.selected_index() == 2
    current = board.current()
    assert current is not None and current.timestamp_ns == 2


def test_when_the_selected_reply_leaves_the_cursor_keeps_its_place() -> None:
    board = loaded(reply(1, 3.0), reply(2, 2.0), reply(3, 1.0))
    board.select(2)
    board.remove(2)
    assert board.selected == 3  # the row now where it was
    board.remove(3)
    assert board.selected == 1  # past the end: the last row
    board.remove(1)
    assert board.selected is None and board.current_row() is None


def test_a_filter_that_hides_the_selected_reply_moves_the_cursor_to_its_place() -> None:
    board = loaded(
        reply(1, 3.0, content="the cat is Biscuit"),
        reply(2, 2.0, content="the sister is Marisol"),
        reply(3, 1.0, content="the cat is black"),
    )
    board.select(2)
    board.set_filter(RowFilter(search="cat"))
    assert shown(board) == [1, 3]
    assert board.selected == 3  # index 1, as before
    board.set_filter(RowFilter())
    assert board.selected == 3 and shown(board) == [1, 2, 3]


def test_selecting_an_unknown_reply_changes_nothing() -> None:
    board = loaded(reply(1), reply(2))
    before = board.selected
    board.select(99)
    assert board.selected == before


def test_moves_stay_within_the_rows() -> None:
    board = loaded(*(reply(t, 10.0 - t) for t in range(1, 6)))  # shown 1..5
    board.move_to(0)
    board.move(2)
    assert board.selected == 3
    board.move(-10)
    assert board.selected == 1
    board.move(10)
    assert board.selected == 5
    board.move_to(-2)
    assert board.selected == 4
    board.move_to(100)
    assert board.selected == 5
    Board().move(1)  # an empty board: nothing to move to, and no error


def test_after_a_decision_the_cursor_goes_to_the_next_pending_row_wrapping() -> None:
    board = loaded(
        reply(1, 5.0),
        reply(2, 4.0, Status.APPROVED),
        reply(3, 3.0),
        reply(4, 2.0, Status.REJECTED),
    )
    board.select(3)
    board.advance_to_next_pending()
    assert board.selected == 1  # 4 is rejected: wrap to the top
    board.advance_to_next_pending()
    assert board.selected == 3
    only = loaded(reply(1, 5.0), reply(2, 4.0, Status.APPROVED))
    only.select(1)
    only.advance_to_next_pending()
    assert only.selected == 1  # no other pending row: stay


def test_identical_replies_are_one_row_and_any_member_selects_it() -> None:
    same = "There are seven days in a week."
    board = loaded(reply(1, 1.0, content=same), reply(2, 3.0, content=same), reply(3, 2.0))
    (first, second) = board.rows
    assert first.timestamps == [2, 1] and second.timestamps == [3]
    board.select(1)  # a member that is not the row's lead
    assert board.selected_index() == 0
    board.move(1)
    assert board.selected == 3


# -- reading ------------------------------------------------------------------------------


def test_counts_and_pending_below_see_the_candidates_the_filter_hides() -> None:
    board = loaded(
        reply(1, 0.2),
        reply(2, 0.4),
        reply(3, 0.9),
        reply(4, 0.1, Status.APPROVED),
        reply(5, 0.3, Status.REJECTED),
    )
    board.set_filter(RowFilter(statuses=frozenset({Status.APPROVED})))
    assert shown(board) == [4]
    assert board.counts() == {
        Status.PENDING: 3,
        Status.APPROVED: 1,
        Status.REJECTED: 1,
        Status.SENT: 0,
    }
    assert [c.timestamp_ns for c in board.pending_below(0.5)] == [2, 1]


# -- the undo history ---------------------------------------------------------------------


def test_a_decision_keeps_each_replys_status_before_it() -> None:
    board = loaded(reply(1), reply(2, status=Status.REJECTED, reject_reason="stale"))
    board.record(board.ordered, Status.APPROVED)
    assert board.pop_decision() == Decision(
        (Prior(1, Status.PENDING, ""), Prior(2, Status.REJECTED, "stale")), Status.APPROVED
    )
    assert board.pop_decision() is None


def test_a_decision_that_changed_nothing_leaves_nothing_to_undo() -> None:
    board = loaded(reply(1, status=Status.APPROVED), reply(2))
    board.record([board.ordered[0]], Status.APPROVED)
    assert board.pop_decision() is None
    board.record(board.ordered, Status.APPROVED)  # only the pending one changes
    decision = board.pop_decision()
    assert decision is not None and [p.timestamp_ns for p in decision.priors] == [2]


def test_undo_takes_the_latest_decision_first_and_a_failed_undo_is_kept() -> None:
    board = loaded(reply(1, 2.0), reply(2, 1.0))
    first, second = board.ordered
    board.record([first], Status.APPROVED)
    board.record([second], Status.REJECTED)
    latest = board.pop_decision()
    assert latest is not None and latest.made is Status.REJECTED
    board.push_back(latest)  # the Review refused the undo: try again later
    assert board.pop_decision() == latest
    earlier = board.pop_decision()
    assert earlier is not None and earlier.made is Status.APPROVED


def test_a_reply_the_review_drops_leaves_the_history_and_is_counted_once() -> None:
    board = loaded(reply(1, 3.0), reply(2, 2.0), reply(3, 1.0))
    board.record(board.ordered[:2], Status.REJECTED)  # replies 1 and 2, one decision
    board.remove(1)  # the Review no longer keeps reply 1
    assert board.forgotten == 1
    decision = board.pop_decision()
    assert decision is not None and [p.timestamp_ns for p in decision.priors] == [2]

    board.record([board.ordered[1]], Status.APPROVED)  # reply 3
    board.replace_all([reply(2, 2.0)])  # a snapshot without reply 3
    assert board.forgotten == 2 and board.pop_decision() is None


def test_a_reply_sent_for_training_in_a_snapshot_cannot_be_undone() -> None:
    board = loaded(reply(1))
    board.record(board.ordered, Status.APPROVED)
    board.replace_all([reply(1, status=Status.SENT)])
    assert board.pop_decision() is None and board.forgotten == 1
    assert order(board) == [1]  # still listed while its job runs


def test_a_conflict_group_is_shown_together_where_its_first_reply_is() -> None:
    a = CandidateView(1, "c1", "On 18 March.", 2.0, 4.0, Status.PENDING, conflicts_with=(3,))
    b = reply(2, 1.0)
    c = CandidateView(3, "c2", "On 20 March.", 0.5, 1.0, Status.PENDING)
    approved = reply(4, 3.0, Status.APPROVED)
    board = loaded(a, b, c, approved)
    # Either side naming the other is enough; pending rows stay above the decided ones.
    assert shown(board) == [1, 3, 2, 4]
    board.cycle_sort()  # time, newest first: 3 leads, 1 follows it
    assert shown(board) == [3, 1, 2, 4]
