"""The README's screenshot of the review screen, from real services.

A conversation with two memories is scored by the real Scorer and kept by a real Review; the
screen opens on its candidate, showing the question, the reply's highlighting, and the
memories ranked by attribution. The test checks that much is on the screen and saves the SVG;
`scripts/screenshot` runs it with `FTREVIEW_SCREENSHOT=docs/review-screen.svg` to refresh the
README's copy (otherwise it goes to the test's temporary folder). Needs the review/scorer
branches (question, memories) merged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ftreview.tui.app import ReviewApp

from tests.e2e.tui.harness import (
    SCORING_TIMEOUT_S,
    body_text,
    ingest_and_wait,
    table_rows,
    two_memories_conversation,
    wait_for,
)
from tests.support.services import ReviewProcess

SIZE = (120, 32)


async def test_screenshot_of_a_candidate_with_its_question_and_memories(
    review: ReviewProcess, unique_base_ns: int, tmp_path: Path
) -> None:
    await ingest_and_wait(review, two_memories_conversation(unique_base_ns, "biscuit"), 2)
    target = Path(os.environ.get("FTREVIEW_SCREENSHOT", tmp_path / "review-screen.svg"))
    async with ReviewApp(review.address).run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(table_rows(pilot)) == 2, "2 rows", SCORING_TIMEOUT_S)
        # The rows are ranked by divergence, and the two replies' are close: the screen may
        # open on either. Go to the cat's reply, the one the README shows.
        if "Biscuit" not in body_text(pilot, "#reply-body"):
            await pilot.press("j")
        await wait_for(pilot, lambda: "Biscuit" in body_text(pilot, "#reply-body"), "the cat")
        assert "asked " in body_text(pilot, "#question")
        assert "★" in body_text(pilot, "#memories"), "the top memory marked"
        target.parent.mkdir(parents=True, exist_ok=True)
        pilot.app.save_screenshot(filename=target.name, path=str(target.parent))
    svg = target.read_text()
    # Rich writes each styled run of a line as its own <text>, spaces as &#160;.
    shown = re.sub(r"<[^>]+>", "", svg).replace("&#160;", " ")
    assert svg.startswith("<svg") and "Your cat is named Biscuit" in shown
