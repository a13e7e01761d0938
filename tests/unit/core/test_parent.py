"""A service started by `ftreview serve` stops when that parent dies (`core.parent`), and
one started by hand is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = (
    "from ftreview.core.parent import die_with_parent, PARENT_ENV; import os, time; "
    "die_with_parent(); print('ready', PARENT_ENV in os.environ, flush=True); time.sleep(60)"
)
PARENT = (
    "import subprocess, sys, time; from ftreview.core.parent import child_environment; "
    f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}], env=child_environment()); "
    "print(child.pid, flush=True); time.sleep(60)"
)


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_the_child_stops_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout is not None
    lines = iter(parent.stdout.readline, "")
    child = int(next(line for line in lines if line.strip().isdigit()))
    try:
        assert next(line for line in lines if line.startswith("ready"))  # it asked by now
        assert not _gone(child, 0.1)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _gone(child, 10), "the child outlived its parent"
    finally:
        if not _gone(child, 0):
            os.kill(child, signal.SIGKILL)


def test_a_service_started_by_hand_keeps_running_and_passes_nothing_on() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FTREVIEW_PARENT_PID"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD.replace("time.sleep(60)", "pass")],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["ready", "False"]
