"""`ftreview demo` without a terminal: the README's main job end to end, on a fresh
temporary home (removed afterwards) or on the user's home named after the file, as the
README's tour writes it; and the closed loop it runs on the bundled example (approve,
train on the real trainer, re-score, ask cold)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

# The demo trains two replies under the guard: several minutes on two cores.
pytestmark = [pytest.mark.model, pytest.mark.timeout(1500)]


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ftreview", "demo", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    """The demo up to the candidates (no approvals, no training)."""
    result = run_demo(*args, "--no-train")
    assert "Your cat is named Biscuit." in result.stdout
    assert "max divergence" in result.stdout and "pending" in result.stdout
    assert "scored 1 conversation" in result.stderr
    return result


def test_demo_scores_then_prints_candidates_and_stats_and_cleans_up(fixtures_dir: Path) -> None:
    result = demo(str(fixtures_dir / "biscuit.json"))
    home = re.search(r"\(home (\S+)\)", result.stderr)
    assert home, result.stderr
    assert not Path(home.group(1)).exists(), "the temporary home was left behind"


def test_demo_keeps_a_home_given_after_the_file(fixtures_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo(str(fixtures_dir / "biscuit.json"), "--home", str(home))
    (database,) = home.glob("review.sqlite3")
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert tables, "the Review kept nothing in the home it was given"


def test_the_bundled_example_is_learned_and_recalled() -> None:
    """The README's main command: both replies of examples/ lean on memories; after the
    demo trains them in, their divergence on the new adapter is near zero, the trainer's
    guard saw the model reproduce both without memories (recall 100%): its proof per reply
    is shown as the job reported it, beside the question asked cold on the new adapter."""
    result = run_demo()
    out = result.stdout
    for fact in ("Dr. Okafor", "B12"):
        block = out[out.index(fact) :]
        after = re.search(r"divergence (\S+) → (\S+) nats/token", block)
        assert after, out
        assert float(after.group(1)) > 1.0 and float(after.group(2)) < 0.2, after.group(0)
        assert re.search(r"trainer: fact \"[^\"]+\" came back without memories", block), block
        assert re.search(r"before: +\S", block) and re.search(r"after: +\S", block)
        assert re.search(r"asked cold: +\S.*\(v1\)", block)
    assert "recall 100%" in result.stderr
