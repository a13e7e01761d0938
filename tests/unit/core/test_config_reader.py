"""The one reader of `<home>/config.json5` (`ftreview.core.defaults.read_config`): sections
as plain values and as json-five's model, errors that name the file, line and column, and
the Review and the trainer reporting the same broken file at the same place."""

from __future__ import annotations

from pathlib import Path

import pytest
from ftreview.core.defaults import (
    CONFIG_NAME,
    DEFAULT_MAX_DRIFT,
    DEFAULT_MIN_RETENTION,
    DEFAULT_REJECT_REASONS,
    DEFAULT_TARGET_DIVERGENCE,
    HOME_ENV,
    ConfigFileError,
    default_home,
    read_config,
)

from review_service.app.config import ConfigFile, LearnConfig
from review_service.domain.errors import ConfigUnreadable
from trainer_service.config import TrainerConfigError, guard_limits
from trainer_service.guard import GuardSettings


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_config(tmp_path / CONFIG_NAME) is None


def test_sections_come_back_as_values_and_where_they_are_written(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text("// mine\n{\n  learn: {threshold: 2e-7, 'model': 'x'},\n  tui: {},\n}\n")
    document = read_config(path)
    assert document is not None
    assert document.values("learn") == {"threshold": 2e-7, "model": "x"}
    assert document.values("tui") == {} and document.values("absent") == {}
    (threshold, _) = document.entries("learn")
    assert document.text[threshold.start : threshold.end] == "2e-7"
    assert document.where(threshold.start) == (3, 22)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("{\n  learn: {\n    threshold: ,\n  },\n}\n", (3, 16), "Was expecting value"),
        ("[1, 2]", (1, 1), "the top level must be an object"),
        ("{learn: 3}", (1, 9), "`learn` must be an object"),
    ],
)
def test_a_bad_file_is_refused_naming_file_line_and_column(
    tmp_path: Path, text: str, where: tuple[int, int], reason: str
) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(text)
    with pytest.raises(ConfigFileError) as caught:
        document = read_config(path)
        assert document is not None
        document.values("learn")
    assert (caught.value.line, caught.value.column) == where
    assert str(path) in str(caught.value) and reason in caught.value.reason


def test_text_that_is_not_utf8_is_refused_where_it_breaks(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_bytes(b"{\n  learn: {model: '\xff'}}\n")
    with pytest.raises(ConfigFileError, match="line 2, column 19: not UTF-8 text"):
        read_config(path)


def test_the_review_and_the_trainer_report_a_broken_file_alike(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text("{\n  learn: {\n    max_drift: ,\n  },\n}\n")
    with pytest.raises(ConfigUnreadable) as review:
        ConfigFile(path).load()
    with pytest.raises(TrainerConfigError) as trainer:
        guard_limits(tmp_path)
    assert (review.value.line, review.value.column) == (3, 16)
    assert f"{path} line 3, column 16" in str(trainer.value)


def test_both_services_start_from_the_same_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    learn, guard = LearnConfig(), GuardSettings()
    assert learn.target_divergence == guard.target_divergence == DEFAULT_TARGET_DIVERGENCE
    assert learn.max_drift == guard.max_drift == DEFAULT_MAX_DRIFT
    assert guard.min_retention == DEFAULT_MIN_RETENTION
    assert learn.reject_reasons == DEFAULT_REJECT_REASONS
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    assert default_home() == tmp_path / "home"
    monkeypatch.delenv(HOME_ENV)
    assert default_home() == Path.home() / ".consciousness"
