"""`ftreview demo` without a terminal: the README's main job end to end, on a fresh
temporary home (removed afterwards) or on the user's home named after the file, as the
README's tour writes it."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ftreview", "demo", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Your cat is named Biscuit." in result.stdout
    assert "max divergence" in result.stdout and "pending" in result.stdout
    assert "succeeded: score" in result.stderr
    return result


def test_demo_scores_then_prints_candidates_and_stats_and_cleans_up(fixtures_dir: Path) -> None:
    result = demo(str(fixtures_dir / "biscuit.json"))
    home = re.search(r"\(home (\S+)\)", result.stderr)
    assert home, result.stderr
    assert not Path(home.group(1)).exists(), "the temporary home was left behind"


def test_demo_keeps_a_home_given_after_the_file(fixtures_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo(str(fixtures_dir / "biscuit.json"), "--home", str(home))
    (database,) = home.glob("*.sqlite3")
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert tables, "the Review kept nothing in the home it was given"
