"""The config's defaults: what `ftreview serve` hands the Review (its trainer's URL) applies
only while the user's file sets none; the guard's targets and reject reasons are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from review_service.app.config import ConfigFile, LearnConfig
from review_service.domain.errors import ConfigUnreadable

TRAINER = "http://127.0.0.1:50053/v1/ftreview"


def test_the_default_url_applies_without_a_file_or_with_an_empty_url(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "config.json5", LearnConfig(finetune_url=TRAINER))
    assert config.load().finetune_url == TRAINER
    (tmp_path / "config.json5").write_text('{learn: {finetune_url: "", threshold: 0.5}}')
    loaded = config.load()
    assert loaded.finetune_url == TRAINER and loaded.threshold == 0.5


def test_a_users_url_wins(tmp_path: Path) -> None:
    (tmp_path / "config.json5").write_text('{learn: {finetune_url: "https://mine/ft"}}')
    config = ConfigFile(tmp_path / "config.json5", LearnConfig(finetune_url=TRAINER))
    assert config.load().finetune_url == "https://mine/ft"


def test_guard_targets_and_reject_reasons_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.json5"
    path.write_text('{learn: {target_divergence: 0.05, max_drift: 0.2, reject_reasons: ["stale"]}}')
    loaded = ConfigFile(path).load()
    assert (loaded.target_divergence, loaded.max_drift) == (0.05, 0.2)
    assert loaded.reject_reasons == ("stale",)
    path.write_text("{learn: {max_drift: -1}}")
    with pytest.raises(ConfigUnreadable, match="max_drift"):
        ConfigFile(path).load()
