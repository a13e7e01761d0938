"""Clearing a queue at scale, through the pilot, against a real Review and the real Scorer:
grouped identical replies, marks and bulk decisions, "reject all below", search and filters,
paging keys, undo of what the Review forgot, the batch progress line, and send's question.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ftreview.client import AsyncReviewClient
from ftreview.core.wire import timestamp_ns
from ftreview.tui.app import ReviewApp
from ftreview.tui.prompts import ConfirmScreen, ReasonScreen, TextPrompt
from textual.pilot import Pilot
from textual.widgets import DataTable

from review_service.app.config import ConfigFile
from tests.e2e.tui.harness import (
    SCORING_TIMEOUT_S,
    Notes,
    body_text,
    ingest,
    ingest_and_wait,
    memory_conversation,
    pets_conversation,
    repeated_conversation,
    screen_text,
    table_rows,
    text_of,
    wait_for,
)
from tests.integration.review.trainer_stub import serve_stub_trainer
from tests.support.services import ReviewProcess

SIZE = (120, 40)
STATUS = {1: "pending", 2: "approved", 3: "rejected", 4: "sent"}


async def statuses(review: ReviewProcess) -> dict[int, str]:
    async with AsyncReviewClient(review.address) as client:
        return {timestamp_ns(c.timestamp): STATUS[c.status] for c in await client.list_candidates()}


def app_of(pilot: Pilot[Any]) -> ReviewApp:
    assert isinstance(pilot.app, ReviewApp)
    return pilot.app


async def rows_count(pilot: Pilot[Any], count: int) -> None:
    await wait_for(
        pilot, lambda: len(table_rows(pilot)) == count, f"{count} rows", SCORING_TIMEOUT_S
    )


async def screen_is(pilot: Pilot[Any], kind: type) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), kind.__name__)


async def test_identical_replies_are_one_row_and_one_decision_takes_them_all(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, repeated_conversation(unique_base_ns, 4), 4)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        await rows_count(pilot, 1)
        row = table_rows(pilot)[0]
        assert row[4] == "×4" and "Your cat is named Biscuit." in row[5]

        await pilot.press("a")
        await screen_is(pilot, ConfirmScreen)
        assert "Approve 4 replies" in screen_text(pilot, "#question-text")
        await pilot.press("y")
        await wait_for(  # nothing pending is left: the summary replaces the list
            pilot, lambda: "Queue cleared" in text_of(pilot, "#empty"), "group approved"
        )
        assert set((await statuses(review)).values()) == {"approved"}
        assert "4 approved" in text_of(pilot, "#summary")
        assert "press s to send the 4 approved replies" in text_of(pilot, "#empty")

        await pilot.press("u")  # undo takes the whole group back
        await wait_for(pilot, lambda: table_rows(pilot)[0][1] == "pending", "group undone")
        assert app_of(pilot).query_one("#main").display
        assert set((await statuses(review)).values()) == {"pending"}


async def test_marks_then_bulk_reject_with_a_quick_reason(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 3)
        first, second = app.board.rows[0].lead, app.board.rows[1].lead
        await pilot.press("space", "space")  # mark rows 0 and 1 (space moves down)
        assert [row[0] for row in table_rows(pilot)] == ["●", "●", ""]
        assert "2 marked" in text_of(pilot, "#summary")

        await pilot.press("r")
        await screen_is(pilot, ReasonScreen)
        reason = app.config.quick_reasons[1] if app.config else ""
        await pilot.press("2")
        await wait_for(
            pilot,
            lambda: sum(row[1] == "rejected" for row in table_rows(pilot)) == 2,
            "both marked rows rejected",
        )
        stored = await statuses(review)
        assert stored[first.timestamp_ns] == stored[second.timestamp_ns] == "rejected"
        assert app.board.candidates[first.timestamp_ns].reject_reason == reason
        assert [row[0] for row in table_rows(pilot)] == ["", "", ""], "marks cleared"


async def test_reject_all_below_asks_with_the_count(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 3)
        ordered = app.board.ordered
        bound = (ordered[0].divergence + ordered[1].divergence) / 2  # two below it
        await pilot.press("b")
        await screen_is(pilot, TextPrompt)
        prompt = pilot.app.screen.query_one("#prompt-input")
        prompt.value = f"{bound:.6f}"  # type: ignore[attr-defined]
        await pilot.pause()
        assert "rejects 2 pending replies" in screen_text(pilot, "#prompt-hint")
        await pilot.press("enter")
        await screen_is(pilot, ConfirmScreen)
        assert "Reject 2 pending replies below" in screen_text(pilot, "#question-text")
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: [row[1] for row in table_rows(pilot)] == ["pending", "rejected", "rejected"],
            "the two below rejected",
        )
        stored = await statuses(review)
        assert stored[ordered[0].timestamp_ns] == "pending"
        assert stored[ordered[2].timestamp_ns] == "rejected"


async def test_search_filter_and_escape(review: ReviewProcess, unique_base_ns: int) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    await ingest_and_wait(review, pets_conversation(unique_base_ns + 1000, 2), 5)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 5)
        await pilot.press("slash")
        await screen_is(pilot, TextPrompt)
        await pilot.press(*"marisol")
        assert "1 reply contain" in screen_text(pilot, "#prompt-hint")
        await pilot.press("enter")
        await rows_count(pilot, 1)
        assert "Marisol" in table_rows(pilot)[0][5]
        assert "/marisol" in text_of(pilot, "#summary")

        await pilot.press("escape")
        await rows_count(pilot, 5)

        await pilot.press("f")
        await screen_is(pilot, TextPrompt)
        await pilot.press(*"conv:tui-pets")
        await pilot.press("enter")
        await rows_count(pilot, 2)
        assert all("pet number" in row[5] for row in table_rows(pilot))

        lowest = min(c.divergence for c in app.board.ordered)
        await pilot.press("f")
        await screen_is(pilot, TextPrompt)
        field = pilot.app.screen.query_one("#prompt-input")
        field.value = f"status:pending div:..{lowest + 1e-9:.10f}"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await rows_count(pilot, 1)
        await pilot.press("escape")
        await rows_count(pilot, 5)


async def test_paging_keys_and_g_g(review: ReviewProcess, unique_base_ns: int) -> None:
    await ingest_and_wait(review, pets_conversation(unique_base_ns, 8), 8)
    async with ReviewApp(review.address).run_test(size=(80, 24)) as pilot:
        await rows_count(pilot, 8)
        table = pilot.app.query_one(DataTable)
        await pilot.press("end")
        assert table.cursor_row == 7
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == 7
        await pilot.press("g", "g")
        assert table.cursor_row == 0
        await pilot.press("pagedown")
        page = table.cursor_row
        assert page > 1, "a page is more than one row"
        await pilot.press("pageup")
        assert table.cursor_row == 0


async def test_undo_says_once_what_the_review_no_longer_keeps(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, pets_conversation(unique_base_ns, 12), 12)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        app = app_of(pilot)
        notes = Notes(app)
        await rows_count(pilot, 12)
        await pilot.press("b")
        await screen_is(pilot, TextPrompt)
        pilot.app.screen.query_one("#prompt-input").value = "1000"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await screen_is(pilot, ConfirmScreen)
        assert "Reject 12 pending replies" in screen_text(pilot, "#question-text")
        await pilot.press("y")
        # The Review keeps the latest 10 rejections: two leave the list.
        await rows_count(pilot, 10)
        await pilot.press("u")
        await wait_for(
            pilot,
            lambda: all(row[1] == "pending" for row in table_rows(pilot)),
            "the 10 kept rejections undone",
        )
        assert len(notes.containing("can no longer be undone")) == 1
        assert "2 replies can no longer be undone" in notes.containing("can no longer")[0]
        await pilot.press("u")
        await wait_for(pilot, lambda: bool(notes.containing("Nothing to undo")), "nothing left")
        assert len(notes.containing("can no longer be undone")) == 1, "said once"
        assert list((await statuses(review)).values()).count("pending") == 10


async def test_a_batch_of_scoring_is_one_line_and_one_summary(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        app = app_of(pilot)
        notes = Notes(app)
        await wait_for(pilot, lambda: app.board.loaded, "the first snapshot")
        seen: list[str] = []
        conversations = [
            memory_conversation(unique_base_ns + 1000 * i, f"tui-batch-{i}") for i in range(4)
        ]
        await asyncio.gather(*(ingest(review, c) for c in conversations))

        def progress() -> bool:
            line = text_of(pilot, "#activity")
            seen.append(line)
            return "scored 4 conversations" in line

        await wait_for(pilot, progress, "the batch summary", SCORING_TIMEOUT_S * 2)
        batch_lines = [line for line in seen if "scoring " in line and "/4" in line]
        assert batch_lines, f"a batch line with the total: {set(seen)}"
        assert all(line.count("⟳") == 1 for line in batch_lines), "one line, not one per run"
        summaries = notes.containing("scored ")
        assert len(summaries) == 1 and "12 new candidates" in summaries[0], notes.messages
        assert not notes.containing("score tui-batch"), "no notification per conversation"


async def test_send_asks_with_the_count_first(review: ReviewProcess, unique_base_ns: int) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        await rows_count(pilot, 3)
        await pilot.press("a")  # decided rows go below the pending ones
        await wait_for(pilot, lambda: table_rows(pilot)[-1][1] == "approved", "approved")
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        assert "Send 1 approved reply" in screen_text(pilot, "#question-text")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, ConfirmScreen), "closed")
        assert list((await statuses(review)).values()).count("approved") == 1, "nothing sent"


async def test_a_sent_reply_is_in_training_until_its_job_ends_and_comes_back_with_why(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    with serve_stub_trainer() as trainer:
        trainer.first_script = [{"state": "running", "step": 1, "total_steps": 4}]
        ConfigFile(review.config_path).set_value("finetune_url", trainer.url)
        await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
        async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
            app = app_of(pilot)
            notes = Notes(app)
            await rows_count(pilot, 3)
            sent = app.board.ordered[0].timestamp_ns
            await pilot.press("a")  # decided rows go below the pending ones
            await wait_for(pilot, lambda: table_rows(pilot)[-1][1] == "approved", "approved")
            await pilot.press("s")
            await screen_is(pilot, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: table_rows(pilot)[-1][1] == "training", "in training")
            assert (await statuses(review))[sent] == "sent"
            app.board.select(sent)
            app.redraw()
            assert "training · job-1" in body_text(pilot, "#reply-title")
            assert "in training job job-1" in body_text(pilot, "#send-error")
            assert "1 training" in body_text(pilot, "#summary")

            await pilot.press("a")  # refused on the screen, nothing asked of the Review
            await wait_for(pilot, lambda: bool(notes.containing("in training")), "the refusal")
            assert (await statuses(review))[sent] == "sent"

            why = "not learnt: divergence 0.71"
            trainer.script("job-1", {
                "state": "succeeded", "adapter": "v1",
                "per_example": [
                    {"idempotency_key": f"ftreview-reply-{sent}", "learnt": False, "reason": why}
                ],
            })  # fmt: skip
            await wait_for(pilot, lambda: table_rows(pilot)[-1][1] == "approved", "returned")
            app.redraw()
            assert body_text(pilot, "#send-error") == (
                f"not trained yet: job job-1 did not learn it: {why}"
            )


async def test_threshold_from_another_terminal_reaches_the_header_and_dims(
    review: ReviewProcess, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        app = app_of(pilot)
        await rows_count(pilot, 3)
        top = max(c.divergence for c in app.board.ordered)
        async with AsyncReviewClient(review.address) as client:
            config = await client.set_threshold(top * 10)
        await wait_for(
            pilot,
            lambda: f"threshold {config.threshold:g}" in text_of(pilot, "#summary"),
            "the new threshold in the header",
        )
        note = text_of(pilot, "#note")
        assert "3 below the threshold" in note and "applies to new scoring" in note
        table = pilot.app.query_one(DataTable)
        assert "dim" in str(table.get_row_at(0)[5].style)  # type: ignore[union-attr]
        await pilot.press("h")
        await wait_for(pilot, lambda: not app.board.rows, "every row hidden")
        assert not app.query_one("#main").display
        assert "3 are hidden" in text_of(pilot, "#empty")
        await pilot.press("h")
        await rows_count(pilot, 3)
