"""Smoke test: `ftreview review` in a real terminal (tmux), driven by keys, read from the pane.

The pilot tests cover the behaviour; this one proves the installed command opens the screen
in a real terminal, answers keys, and exits cleanly with q. It runs on its own tmux server
(`-L`), so it never touches a user's tmux sessions.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ftreview.client import AsyncReviewClient

from tests.e2e.tui.harness import (
    SCORING_TIMEOUT_S,
    ReviewProcess,
    ingest,
    memory_conversation,
)

FTREVIEW = Path(sys.executable).with_name("ftreview")


class Tmux:
    """One tmux server of our own, one session, one pane."""

    def __init__(self) -> None:
        self.socket = f"ftreview-test-{uuid.uuid4().hex[:8]}"
        self.session = "review"

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return result.stdout

    def start(self, command: list[str], width: int = 120, height: int = 36) -> None:
        self.run(
            "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
            "-e", "TERM=xterm-256color", " ".join(command),
        )  # fmt: skip
        self.run("set-option", "-t", self.session, "remain-on-exit", "on")

    def pane(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def exit_status(self) -> int | None:
        dead, status = self.run(
            "list-panes", "-t", self.session, "-F", "#{pane_dead} #{pane_dead_status}"
        ).split()[:2]
        return int(status) if dead == "1" else None

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    terminal = Tmux()
    try:
        yield terminal
    finally:
        terminal.kill()


async def until(
    check: Callable[[], bool], what: str, timeout: float, show: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{show()}")
        await asyncio.sleep(0.1)


async def test_ftreview_review_in_tmux(
    review: ReviewProcess, tmux: Tmux, unique_base_ns: int
) -> None:
    await ingest(review, memory_conversation(unique_base_ns))
    async with AsyncReviewClient(review.address, scorer_address=review.scorer_address) as client:
        deadline = time.monotonic() + SCORING_TIMEOUT_S
        while len(await client.list_candidates()) < 3:
            assert time.monotonic() < deadline, "the conversation was not scored in time"
            await asyncio.sleep(0.2)

    tmux.start(
        [
            str(FTREVIEW),
            "--review", review.address,
            "--scorer", review.scorer_address,
            "--home", str(review.home),
            "review",
        ]
    )  # fmt: skip
    await until(lambda: "3 pending" in tmux.pane(), "the list of 3 candidates", 60, tmux.pane)
    assert "Your cat is named Biscuit" in tmux.pane() or "Marisol" in tmux.pane()

    tmux.keys("a")
    await until(lambda: "1 approved" in tmux.pane(), "the approval", 30, tmux.pane)
    assert "approved" in tmux.pane().splitlines()[2], "the first row shows its new status"

    tmux.keys("?")
    await until(lambda: "Token colours" in tmux.pane(), "the legend", 30, tmux.pane)
    tmux.keys("Escape")
    await until(lambda: "Token colours" not in tmux.pane(), "the legend to close", 30, tmux.pane)

    tmux.keys("q")
    await until(lambda: tmux.exit_status() is not None, "ftreview review to exit", 30, tmux.pane)
    assert tmux.exit_status() == 0
