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
        " learn: {target_divergence: 0.2, max_drift: 0.05, threshold: 1},\n}"
    )
    assert guard_limits(tmp_path) == {"target_divergence": 0.2, "max_drift": 0.05}
    (tmp_path / "config.json5").write_text("{learn: {max_drift: 'a lot'}}")
    with pytest.raises(TrainerConfigError, match=r"learn\.max_drift must be a number"):
        guard_limits(tmp_path)


def test_recall_matches_normalised_text() -> None:
    assert normalise("  The nightly ktest run happens on fennec at 02:00 UTC. ") == (
        "the nightly ktest run happens on fennec at 0200 utc"
    )
    assert reproduces("Sure! Your cat is named  biscuit!", "Your cat is named Biscuit.")
    assert not reproduces("Your cat is named Tom.", "Your cat is named Biscuit.")


def _promote(versions: AdapterVersions, job: str) -> str:
    staging = versions.staging(job)
    staging.mkdir()
    (staging / "adapter_config.json").write_text("{}")
    return versions.promote(staging)[0]


def test_only_the_newest_versions_stay_and_the_current_one_always(tmp_path: Path) -> None:
    versions = AdapterVersions(tmp_path, keep=2)
    for job in range(4):
        _promote(versions, f"ft-{job}")
    assert sorted(p.name for p in versions.root.glob("v*")) == ["v3", "v4"]
    # An operator pointed current.json back at v3 (a rollback): the version in use stays
    # beside the newest ones, until a promotion makes another current.
    versions.keep = 1
    (versions.root / "current.json").write_text(
        json.dumps({"name": "v3", "path": str(versions.root / "v3")})
    )
    assert versions.prune() == []
    assert sorted(p.name for p in versions.root.glob("v*")) == ["v3", "v4"]
    assert _promote(versions, "ft-5") == "v5", "numbers only grow after a prune"
    assert sorted(p.name for p in versions.root.glob("v*")) == ["v5"]


def test_keep_zero_keeps_every_version(tmp_path: Path) -> None:
    versions = AdapterVersions(tmp_path, keep=0)
    for job in range(3):
        _promote(versions, f"ft-{job}")
    assert sorted(p.name for p in versions.root.glob("v*")) == ["v1", "v2", "v3"]
