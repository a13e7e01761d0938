"""Services for the CLI's tests, each test on state of its own.

One `ftreview serve` (both services, the embedded model, port 0) runs for the module: its
Scorer is the expensive part and keeps no state a test can see. Every test that needs a
Review gets a fresh one (`ftreview serve --scorer ADDR`'s path: a Review child against that
Scorer, on a home of its own), so no test depends on another having run, or run first.

`cli` runs the command in this process (`ftreview.cli.main`, output captured), which is
fast; `run_ftreview` runs it as a subprocess, for exit codes, pipes and signals.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ftreview.cli import main

from tests.support.services import FREE_PORT, ServiceProcess, local_services

FTREVIEW = [sys.executable, "-m", "ftreview"]
STARTUP_S = 300


class Lines:
    """A child's pipe read on a thread, so a test can wait for a line with a deadline
    (select() on a buffered text pipe misses lines already in the buffer)."""

    def __init__(self, stream: Any) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def next(self, deadline: float) -> str | None:
        """The next line, or None at end of stream or at the deadline."""
        try:
            return self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None


@dataclass
class Stack:
    """`ftreview serve` as a user starts it."""

    serve: ServiceProcess
    scorer: str
    review: str


def start_serve(*flags: str) -> ServiceProcess:
    """`ftreview serve --quiet FLAGS...` on free ports, started: its `addresses` hold the
    Scorer's and the Review's as it printed them."""
    serve = ServiceProcess(
        [*FTREVIEW, "serve", "--quiet", "--scorer-listen", FREE_PORT,
         "--review-listen", FREE_PORT, *flags],
        serves=("scorer", "review"), name="ftreview serve",
    )  # fmt: skip
    return serve.start(STARTUP_S)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("home")
    serve = start_serve("--home", str(home))
    try:
        yield Stack(serve, serve.addresses["scorer"], serve.addresses["review"])
    finally:
        serve.stop(timeout_s=60)


@dataclass
class Review:
    address: str
    home: Path


@pytest.fixture
def review(stack: Stack, tmp_path: Path) -> Iterator[Review]:
    """A fresh Review service (its own home) against the module's Scorer."""
    home = tmp_path / "home"
    # No trainer: these tests are about the CLI; the ones that send bring an in-test one.
    with local_services(home, scorer_address=stack.scorer) as services:
        yield Review(services.review_address, home)


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(review: Review, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`cli("candidates", "--json")` -> (exit code, stdout, stderr), in this process."""
    monkeypatch.setenv("FTREVIEW_REVIEW_ADDR", review.address)
    for name in ("FTREVIEW_TOKEN", "FTREVIEW_TLS_CA", "FTREVIEW_HOME"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop what came before
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


AsyncCli = Callable[..., Coroutine[Any, Any, tuple[int, str, str]]]


def threaded_cli(
    port: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> AsyncCli:
    """`await run("forget", ID)` -> (exit code, stdout, stderr) against the Review on `port`
    of this event loop: the command runs on a thread of its own, as reviewer "ann", at the
    80 columns of a narrow terminal."""
    monkeypatch.setenv("FTREVIEW_REVIEW_ADDR", f"127.0.0.1:{port}")
    monkeypatch.setenv("FTREVIEW_REVIEWER", "ann")
    monkeypatch.setattr("ftreview.cli.context._PIPE_WIDTH", 80)
    for name in ("FTREVIEW_TOKEN", "FTREVIEW_TLS_CA", "FTREVIEW_HOME"):
        monkeypatch.delenv(name, raising=False)

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_ftreview(
    address: str, *args: str, check: bool = True, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """`ftreview ARGS` as a subprocess, talking to the Review at `address`."""
    env = {**os.environ, "FTREVIEW_REVIEW_ADDR": address}
    result = subprocess.run(
        [*FTREVIEW, *args], capture_output=True, text=True, env=env, timeout=600, **popen
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
