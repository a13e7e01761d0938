"""The review screen's stand-in where there is no terminal to draw on (a pipe, a CI log).

It prints what the screen would open on: the candidates in review order and, when there
are none, the last FinetuneScoringStats, so a non-interactive run still says what was
found and why. It reads the same stream snapshot as the screen, through the same link.
"""

from __future__ import annotations

import asyncio
import sys

from ftreview.errors import FtreviewError
from ftreview.tui.board import Board
from ftreview.tui.link import ServiceLink
from ftreview.tui.widgets import describe_stats, reply_line


async def _overview_text(review_addr: str, scorer_addr: str) -> str:
    link = ServiceLink(review_addr, scorer_addr)
    try:
        overview = await link.overview()
        board = Board()
        board.begin_snapshot()
        async for event in link.watch_candidates():
            if event.kind == "SNAPSHOT" and event.candidate is not None:
                board.add_to_snapshot(event.candidate)
            elif event.kind == "SNAPSHOT_END":
                board.end_snapshot()
                break
    finally:
        await link.close()
    if not board.candidates:
        return describe_stats(overview.last_stats, overview.config.threshold).plain
    lines = [f"{'status':<9} {'divergence':>10} {'peak':>6}  reply"]
    for candidate in board.ordered:
        lines.append(
            f"{candidate.status.value:<9} {candidate.divergence:>10.3f} {candidate.peak:>6.2f}"
            f"  {reply_line(candidate.content)}"
        )
    lines.append(f"\nthreshold {overview.config.threshold:g}; run `ftreview review` in a terminal")
    return "\n".join(lines)


def print_overview(review_addr: str, scorer_addr: str) -> int:
    try:
        print(asyncio.run(_overview_text(review_addr, scorer_addr)))
    except FtreviewError as error:
        print(f"ftreview review: {error}", file=sys.stderr)
        return 1
    return 0
