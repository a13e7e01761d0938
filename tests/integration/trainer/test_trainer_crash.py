"""A trainer killed (SIGKILL) in the middle of training promotes nothing, and after a
restart the job runs again from the start under its own id; its key is never a new job.
The trainer runs as `python -m trainer_service` in a subprocess, on real SQLite."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, REPO, example_for

# The first job of a run measures the base model on the guard's questions first (minutes).
pytestmark = [pytest.mark.model, pytest.mark.timeout(1500)]

LISTENING = re.compile(r"fine-tuning endpoint (http://127\.0\.0\.1:\d+/v1/ftreview)")


def _start(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The trainer in a subprocess, its output in `log`; (process, endpoint URL)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trainer_service",
                "--home",
                str(home),
                "--listen",
                "127.0.0.1:0",
                "--max-epochs",
                "40",
                "--threads",
                "1",
                "--log-level",
                "WARNING",
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if found := LISTENING.search(log.read_text(errors="replace")):
            return process, found.group(1)
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the trainer did not start:\n" + log.read_text(errors="replace"))


async def _until(
    session: aiohttp.ClientSession, url: str, job_id: str, test: Any
) -> dict[str, Any]:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        async with session.get(f"{url}/jobs/{job_id}") as response:
            job = await response.json()
        if test(job):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job never reached the expected point: {job}")


async def test_a_job_killed_mid_training_is_never_promoted_and_runs_again(tmp_path: Path) -> None:
    path, reply, _ = BISCUIT
    body = {"examples": [example_for(path, reply, "key-crash")]}
    home = tmp_path / "home"
    process, url = _start(home, tmp_path / "first.log")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=body) as response:
                job_id = (await response.json())["job_id"]
            await _until(session, url, job_id, lambda j: j["state"] == "running" and j["step"] >= 1)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        process.kill()
    adapters = home / "adapters"
    assert not (adapters / "current.json").exists()
    assert not [p for p in adapters.iterdir() if not p.name.startswith(".staging-")]

    process, url = _start(home, tmp_path / "second.log")
    try:
        async with aiohttp.ClientSession() as session:
            job = await _until(
                session, url, job_id, lambda j: j["state"] == "running" and j["step"] >= 1
            )
            assert job["detail"].startswith("run 2, from the start after the trainer stopped")
            async with session.post(url, json=body) as response:
                answer = await response.json()
            assert answer["job_id"] == job_id and answer["accepted"] == ["key-crash"]
            async with session.get(f"{url}/jobs") as response:
                assert [j["job_id"] for j in (await response.json())["jobs"]] == [job_id]
        assert not (adapters / "current.json").exists()
    finally:
        process.kill()
        process.wait(30)
