"""The layers of docs/design.md §8, as import-linter contracts (pyproject's [tool.importlinter]):
the core imports no service, the services never import each other, the clients import no
service, the core and the CLI never import Textual, and domain modules import no gRPC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_every_import_contract_is_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", RUN_LINT_IMPORTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert result.stdout.count(" KEPT") >= 5  # every contract ran
