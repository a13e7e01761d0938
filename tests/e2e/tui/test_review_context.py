"""The reply in its context, through the pilot, against a real Review and the real Scorer:
the question, the memories ranked by attribution, the whole conversation, unicode replies
printed exactly, numbers on demand, the layouts at 80 and 160 columns, the empty screen's
causes, and a plain-language reconnect.

Question, memories and GetConversation come from the Review and Scorer of this round: the
tests that read them need those branches merged.
"""

from __future__ import annotations

from typing import Any

from ftreview.client import AsyncReviewClient
from ftreview.conversations import parse_conversation
from ftreview.tui.app import ReviewApp
from ftreview.tui.prompts import ConversationScreen
from textual.pilot import Pilot

from tests.e2e.tui.harness import (
    SCORING_TIMEOUT_S,
    UNICODE_REPLY,
    body_text,
    ingest,
    ingest_and_wait,
    memory_conversation,
    screen_text,
    table_rows,
    text_of,
    two_memories_conversation,
    unicode_conversation,
    wait_for,
)
from tests.support.services import ReviewProcess


def app_of(pilot: Pilot[Any]) -> ReviewApp:
    assert isinstance(pilot.app, ReviewApp)
    return pilot.app


async def rows_count(pilot: Pilot[Any], count: int) -> None:
    await wait_for(
        pilot, lambda: len(table_rows(pilot)) == count, f"{count} rows", SCORING_TIMEOUT_S
    )


async def test_a_unicode_reply_is_printed_exactly_once_per_character(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, unicode_conversation(unique_base_ns), 1)
    async with ReviewApp(review.address).run_test(size=(120, 36)) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 1)
        candidate = app.board.current()
        assert candidate is not None and candidate.tokens, "the Scorer's tokens"
        assert "".join(t.text for t in candidate.tokens) != UNICODE_REPLY, "tokens share chars"
        assert body_text(pilot, "#reply-body") == UNICODE_REPLY

        await pilot.press("n")  # per-token numbers on demand
        with_numbers = body_text(pilot, "#reply-body")
        assert "[" in with_numbers and with_numbers != UNICODE_REPLY
        await pilot.press("n")
        assert body_text(pilot, "#reply-body") == UNICODE_REPLY


async def test_question_and_memories_ranked_with_the_top_one_marked(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    """Needs the review/scorer branches (Candidate.question and .memories) merged."""
    await ingest_and_wait(review, two_memories_conversation(unique_base_ns), 2)
    facts = {"Biscuit": ("cat", "What is my cat called?"), "Marisol": ("sister", "my sister")}
    async with ReviewApp(review.address).run_test(size=(160, 48)) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 2)
        for _ in range(2):
            candidate = app.board.current()
            assert candidate is not None
            name = "Biscuit" if "Biscuit" in candidate.content else "Marisol"
            word, question = facts[name]
            assert question in body_text(pilot, "#question")
            assert len(candidate.memories) == 2, "both memories, with their attribution"
            attributions = [m.attribution for m in candidate.memories]
            assert attributions == sorted(attributions, reverse=True)
            side = body_text(pilot, "#memories")
            top_line = next(line for line in side.splitlines() if line.startswith("★"))
            assert word in top_line, f"the top memory states the reply's fact: {side}"
            assert app.query_one("#memories-side").display, "beside the reply at 160 columns"
            await pilot.press("j")
    async with ReviewApp(review.address).run_test(size=(80, 24)) as pilot:
        await rows_count(pilot, 2)
        assert not pilot.app.query_one("#memories-side").display
        assert "★" in body_text(pilot, "#memories-below"), "below the reply at 80 columns"


async def test_c_opens_the_whole_conversation_with_the_reply_highlighted(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    """Needs the review branch (GetConversation) merged."""
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with ReviewApp(review.address).run_test(size=(80, 24)) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 3)
        candidate = app.board.current()
        assert candidate is not None
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConversationScreen), "it")
        text = screen_text(pilot, "#conversation-text")
        assert "▶ assistant: the reply under review" in text
        assert "system (memory)" in text and "Where do I live?" in text
        assert candidate.content in text.split("▶")[1]
        await pilot.press("pagedown", "j", "k")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, ConversationScreen), "x")


async def test_alternate_beside_the_reply_when_wide(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with ReviewApp(review.address).run_test(size=(160, 48)) as pilot:
        await rows_count(pilot, 3)
        await pilot.press("w")
        assert pilot.app.query_one("#alternate-scroll").display
        assert text_of(pilot, "#reply-title").startswith("reply · divergence")
        assert body_text(pilot, "#alternate-title").startswith("alternate (without memories)")
        await pilot.press("w")
        assert not pilot.app.query_one("#alternate-scroll").display


async def test_empty_screen_says_why_for_each_cause(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    untimed = parse_conversation(
        {
            "id": "tui-untimed",
            "nodes": [
                {"role": "system", "content": "Memory: the cat is Biscuit.", "memory": True},
                {"role": "user", "content": "My cat?"},
                {"role": "assistant", "content": "Your cat is named Biscuit."},
            ],
        }
    )
    async with ReviewApp(review.address).run_test(size=(80, 24)) as pilot:
        app = app_of(pilot)
        await wait_for(pilot, lambda: app.board.loaded, "the first snapshot")
        await ingest(review, untimed)
        await wait_for(
            pilot,
            lambda: 'add "timestamp"' in text_of(pilot, "#empty"),
            "the unset-timestamp cause",
            SCORING_TIMEOUT_S,
        )
        async with AsyncReviewClient(review.address) as client:
            await client.set_threshold(1000.0)
        await ingest(review, memory_conversation(unique_base_ns))
        await wait_for(
            pilot,
            lambda: (
                "below the threshold" in text_of(pilot, "#empty")
                and "Press -" in text_of(pilot, "#empty")
            ),
            "the below-threshold cause, by how much",
            SCORING_TIMEOUT_S,
        )
        assert "x below the threshold (" in text_of(pilot, "#empty")
