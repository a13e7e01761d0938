"""The review screen through Textual's pilot, against a real Review and the real Scorer.

Each test presses keys as a reviewer would and checks what a reviewer would notice: the rows
and the cursor, the reply and its colours, the status line, and what the Review service
stored (statuses, alternates, the threshold in the config file).
"""

from __future__ import annotations

import math
import re
from typing import Any

import json5
from ftreview.client import AsyncReviewClient
from ftreview.core.wire import timestamp_ns
from ftreview.tui.app import ReviewApp
from ftreview.tui.widgets import LegendScreen
from ftreview.v1 import review_pb2
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.e2e.tui.harness import (
    ALTERNATE_TIMEOUT_S,
    SCORING_TIMEOUT_S,
    ingest,
    ingest_and_wait,
    memory_conversation,
    plain_conversation,
    table_rows,
    text_of,
    wait_for,
)
from tests.support.services import ReviewProcess

SCREEN_SIZE = (120, 40)
STATUS_NAMES = {
    review_pb2.CANDIDATE_STATUS_PENDING: "pending",
    review_pb2.CANDIDATE_STATUS_APPROVED: "approved",
    review_pb2.CANDIDATE_STATUS_REJECTED: "rejected",
    review_pb2.CANDIDATE_STATUS_SENT: "sent",
}


async def stored_candidates(review: ReviewProcess) -> dict[int, review_pb2.Candidate]:
    async with AsyncReviewClient(review.address) as client:
        return {timestamp_ns(c.timestamp): c for c in await client.list_candidates()}


async def stored_status(review: ReviewProcess, timestamp: int) -> str:
    return STATUS_NAMES[(await stored_candidates(review))[timestamp].status]


def screen(review: ReviewProcess) -> ReviewApp:
    return ReviewApp(review.address)


def cursor_row(pilot: Pilot[Any]) -> int:
    return pilot.app.query_one(DataTable).cursor_row


def row_timestamp(pilot: Pilot[Any], row: int) -> int:
    app = pilot.app
    assert isinstance(app, ReviewApp)
    return app.board.ordered[row].timestamp_ns


async def open_with_candidates(pilot: Pilot[Any], count: int) -> None:
    await wait_for(
        pilot,
        lambda: len(table_rows(pilot)) == count,
        f"{count} candidates in the list",
        timeout=SCORING_TIMEOUT_S,
    )


