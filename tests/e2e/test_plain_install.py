"""`pip install ftreview` without extras, in a fresh virtual environment: no torch, no
transformers, no Textual, and yet the Review service runs and `ftreview candidates` lists
from it. A real install (not the editable checkout), so a module the wheel lacks or an
import of a heavy package from the clients fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ServiceProcess

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

    # The installed entry point, not `python -m` from this checkout: what the wheel put there.
    review = ServiceProcess(
        [str(venv / "bin" / "ftreview-review"), "--listen", "127.0.0.1:0",
         "--scorer", "127.0.0.1:9", "--home", str(tmp_path / "home")],
        serves=("review",), name="installed ftreview-review",
    )  # fmt: skip
    with review.start(timeout_s=120):
        listed = subprocess.run(
            [str(venv / "bin" / "ftreview"), "candidates", "--json", "--review", review.address],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {"candidates": []}
