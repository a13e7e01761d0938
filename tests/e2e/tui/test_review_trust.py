"""A reviewer can trust what they approve: approving a reply of a conflict group (×) asks
which value is current and rejects the others "superseded by <ID>" (undone together), the
queue keeps pending rows first and ends with a summary of what to do next, the decision
history is one key away, `o` sorts the queue, `w` stays on and generates ahead, and the
legend starts with `learn.guidelines`. The pilot tests run against a real Review
(gRPC, SQLite, in this process; its Scorer the integration tests' stand-in, its queue the
CLI tests' `queue`: NEW and OTHER move a trained appointment to two dates, CAT changes
nothing); the snapshots on fixed candidates (`FixedReviewApp`) at 80x24 and 160x48."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ftreview.client import AsyncReviewClient
from ftreview.core.wire import timestamp_ns
from ftreview.tui.app import ReviewApp
from ftreview.tui.history import HistoryScreen
from ftreview.tui.prompts import CurrentValueScreen
from ftreview.tui.views import CandidateView, DecisionView, Status
from ftreview.tui.widgets import LegendScreen
from textual.pilot import Pilot
from textual.widgets._toast import Toast

from tests.e2e.cli.test_cli_changes import (  # noqa: F401 - the fixtures are used by name
    CAT,
    NEW,
    OTHER,
    queue,
    receiver,
    scorer,
    stub_review,
)
from tests.e2e.tui.harness import screen_text, table_rows, text_of, wait_for
from tests.e2e.tui.test_review_changes import candidate, changed_candidates
from tests.e2e.tui.test_review_snapshots import FixedReviewApp
from tests.integration.review.review_support import ReviewUnderTest

NAMES = {1: "pending", 2: "approved", 3: "rejected", 4: "sent"}


async def stored(review: ReviewUnderTest) -> dict[int, tuple[str, str]]:
    async with AsyncReviewClient(f"127.0.0.1:{review.port}") as client:
        return {
            timestamp_ns(c.timestamp): (NAMES[c.status], c.reject_reason)
            for c in await client.list_candidates()
        }


async def screen_is(pilot: Pilot[Any], kind: type) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), kind.__name__)


async def test_approving_a_conflicting_reply_asks_which_value_is_current(
    stub_review: ReviewUnderTest,  # noqa: F811 - the imported fixture
    queue: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FTREVIEW_REVIEWER", "ann")
    app = ReviewApp(f"127.0.0.1:{stub_review.port}")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(table_rows(pilot)) == 3, "3 rows")
        app.board.select(NEW)
        app.redraw()
        await pilot.press("a")
        await screen_is(pilot, CurrentValueScreen)
        lines = screen_text(pilot, "#current-value").splitlines()
        assert lines[2].startswith("▶ 1  It's on 20 March now.")
        assert lines[3].startswith("  2  On March 22nd.")
        await pilot.press("escape")
        await screen_is(pilot, type(app.base))
        assert {ts: s for ts, (s, _) in (await stored(stub_review)).items()} == dict.fromkeys(
            (NEW, CAT, OTHER), "pending"
        )

        await pilot.press("a", "j", "enter")  # OTHER's date is the current one
        await wait_for(
            pilot, lambda: app.board.counts()[Status.REJECTED] == 1, "the superseded rejection"
        )
        now = await stored(stub_review)
        assert now[OTHER] == ("approved", "") and now[NEW] == ("rejected", f"superseded by {OTHER}")
        assert now[CAT] == ("pending", "")
        assert app.board.selected == CAT  # the next pending row
        assert text_of(pilot, "#progress").startswith("2 decided this session · 1 of 3 pending")
        assert [row[1] for row in table_rows(pilot)] == ["pending", "approved", "rejected"]

        await pilot.press("d")
        await screen_is(pilot, HistoryScreen)
        history = screen_text(pilot, "#history-text").splitlines()
        assert "ann" in history[3] and "rejected" in history[3]
        assert "superseded by 17" in history[3] and "It's on" in history[3]
        assert "approved" in history[4] and "On March" in history[4]
        await pilot.press("escape")
        await screen_is(pilot, type(app.base))

        await pilot.press("u")  # both back, in one undo
        await wait_for(pilot, lambda: app.board.counts()[Status.PENDING] == 3, "the undo")
        assert {s for s, _ in (await stored(stub_review)).values()} == {"pending"}

        app.board.select(NEW)
        await pilot.press("a", "enter", "a")  # NEW is current; then CAT, the last pending
        await wait_for(pilot, lambda: app.board.counts()[Status.PENDING] == 0, "the queue cleared")
        summary = text_of(pilot, "#empty")
        assert summary.startswith("Queue cleared: no reply is pending.")
        assert "press s to send the 2 approved replies" in summary
        assert "ftreview send" in summary
        assert not app.query_one("#main").display


async def test_w_stays_on_while_moving_and_the_next_rows_are_generated_ahead(
    stub_review: ReviewUnderTest,  # noqa: F811 - the imported fixture
    queue: None,  # noqa: F811
) -> None:
    app = ReviewApp(f"127.0.0.1:{stub_review.port}")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(table_rows(pilot)) == 3, "3 rows")
        await pilot.press("w")
        await wait_for(
            pilot,
            lambda: all(c.alternate for c in app.board.candidates.values()),
            "the alternates of the row and the next two",
        )
        assert text_of(pilot, "#reply-title").startswith("alternate")
        for _ in range(2):
            await pilot.press("j")  # still on, and already there: no wait, no spinner
            current = app.board.current()
            assert current is not None and current.alternate
            assert text_of(pilot, "#reply-title").startswith("alternate")
            assert text_of(pilot, "#reply-body") == f"alternate of {current.timestamp_ns}"
            assert not app.query_one("#reply-body").loading
        await pilot.press("w")
        assert text_of(pilot, "#reply-title").startswith("reply")


async def test_o_cycles_the_sort_and_the_progress_line_says_it() -> None:
    early = candidate(10, "Early, weak.", "m", 0.5)
    late = candidate(30, "Late, strong.", "m", 2.0)
    middle = dataclasses.replace(
        candidate(20, "Middle, other chat.", "m", 1.0), conversation_id="a"
    )
    done = dataclasses.replace(candidate(40, "Decided.", "m", 9.0), status=Status.APPROVED)
    app = FixedReviewApp([early, late, middle, done])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(table_rows(pilot)) == 4, "4 rows")

        def replies() -> list[str]:
            return [row[-1] for row in table_rows(pilot)]

        assert replies() == ["Late, strong.", "Middle, other chat.", "Early, weak.", "Decided."]
        assert "sort: divergence (o)" in text_of(pilot, "#progress")
        await pilot.press("o")
        assert replies() == ["Late, strong.", "Middle, other chat.", "Early, weak.", "Decided."]
        assert "sort: time (o)" in text_of(pilot, "#progress")
        await pilot.press("o")
        assert replies() == ["Middle, other chat.", "Early, weak.", "Late, strong.", "Decided."]
        assert "sort: conversation (o)" in text_of(pilot, "#progress")
        assert len(text_of(pilot, "#progress")) <= 78
        await pilot.press("o")
        assert "sort: divergence (o)" in text_of(pilot, "#progress")
        # Three notices in a row: the latest is on the activity line, none is a toast over
        # the candidate.
        assert text_of(pilot, "#activity") == "· sorted by divergence"
        assert not list(app.query(Toast))
        app.notices.until = 0.0  # expired
        app.redraw()
        assert not text_of(pilot, "#activity").startswith("·")


async def test_the_legend_lists_the_new_keys_and_the_guidelines() -> None:
    app = FixedReviewApp(changed_candidates())
    app.guidelines = ("approve facts about the user, not about the world",)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.board.loaded, "the fixed candidates")
        await pilot.press("question_mark")
        await screen_is(pilot, LegendScreen)
        legend = screen_text(pilot, "#legend").splitlines()
        assert legend[:2] == [
            "Guidelines (learn.guidelines)",
            "  • approve facts about the user, not about the world",
        ]
        assert any(line.startswith("  o ") and "sort" in line for line in legend)
        assert any(line.startswith("  d ") and "decision history" in line for line in legend)


def cleared_candidates() -> list[CandidateView]:
    new, other, cat = changed_candidates()
    return [
        dataclasses.replace(other, status=Status.APPROVED),
        dataclasses.replace(
            new, status=Status.REJECTED, reject_reason=f"superseded by {other.timestamp_ns}"
        ),
        dataclasses.replace(cat, status=Status.SENT, job_id="ft-3"),
    ]


HISTORY = [
    DecisionView(
        timestamp_ns=ts, status=status, reason=reason, reviewer="ann",
        decided_at_ns=1_772_400_000_000_000_000 - 60_000_000_000 * i, conversation_id="chat",
        content=content,
    )
    for i, (ts, status, reason, content) in enumerate([
        (NEW, "rejected", f"superseded by {OTHER}", "It's on 20 March now, the dentist moved it."),
        (OTHER, "approved", "", "On March 22nd."),
        (CAT, "pending", "", "Your cat is Biscuit."),
    ])
]  # fmt: skip


class HistoryLink:
    """The one call the history view makes, answered with `HISTORY`."""

    async def decisions(self, limit: int = 200) -> list[DecisionView]:
        return HISTORY


class FixedHistoryApp(FixedReviewApp):
    def __init__(self) -> None:
        super().__init__(changed_candidates())
        self._link = HistoryLink()  # type: ignore[assignment]


def test_snapshot_conflict_prompt_80x24(snap_compare: Any) -> None:
    """`a` on the row of a conflict group: which value is current, the row first."""
    assert snap_compare(FixedReviewApp(changed_candidates()), terminal_size=(80, 24), press=["a"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_queue_cleared(snap_compare: Any, size: tuple[int, int]) -> None:
    """No reply pending: the summary and what to do next instead of the list."""
    assert snap_compare(FixedReviewApp(cleared_candidates()), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_history(snap_compare: Any, size: tuple[int, int]) -> None:
    """`d`: the decision history, newest first, replies cut with an ellipsis."""
    assert snap_compare(FixedHistoryApp(), terminal_size=size, press=["d"])


async def test_shift_a_approves_with_a_note_kept_in_the_history(
    stub_review: ReviewUnderTest,  # noqa: F811 - the imported fixture
    queue: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FTREVIEW_REVIEWER", "ann")
    app = ReviewApp(f"127.0.0.1:{stub_review.port}")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(table_rows(pilot)) == 3, "3 rows")
        app.board.select(CAT)
        app.redraw()
        await pilot.press("A")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "TextPrompt", "prompt")
        await pilot.press(*"the vet confirmed", "enter")
        await wait_for(pilot, lambda: app.board.counts()[Status.APPROVED] == 1, "the approval")
    assert (await stored(stub_review))[CAT] == ("approved", "")
    async with AsyncReviewClient(f"127.0.0.1:{stub_review.port}") as client:
        (last, *_) = await client.list_decisions(limit=1)
    assert timestamp_ns(last.timestamp) == CAT
    assert (NAMES[last.status], last.reason, last.reviewer) == (
        "approved",
        "the vet confirmed",
        "ann",
    )