async def test_list_is_sorted_by_divergence_and_keys_move_the_cursor(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        await open_with_candidates(pilot, 3)
        rows = table_rows(pilot)
        divergences = [float(row[2]) for row in rows]
        assert divergences == sorted(divergences, reverse=True)
        assert all(row[1] == "pending" for row in rows)
        assert cursor_row(pilot) == 0

        # The selected reply is shown with its tokens coloured by divergence.
        body = pilot.app.query_one("#reply-body", Static).content
        assert isinstance(body, Text)
        assert any(span.style and "on " in str(span.style) for span in body.spans), (
            "a reply that leans on memories has highlighted tokens"
        )
        assert f"divergence {rows[0][2]}" in text_of(pilot, "#reply-title")

        for key, expected in (("j", 1), ("down", 2), ("j", 2), ("k", 1), ("up", 0), ("k", 0)):
            await pilot.press(key)
            await wait_for(pilot, lambda e=expected: cursor_row(pilot) == e, f"row {expected}")
            assert f"divergence {rows[expected][2]}" in text_of(pilot, "#reply-title")


async def test_approve_reject_and_undo_are_stored_and_move_to_the_next_pending(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    """Decided rows move below the pending ones, so the next pending row takes the decided
    one's place under the cursor; undo brings a reply back among the pending and selects it."""
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        await open_with_candidates(pilot, 3)
        first, second, third = (row_timestamp(pilot, i) for i in range(3))
        app = pilot.app
        assert isinstance(app, ReviewApp)

        def queue() -> list[tuple[int, str]]:
            return [(row.lead.timestamp_ns, row.lead.status.value) for row in app.board.rows]

        async def queue_is(expected: list[tuple[int, str]], what: str) -> None:
            await wait_for(pilot, lambda: queue() == expected, what)
            assert [row[1] for row in table_rows(pilot)] == [s for _, s in expected]

        await pilot.press("a")
        await queue_is(
            [(second, "pending"), (third, "pending"), (first, "approved")], "first approved"
        )
        assert await stored_status(review, first) == "approved"
        assert cursor_row(pilot) == 0, "after a decision the cursor is on the next pending"
        assert app.board.selected == second

        await pilot.press("r", "enter")  # the reason prompt: enter rejects with no reason
        await queue_is(
            [(third, "pending"), (first, "approved"), (second, "rejected")], "second rejected"
        )
        assert await stored_status(review, second) == "rejected"
        assert app.board.selected == third

        await pilot.press("u")
        await queue_is(
            [(second, "pending"), (third, "pending"), (first, "approved")], "reject undone"
        )
        assert await stored_status(review, second) == "pending"
        assert app.board.selected == second, "undo selects the reply it restored"

        await pilot.press("u")
        await queue_is([(first, "pending"), (second, "pending"), (third, "pending")], "undone")
        assert await stored_status(review, first) == "pending"

        # Undo restores the previous decision, not always "pending".
        await pilot.press("r", "1")  # first rejected with quick reason 1: it moves down
        await queue_is(
            [(second, "pending"), (third, "pending"), (first, "rejected")], "first rejected"
        )
        await pilot.press("G", "a")  # change the mind: approve it instead
        await queue_is(
            [(second, "pending"), (third, "pending"), (first, "approved")], "first approved"
        )
        await pilot.press("u")
        await queue_is(
            [(second, "pending"), (third, "pending"), (first, "rejected")], "back to rejected"
        )
        assert await stored_status(review, first) == "rejected"


async def test_w_generates_the_alternate_with_a_spinner_and_toggles_back(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        await open_with_candidates(pilot, 3)
        selected = row_timestamp(pilot, 0)
        reply_text = text_of(pilot, "#reply-body")
        body = pilot.app.query_one("#reply-body", Static)

        # The spinner may come and go within one key press when generation is quick, so
        # record every change of it rather than sampling it once.
        spinner: list[bool] = []
        pilot.app.watch(body, "loading", lambda value: spinner.append(value), init=False)
        await pilot.press("w")
        assert text_of(pilot, "#reply-title").startswith("alternate")
        await wait_for(
            pilot, lambda: not body.loading, "the alternate to arrive", timeout=ALTERNATE_TIMEOUT_S
        )
        assert spinner[:1] == [True] and spinner[-1] is False, "a spinner while generating"
        alternate = text_of(pilot, "#reply-body")
        stored = (await stored_candidates(review))[selected]
        assert stored.alternate, "the Review stored the alternate"
        assert alternate == stored.alternate

        await pilot.press("w")
        assert text_of(pilot, "#reply-title").startswith("reply")
        assert text_of(pilot, "#reply-body") == reply_text

        await pilot.press("w")  # stored now: shown at once, no second generation
        assert not body.loading
        assert text_of(pilot, "#reply-body") == stored.alternate


async def test_threshold_keys_are_persisted_to_the_config_file(review: ReviewProcess) -> None:
    def threshold_in_file() -> float:
        return float(json5.loads(review.config_path.read_text())["learn"]["threshold"])

    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        app = pilot.app
        assert isinstance(app, ReviewApp)
        await wait_for(pilot, lambda: app.board.loaded and app.config is not None, "the snapshot")
        start = app.config.threshold if app.config else 0.0

        await pilot.press("plus")
        await wait_for(
            pilot,
            lambda: review.config_path.exists() and math.isclose(threshold_in_file(), start * 10),
            "threshold x10 in config.json5",
        )
        assert f"threshold {start * 10:g}" in text_of(pilot, "#summary")

        await pilot.press("minus", "minus")
        await wait_for(
            pilot,
            lambda: math.isclose(threshold_in_file(), start / 10),
            "threshold /10 twice in config.json5",
        )
        assert f"threshold {start / 10:g}" in text_of(pilot, "#summary")


async def test_empty_list_shows_the_last_scoring_stats(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        app = pilot.app
        assert isinstance(app, ReviewApp)
        await wait_for(pilot, lambda: app.board.loaded, "the first snapshot")
        empty = text_of(pilot, "#empty")
        assert "No candidates" in empty and "ftreview score" in empty
        assert "loading" not in empty.lower()

        await ingest(review, plain_conversation(unique_base_ns))
        await wait_for(
            pilot,
            lambda: "replies seen" in text_of(pilot, "#empty"),
            "the stats of the scoring run",
            timeout=SCORING_TIMEOUT_S,
        )
        async with AsyncReviewClient(review.address) as client:
            last = (await client.get_stats()).last
        assert last.responses_seen == 3, "three assistant replies"
        stats = text_of(pilot, "#empty")
        assert re.search(rf"replies seen\s+{last.responses_seen}\n", stats), stats
        assert re.search(r"above threshold\s+0\n", stats), stats
        assert re.search(r"max divergence\s+0 nats/token vs threshold 1e-07", stats), stats
        skipped = f"{last.skipped_unset_timestamp} no timestamp"
        assert (skipped in stats) == (last.skipped_unset_timestamp > 0), stats
        assert "no memories, so there is nothing to learn" in stats, stats
        # The scoring run's end reached the status line through the activity stream.
        await wait_for(
            pilot,
            lambda: "scored 1 conversation" in text_of(pilot, "#activity"),
            "the scoring summary",
        )
        assert not app.query_one("#main").display, "no empty table beside the stats"


async def test_a_reply_ingested_elsewhere_appears_without_a_key_press(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        app = pilot.app
        assert isinstance(app, ReviewApp)
        await wait_for(pilot, lambda: app.board.loaded, "the first snapshot")
        assert table_rows(pilot) == []

        await ingest(review, memory_conversation(unique_base_ns))
        await open_with_candidates(pilot, 3)
        assert app.query_one("#main").display and not app.query_one("#empty").display
        assert "3 pending" in text_of(pilot, "#summary")


async def test_the_screen_survives_a_review_restart(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        app = pilot.app
        assert isinstance(app, ReviewApp)
        await open_with_candidates(pilot, 3)
        first = row_timestamp(pilot, 0)

        review.stop()
        await wait_for(
            pilot, lambda: "reconnecting" in text_of(pilot, "#summary"), "reconnecting shown"
        )
        summary = text_of(pilot, "#summary")
        assert "lost the Review at" in summary, summary
        for raw in ("StatusCode", "UNAVAILABLE", "ipv4:", "failed to connect"):
            assert raw not in summary, f"plain words, not gRPC's: {summary}"
        assert len(table_rows(pilot)) == 3, "the last list stays visible while reconnecting"

        review.start()  # same port, same home
        await wait_for(
            pilot,
            lambda: app.connected and "reconnecting" not in text_of(pilot, "#summary"),
            "reconnected",
        )
        await pilot.press("a")  # the approved row moves below the pending ones
        await wait_for(pilot, lambda: table_rows(pilot)[-1][1] == "approved", "approved")
        assert await stored_status(review, first) == "approved"


async def test_question_mark_shows_the_legend(review: ReviewProcess) -> None:
    async with screen(review).run_test(size=SCREEN_SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, LegendScreen), "the legend")
        legend = str(pilot.app.screen.query_one("#legend", Static).content)
        assert "approve" in legend and "nats" in legend
        await pilot.press("escape")
        await wait_for(
            pilot, lambda: not isinstance(pilot.app.screen, LegendScreen), "the legend to close"
        )
