"""Core, client and CLI modules never import Textual: scripts and servers must not load
(or need) the UI library. Checked in a fresh interpreter, where nothing else loaded it."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "ftreview",
    "ftreview.client",
    "ftreview.errors",
    "ftreview.cli",
    "ftreview.report",
    "ftreview.local_services",
    "ftreview.conversations",
    "scorer_service",
    "scorer_service.server",
    "review_service",
]


@pytest.mark.parametrize("module", MODULES)
def test_importing_leaves_textual_out(module: str) -> None:
    probe = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_the_probe_would_notice_textual() -> None:
    """Guards the test above against passing vacuously."""
    probe = "import sys, textual\nprint('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "True"
