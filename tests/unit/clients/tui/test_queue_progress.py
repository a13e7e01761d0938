"""The queue as a reviewer clears it, on plain values: pending rows first and the decided
grouped below in each sort, the cursor after a decision, the count of what was decided on
this screen (an undo takes it back), the progress line within 80 columns, the end-of-queue
summary's next step, `w` generating ahead (`ftreview.tui.alternates`), and the guidelines
the legend shows (`learn.guidelines`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ftreview.tui.alternates import Alternates
from ftreview.tui.board import Board
from ftreview.tui.guidelines import read_guidelines
from ftreview.tui.progress import progress_line, queue_done_text
from ftreview.tui.views import Status

from tests.unit.clients.tui.test_board import loaded, reply


def leads(board: Board) -> list[int]:
    return [row.lead.timestamp_ns for row in board.rows]


def test_pending_rows_come_first_in_every_sort() -> None:
    board = loaded(
        reply(1, 9.0, Status.APPROVED),
        reply(2, 1.0, conversation_id="b"),
        reply(3, 3.0, Status.REJECTED),
        reply(4, 2.0, conversation_id="a"),
        reply(5, 0.5, Status.SENT),
    )
    assert leads(board) == [4, 2, 1, 5, 3]
    assert board.cycle_sort() == "time"
    assert leads(board) == [4, 2, 1, 5, 3]  # newest first: 4 then 2
    assert board.cycle_sort() == "conversation"
    assert leads(board) == [4, 2, 1, 5, 3]
    board.upsert(reply(6, 0.1, conversation_id="a"))
    assert leads(board) == [4, 6, 2, 1, 5, 3]
    assert board.cycle_sort() == "divergence"
    assert leads(board) == [4, 2, 6, 1, 5, 3]


def test_after_a_decision_the_cursor_takes_the_next_pending_row() -> None:
    board = loaded(reply(1, 3.0), reply(2, 2.0), reply(3, 1.0))
    board.select(2)
    index = board.selected_index()
    before = [board.candidates[2]]
    board.upsert(dataclasses.replace(before[0], status=Status.APPROVED))
    board.record(before, Status.APPROVED)
    board.advance_to_next_pending(from_index=index)
    assert leads(board) == [1, 3, 2] and board.selected == 3
    assert board.session_decided == {2}
    board.pop_decision()
    assert board.session_decided == set()


def test_the_progress_line_fits_80_columns_and_keeps_its_numbers() -> None:
    counts = {Status.PENDING: 12345, Status.APPROVED: 3, Status.REJECTED: 2, Status.SENT: 0}
    line = progress_line(counts, 5, "conversation").plain
    assert line == "5 decided this session · 12345 of 12350 pending left · sort: conversation (o)"
    assert len(line) <= 80
    narrow = progress_line(counts, 5, "conversation", width=40).plain
    assert narrow == "5 decided · 12345/12350 pending · sort conversation"
    assert "d: decision history" in progress_line(counts, 5, "time", width=160).plain


def test_the_summary_says_what_to_do_next() -> None:
    counts = dict.fromkeys(Status, 0)
    assert (
        "press s to send the 2 approved replies"
        in queue_done_text(counts | {Status.APPROVED: 2}, 2).plain
    )
    training = queue_done_text(counts | {Status.SENT: 1}, 0, ("ft-3",)).plain
    assert "job ft-3" in training and "ftreview jobs" in training
    assert "ftreview score FILE" in queue_done_text(counts | {Status.REJECTED: 4}, 4).plain


def test_w_stays_on_and_generates_the_next_two_rows_once() -> None:
    board = loaded(*(reply(ts, 5.0 - ts) for ts in range(1, 6)))
    alternates = Alternates()
    assert alternates.wanted(board.rows, 0) == []  # off
    alternates.toggle(board.selected)
    assert alternates.wanted(board.rows, 0) == [1, 2, 3]
    assert alternates.wanted(board.rows, 1) == [4]  # 2 and 3 are being generated
    alternates.generating.discard(4)
    alternates.errors[4] = "the Scorer is busy"
    assert alternates.wanted(board.rows, 3) == [5]  # a failure is not asked again
    alternates.toggle(4)
    alternates.toggle(4)  # off and on: the current row is asked again
    alternates.generating.clear()
    board.upsert(dataclasses.replace(board.candidates[5], alternate="Hello."))
    assert alternates.wanted(board.rows, 3) == [4]


def test_guidelines_come_from_learn_guidelines_and_never_stop_the_screen(tmp_path: Path) -> None:
    assert read_guidelines(str(tmp_path)) == ()  # no file
    config = tmp_path / "config.json5"
    config.write_text(
        "{\n  // what to approve\n  learn: { threshold: 1e-7, guidelines: [\n"
        '    "approve facts about the user,\\n not about the world",\n    "  ",\n'
        '    "reject anything private",\n  ] },\n}\n'
    )
    assert read_guidelines(str(tmp_path)) == (
        "approve facts about the user, not about the world",
        "reject anything private",
    )
    config.write_text("{ learn: { guidelines: 'one string' } }")
    assert read_guidelines(str(tmp_path)) == ()
    config.write_text("{ learn: { guidelines: [")
    assert read_guidelines(str(tmp_path)) == ()
