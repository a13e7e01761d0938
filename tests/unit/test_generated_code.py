"""The committed generated code is what the protos generate now (never stale, never edited)."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "clients" / "ftreview" / "v1"


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [str(REPO / "scripts" / "gen-protos"), str(tmp_path)], check=True, capture_output=True
    )
    fresh = tmp_path / "ftreview" / "v1"
    names = sorted(p.name for p in fresh.iterdir() if p.is_file())
    committed = sorted(p.name for p in GENERATED.iterdir() if p.is_file())
    assert names == committed, "generated files differ: run scripts/gen-protos"
    _, mismatch, errors = filecmp.cmpfiles(fresh, GENERATED, names, shallow=False)
    assert not mismatch and not errors, f"stale generated code {mismatch}: run scripts/gen-protos"
