"""The review screen's plain values for a reply in training (issue 16): it stays in the list
while its job runs, names the job, and leaves the undo history; a reply its job did not
learn comes back approved and says why. No Textual app runs here: the board, the
views and the detail pane's text are plain Python."""

from __future__ import annotations

from ftreview.core.wire import to_timestamp
from ftreview.tui.board import Board
from ftreview.tui.detail import reply_heading, send_note
from ftreview.tui.link import candidate_view
from ftreview.tui.views import Status
from ftreview.v1 import review_pb2

T1, T2 = 1_700_000_000_000_000_001, 1_700_000_000_000_000_002


def test_a_reply_in_training_stays_listed_names_its_job_and_is_counted() -> None:
    board = Board()
    board.begin_snapshot()
    pending = candidate_view(review_pb2.Candidate(timestamp=to_timestamp(T1), divergence=1.0))
    board.add_to_snapshot(pending)
    board.end_snapshot()
    board.record([pending], Status.APPROVED)  # approved on this screen, then sent
    sent = candidate_view(
        review_pb2.Candidate(
            timestamp=to_timestamp(T1), divergence=1.0,
            status=review_pb2.CANDIDATE_STATUS_SENT, job_id="ft-3",
        )
    )  # fmt: skip
    board.upsert(sent)  # the Review's STATUS_CHANGED event: accepted into job ft-3

    (shown,) = board.ordered
    assert shown.in_training and shown.status_label == "training · ft-3"
    assert board.counts()[Status.SENT] == 1
    assert "training · ft-3" in reply_heading(shown).plain
    assert send_note(shown).startswith("in training job ft-3")
    # Sent, it cannot be undone: undo skips it and says so once.
    assert board.pop_decision() is None and board.forgotten == 1

    board.remove(T1)  # learnt: the Review's REMOVED event
    assert board.ordered == []


def test_a_reply_its_job_did_not_learn_is_approved_again_with_the_reason() -> None:
    why = "job ft-3 did not learn it: not learnt: divergence 0.71"
    back = candidate_view(
        review_pb2.Candidate(
            timestamp=to_timestamp(T2), status=review_pb2.CANDIDATE_STATUS_APPROVED,
            send_error=why,
        )
    )  # fmt: skip
    assert (back.status, back.status_label, back.in_training) == (
        Status.APPROVED, "approved", False,
    )  # fmt: skip
    assert send_note(back) == f"not trained yet: {why}"
