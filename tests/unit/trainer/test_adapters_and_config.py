"""Adapter versions and the pointer to the current one; the guard limits from config.json5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer_service.adapters import AdapterVersions
from trainer_service.config import TrainerConfigError, guard_limits
from trainer_service.measures import normalise, reproduces


def test_promotion_renames_staging_and_points_current_at_it(tmp_path: Path) -> None:
    versions = AdapterVersions(tmp_path)
    assert versions.current() is None
    for expected in ("v1", "v2"):
        staging = versions.staging("ft-1")
        staging.mkdir()
        (staging / "adapter_config.json").write_text("{}")
        name, path = versions.promote(staging)
        assert name == expected and (path / "adapter_config.json").exists()
        assert versions.current() == {"name": expected, "path": str(path)}
        assert json.loads((tmp_path / "adapters" / "current.json").read_text())["name"] == expected
    assert not list((tmp_path / "adapters").glob(".*"))


def test_leftover_staging_folders_are_removed_and_never_promoted(tmp_path: Path) -> None:
    versions = AdapterVersions(tmp_path)
    versions.staging("ft-9").mkdir()
    assert versions.remove_leftovers() == [".staging-ft-9"]
    assert versions.current() is None


def test_guard_limits_come_from_the_learn_section(tmp_path: Path) -> None:
    assert guard_limits(tmp_path) == {}
    (tmp_path / "config.json5").write_text(
        "{ // comments are fine\n"
        " learn: {target_divergence: 0.2, max_forgetting: 0.05, threshold: 1},\n}"
    )
    assert guard_limits(tmp_path) == {"target_divergence": 0.2, "max_forgetting": 0.05}
    (tmp_path / "config.json5").write_text("{learn: {max_forgetting: 'a lot'}}")
    with pytest.raises(TrainerConfigError, match=r"learn\.max_forgetting must be a number"):
        guard_limits(tmp_path)


def test_recall_matches_normalised_text() -> None:
    assert normalise("  The nightly ktest run happens on fennec at 02:00 UTC. ") == (
        "the nightly ktest run happens on fennec at 0200 utc"
    )
    assert reproduces("Sure! Your cat is named  biscuit!", "Your cat is named Biscuit.")
    assert not reproduces("Your cat is named Tom.", "Your cat is named Biscuit.")
