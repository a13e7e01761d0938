"""Snapshots of the review screen at 80x24 and 160x48 (pytest-textual-snapshot).

A snapshot must be the same on every run, so here the screen is fed fixed candidates instead
of a live Review (a live one differs in ports, times and scores): `FixedReviewApp` loads the
board and config itself and starts no stream. The token texts are cut by the embedded
model's real tokenizer offsets, as the Scorer cuts them. What the screen does with live
services is covered by the pilot tests beside this file; this file pins the layout: what fits
at 80x24 (the footer's `? legend` and `q quit`) and how 160 columns are shared.

Update after an intended change: `pytest tests/e2e/tui/test_review_snapshots.py
--snapshot-update`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ftreview.tui.app import ReviewApp
from ftreview.tui.views import (
    CandidateView,
    ConfigView,
    GroundingSpanView,
    MemoryView,
    Status,
    TokenView,
)
from textual.events import Mount

from scorer_service.model_files import load_tokenizer
from tests.e2e.tui.harness import UNICODE_REPLY, wait_for

BASE_NS = 1_772_355_611_000_000_000


def scored(tokenizer: Any, content: str, peak_at: int) -> tuple[TokenView, ...]:
    offsets = tokenizer(content, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    return tuple(
        TokenView(content[a:b], 2.4 if i == peak_at else 0.6 if i == peak_at + 1 else 0.05 * i)
        for i, (a, b) in enumerate(offsets)
    )


def fixed_candidates(tokenizer: Any) -> list[CandidateView]:
    memories = (
        MemoryView("nodes[1]", "Memory: the user's cat is named Biscuit.", 1.62),
        MemoryView("nodes[2]", "Memory: the user's sister is called Marisol.", 0.04),
    )
    rows = [
        ("Your cat is named Biscuit.", "What's my cat's name?", 4, 1.81, Status.PENDING),
        (UNICODE_REPLY, "我的猫叫什么?", 5, 1.2, Status.PENDING),
        ("Your sister is called Marisol.", "And my sister?", 5, 0.9, Status.APPROVED),
        ("There are seven days in a week.", "How many days in a week?", 2, 0.01, Status.PENDING),
        ("There are seven days in a week.", "And again?", 2, 0.01, Status.PENDING),
        ("You live in Tromsø.", "Where do I live?", 3, 0.6, Status.REJECTED),
    ]
    return [
        CandidateView(
            timestamp_ns=BASE_NS + index,
            conversation_id="biscuit",
            content=content,
            divergence=divergence,
            peak=2.4,
            status=status,
            tokens=scored(tokenizer, content, peak_at),
            reject_reason="wrong or out of date" if status is Status.REJECTED else "",
            question=question,
            memories=memories,
        )
        for index, (content, question, peak_at, divergence, status) in enumerate(rows)
    ]


WRONG_REPLY = "Yes — it's on Thursday 12 March at 10:00 with Dr. Weber."


def flagged_candidates(tokenizer: Any) -> list[CandidateView]:
    """Issue 19's wrong reply (contradicting its memory) first, then the fixed ones, one of
    them going beyond its memories."""
    dentist = MemoryView("nodes[1]", "Dentist on Wednesday 18 March at 14:30 with Dr. Haller.", 0.7)
    spans = tuple(
        GroundingSpanView(
            WRONG_REPLY.index(said), WRONG_REPLY.index(said) + len(said), "contradicts_memory",
            "nodes[1]", value,
        )
        for said, value in (
            ("Thursday", "Wednesday"), ("12 March", "18 March"), ("10:00", "14:30"),
            ("Weber", "Haller"),
        )
    )  # fmt: skip
    wrong = CandidateView(
        timestamp_ns=BASE_NS + 99,
        conversation_id="dentist",
        content=WRONG_REPLY,
        divergence=2.5,
        peak=4.0,
        status=Status.PENDING,
        tokens=scored(tokenizer, WRONG_REPLY, 9),
        question="Is my dentist appointment this week?",
        memories=(dentist,),
        grounding="contradicts_memory",
        grounding_spans=spans,
    )
    rest = fixed_candidates(tokenizer)
    tromso = rest[-1]
    beyond = GroundingSpanView(12, 18, "beyond_memories")
    rest[-1] = dataclasses.replace(tromso, grounding="beyond_memories", grounding_spans=(beyond,))
    return [wrong, *rest]


class FixedReviewApp(ReviewApp):
    """The review screen on fixed candidates, connected to nothing."""

    def __init__(self, candidates: list[CandidateView]) -> None:
        super().__init__("127.0.0.1:50052")
        self._fixed = candidates

    def on_mount(self, event: Mount) -> None:
        event.prevent_default()  # not ReviewApp's on_mount: no streams
        self.config = ConfigView(threshold=0.1, config_path="~/.consciousness/config.json5")
        self.connected = True
        self.board.replace_all(self._fixed)
        self.activities.connected["services"] = True
        self.redraw()


@pytest.fixture(scope="module")
def candidates() -> list[CandidateView]:
    return fixed_candidates(load_tokenizer(None))


def test_snapshot_80x24(snap_compare: Any, candidates: list[CandidateView]) -> None:
    assert snap_compare(FixedReviewApp(candidates), terminal_size=(80, 24))


def test_snapshot_160x48(snap_compare: Any, candidates: list[CandidateView]) -> None:
    assert snap_compare(FixedReviewApp(candidates), terminal_size=(160, 48))


def test_snapshot_160x48_unicode_reply_with_numbers(
    snap_compare: Any, candidates: list[CandidateView]
) -> None:
    assert snap_compare(FixedReviewApp(candidates), terminal_size=(160, 48), press=["j", "n"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_grounding_flags(snap_compare: Any, size: tuple[int, int]) -> None:
    """The flagged reply: ≠ in the list and in the title, its wrong values on their own
    colour and listed with what the memory says; + on a reply beyond its memories."""
    app = FixedReviewApp(flagged_candidates(load_tokenizer(None)))
    assert snap_compare(app, terminal_size=size)


async def test_footer_at_80_columns_keeps_legend_and_quit(candidates: list[CandidateView]) -> None:
    app = FixedReviewApp(candidates)
    async with app.run_test(size=(80, 24)) as pilot:
        # The footer composes its keys once the bindings are ready: wait for that, not a pause.
        await wait_for(
            pilot,
            lambda: "legend" in app.export_screenshot() and "quit" in app.export_screenshot(),
            "`? legend` and `q quit` in the footer",
        )
        summary = str(app.query_one("#summary").render())
        assert len(summary) <= 80, "the header fits on one line at 80 columns"


async def test_late_stream_events_while_closing_draw_nothing(
    candidates: list[CandidateView],
) -> None:
    """Streams, timers and a pending alternate may still deliver while Textual removes the
    widgets on exit (CI once saw `No nodes match '#activity'` from a late alternate's end):
    drawing then is a no-op, not an error in the closing app."""
    app = FixedReviewApp(candidates)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.board.loaded, "the fixed candidates")
    assert not app.is_running
    app.redraw()
    app._draw_activity()
