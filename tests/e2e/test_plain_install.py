"""`pip install ftreview` without extras, in a fresh virtual environment: no torch, no
transformers, no Textual, and yet the Review service runs and `ftreview candidates` lists
from it. A real install (not the editable checkout), so a module the wheel lacks or an
import of a heavy package from the clients fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.cli.conftest import Lines

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.install


def test_the_plain_install_lists_candidates_without_torch(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import importlib.util as u\n"
        "print(','.join(m for m in ('torch', 'transformers', 'textual') if u.find_spec(m)))"
    )
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert (found.returncode, found.stdout.strip()) == (0, ""), found.stderr

    review = subprocess.Popen(
        [str(venv / "bin" / "ftreview-review"), "--listen", "127.0.0.1:0",
         "--scorer", "127.0.0.1:9", "--home", str(tmp_path / "home")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines, address = Lines(review.stderr), None
        deadline = time.monotonic() + 120
        while address is None:
            line = lines.next(deadline)
            assert line, "the Review service did not report its address"
            match = re.search(r"review serving on (\S+):(\d+)", line)
            address = f"{match.group(1)}:{match.group(2)}" if match else None
        listed = subprocess.run(
            [str(venv / "bin" / "ftreview"), "candidates", "--json", "--review", address],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {"candidates": []}
    finally:
        review.terminate()
        review.wait(timeout=60)
