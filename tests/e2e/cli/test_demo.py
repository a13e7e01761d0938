"""`ftreview demo` on a fresh home, without a terminal: the README's main job end to end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def test_demo_scores_then_prints_candidates_and_stats_and_cleans_up(fixtures_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ftreview", "demo", str(fixtures_dir / "biscuit.json")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Your cat is named Biscuit." in result.stdout
    assert "max divergence" in result.stdout and "pending" in result.stdout
    assert "succeeded: score" in result.stderr
    home = re.search(r"\(home (\S+)\)", result.stderr)
    assert home, result.stderr
    assert not Path(home.group(1)).exists(), "the temporary home was left behind"
