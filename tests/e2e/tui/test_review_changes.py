"""The review screen on candidates that would change what the model was taught: the row
marks (» supersedes a trained fact, × conflicts with another candidate, on both rows of a
conflict even when only the later one names the earlier), and the detail pane's lines
"supersedes ID: CHANGE" / "conflicts with IDS: ...", within 80x24. Headless (`run_test`), on
fixed candidates as the Review sends them (`FixedReviewApp`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ftreview.tui.views import CandidateView, MemoryView, Status
from textual.widgets import Static

from tests.e2e.tui.harness import table_rows, wait_for
from tests.e2e.tui.test_review_snapshots import FixedReviewApp

BASE_NS = 1_772_355_611_000_000_000
OLD, NEW, OTHER, CAT = (BASE_NS + i for i in (1, 2, 3, 4))


def candidate(ts: int, content: str, memory: str, divergence: float) -> CandidateView:
    return CandidateView(
        timestamp_ns=ts, conversation_id=f"chat-{ts % 10}", content=content,
        divergence=divergence, peak=3.0, status=Status.PENDING, question="When is it?",
        memories=(MemoryView("nodes[1]", memory, 1.5),),
    )  # fmt: skip


def changed_candidates() -> list[CandidateView]:
    """NEW moves the trained OLD appointment and conflicts with OTHER; OTHER was sent
    before NEW arrived, so only NEW names the conflict; CAT changes nothing."""
    new = candidate(
        NEW, "It's on 20 March now.", "User moved the dentist appointment to 20 March.", 2.0
    )
    other = candidate(
        OTHER, "On March 22nd.", "The user's appointment with the dentist is on 22 March.", 1.5
    )
    cat = candidate(CAT, "Your cat is Biscuit.", "The user's cat is named Biscuit.", 1.0)
    new = dataclasses.replace(
        new, supersedes=OLD, conflicts_with=(OTHER,), change="18 March 14:30 -> 20 March"
    )
    return [new, other, cat]  # fmt: skip


async def test_rows_are_marked_and_the_detail_says_what_changes_at_80x24() -> None:
    app = FixedReviewApp(changed_candidates())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.board.loaded and len(table_rows(pilot)) == 3, "rows")
        replies = {row[-1].lstrip("»× "): row[-1] for row in table_rows(pilot)}
        assert replies["It's on 20 March now."].startswith("»× ")
        assert replies["On March 22nd."].startswith("× ")
        assert replies["Your cat is Biscuit."] == "Your cat is Biscuit."

        app.board.select(NEW)
        app.redraw()
        changes = app.query_one("#changes", Static)
        assert str(changes.content).splitlines() == [
            f"supersedes {OLD}: 18 March 14:30 -> 20 March",
            f"conflicts with {OTHER}: approving both trains a contradiction",
        ]
        region = changes.region
        assert changes.display and region.height == 2 and region.right <= 80
        assert region.bottom <= 24 and all(
            len(line) <= region.width for line in str(changes.content).splitlines()
        )

        app.board.select(OTHER)
        app.redraw()
        assert (
            str(changes.content) == f"conflicts with {NEW}: approving both trains a contradiction"
        )

        app.board.select(CAT)
        app.redraw()
        assert not changes.display


async def test_a_conflict_with_a_rejected_candidate_is_no_longer_marked() -> None:
    new, other, cat = changed_candidates()
    app = FixedReviewApp([new, dataclasses.replace(other, status=Status.REJECTED), cat])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.board.loaded and len(table_rows(pilot)) == 3, "rows")
        cells = [row[-1] for row in table_rows(pilot)]
        assert cells[0].startswith("» It's on 20 March now.")
        assert not any("×" in cell for cell in cells)


@pytest.mark.parametrize("size", [(80, 24)])
def test_snapshot_changes(snap_compare: Any, size: tuple[int, int]) -> None:
    """The marks in the list and the pane's change lines, as a reviewer sees them."""
    assert snap_compare(FixedReviewApp(changed_candidates()), terminal_size=size)
