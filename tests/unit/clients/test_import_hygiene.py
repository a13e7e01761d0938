"""Core, client and CLI modules never import Textual, and the clients and the CLI never
import torch: scripts and servers must not load (or need) the UI library, and
`pip install ftreview` without extras has neither. Checked in a fresh interpreter, where
nothing else loaded them."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLIENT_MODULES = [
    "ftreview",
    "ftreview.client",
    "ftreview.errors",
    "ftreview.cli",
    "ftreview.report",
    "ftreview.local_services",
    "ftreview.conversations",
]
MODULES = [*CLIENT_MODULES, "scorer_service", "scorer_service.server", "review_service"]
# What the plain install lacks: importing any of them from the clients would break it.
HEAVY = ("torch", "transformers", "textual")


def _loaded_after_import(modules: list[str], packages: tuple[str, ...]) -> str:
    probe = (
        "import importlib, sys\n"
        f"for module in {modules!r}: importlib.import_module(module)\n"
        f"print(','.join(sorted(m for m in {packages!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("module", MODULES)
def test_importing_leaves_textual_out(module: str) -> None:
    loaded = _loaded_after_import([module], ("textual",))
    assert loaded == "", f"{module} imported {loaded}"


def test_the_clients_and_the_cli_leave_torch_and_textual_out() -> None:
    loaded = _loaded_after_import(CLIENT_MODULES, HEAVY)
    assert loaded == "", f"the clients imported {loaded}"


@pytest.mark.parametrize("package", ["textual", "torch"])
def test_the_probe_would_notice(package: str) -> None:
    """Guards the tests above against passing vacuously."""
    assert _loaded_after_import([package], HEAVY) == package
