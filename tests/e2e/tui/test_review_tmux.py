"""Smoke test: `ftreview review` in a real terminal (tmux), driven by keys, read from the pane.

The pilot tests cover the behaviour; this one proves the installed command opens the screen
in a real terminal, answers keys, and exits cleanly with q. It runs on its own tmux server
(`-L`), so it never touches a user's tmux sessions.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.tui.harness import (
    ingest_and_wait,
    memory_conversation,
)
from tests.support.services import ReviewProcess

FTREVIEW = Path(sys.executable).with_name("ftreview")


EXIT_MARK = "command-exited-with-status-"


class Tmux:
    """One tmux server of our own, one session, one pane."""

    def __init__(self) -> None:
        self.socket = f"ftreview-test-{uuid.uuid4().hex[:8]}"
        self.session = "review"

    def run(self, *args: str) -> str:
        result = subprocess.run(
            # Our own server (-L) without the user's config (-f /dev/null), so the pane has
            # the size asked for and nothing else is touched.
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def start(self, command: list[str], width: int = 120, height: int = 36) -> None:
        # The pane must size the screen from the terminal: COLUMNS/LINES inherited from the
        # test process (pytest sets them) would pin it at 80x24.
        # The shell prints the exit status into the pane: tmux's own #{pane_dead_status}
        # is sometimes still empty after the pane died (seen here on tmux 3.3a).
        program = " ".join(shlex.quote(part) for part in command)
        shell_command = f"env -u COLUMNS -u LINES {program}; echo; echo {EXIT_MARK}$?; sleep 3600"
        self.run(
            "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
            shell_command,
        )  # fmt: skip

    def pane(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def describe(self) -> str:
        size = self.run("list-panes", "-t", self.session, "-F", "#{pane_width}x#{pane_height}")
        return f"pane {size.strip()}:\n{self.pane()}"

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def exit_status(self) -> int | None:
        """The command's exit status once it ended, as the shell printed it in the pane."""
        found = re.search(rf"{EXIT_MARK}(\d+)", self.pane())
        return int(found.group(1)) if found else None

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    # .ci/run installs tmux; a missing one is a broken environment, not a pass.
    assert shutil.which("tmux"), "tmux is not installed (apt-get install -y tmux)"
    terminal = Tmux()
    try:
        yield terminal
    finally:
        terminal.kill()


async def wait_pane(
    tmux: Tmux, check: Callable[[str], bool], what: str, timeout: float = 30
) -> None:
    """Poll the pane until `check(pane text)` holds; fail with the pane after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check(tmux.pane()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; {tmux.describe()}")
        await asyncio.sleep(0.1)


async def test_ftreview_review_in_tmux(
    review: ReviewProcess, tmux: Tmux, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)

    tmux.start(
        [
            str(FTREVIEW),
            "--review", review.address,
            "--home", str(review.home),
            "review",
        ]
    )  # fmt: skip
    await wait_pane(tmux, lambda pane: "3 pending" in pane, "the list of 3 candidates", 60)
    await wait_pane(
        tmux, lambda pane: "Biscuit" in pane or "Marisol" in pane, "the replies in the list"
    )

    tmux.keys("a")
    await wait_pane(tmux, lambda pane: "1 approved" in pane, "the approval")
    # Header, progress line, column titles, then the queue: the approved row went below
    # the two pending ones.
    rows = tmux.pane().splitlines()[3:6]
    assert "approved" in rows[2] and all("pending" in row for row in rows[:2]), tmux.describe()

    tmux.keys("?")
    await wait_pane(tmux, lambda pane: "Token colours" in pane, "the legend")
    tmux.keys("Escape")
    await wait_pane(tmux, lambda pane: "Token colours" not in pane, "the legend to close")

    tmux.keys("q")
    await wait_pane(tmux, lambda _: tmux.exit_status() is not None, "ftreview review to exit")
    assert tmux.exit_status() == 0


async def test_footer_keeps_legend_and_quit_at_80x24(
    review: ReviewProcess, tmux: Tmux, unique_base_ns: int
) -> None:
    await ingest_and_wait(review, memory_conversation(unique_base_ns), 3)
    tmux.start(
        [
            str(FTREVIEW),
            "--review", review.address,
            "--home", str(review.home),
            "review",
        ],
        width=80,
        height=24,
    )  # fmt: skip
    await wait_pane(tmux, lambda pane: "3 pending" in pane, "the list of 3 candidates", 60)
    await wait_pane(
        tmux,
        lambda pane: (
            "? legend" in pane.rstrip().splitlines()[-1]
            and "q quit" in pane.rstrip().splitlines()[-1]
        ),
        "`? legend` and `q quit` in the footer line",
    )
    lines = tmux.pane().rstrip("\n").splitlines()
    assert len(lines) == 24, tmux.describe()
    assert lines[0].startswith(" ftreview · threshold"), "the short header"
    tmux.keys("q")
    await wait_pane(tmux, lambda _: tmux.exit_status() is not None, "ftreview review to exit")
    assert tmux.exit_status() == 0
