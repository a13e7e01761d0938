"""The `learn` config: edits keep the user's file byte-identical except the value."""

from __future__ import annotations

import math
from pathlib import Path

import json5
import pytest

from review_service.app.config import ConfigFile, LearnConfig
from review_service.domain.errors import ConfigUnreadable, InvalidArgument

USER_FILE = """\
// My agent's settings.
{
  /* the model server */
  server: {url: 'http://gpu:8000', replicas: [1, 2,],},
  "learn": {
    // candidates above this
    threshold: 1e-7,   // nats per token
    finetune_url: 'https://trainer.example/jobs', // single quotes stay
  },
  tui: {theme: "dark"},   // trailing comma next
}
"""


def test_steps_and_a_set_change_only_the_value(tmp_path: Path) -> None:
    path = tmp_path / "config.json5"
    path.write_bytes(USER_FILE.encode())
    config = ConfigFile(path)

    config.step_threshold(+1)
    config.step_threshold(+1)
    assert config.step_threshold(-1).threshold == 1e-6
    assert path.read_text() == USER_FILE.replace("threshold: 1e-7,", "threshold: 1e-6,")
    assert config.set_threshold(0.25).threshold == 0.25
    assert path.read_text() == USER_FILE.replace("threshold: 1e-7,", "threshold: 0.25,")
    config.set_value("finetune_url", "https://other/jobs")
    assert "finetune_url: 'https://other/jobs', // single quotes stay" in path.read_text()


def test_steps_scale_by_exact_powers_of_ten(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "config.json5")
    values = [config.step_threshold(+1).threshold for _ in range(3)]
    assert values == [1e-6, 1e-5, 1e-4]
    assert config.step_threshold(-5).threshold == 1e-9


def test_a_missing_file_means_defaults_and_the_first_write_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "home" / "config.json5"
    config = ConfigFile(path)
    assert config.load() == LearnConfig()
    assert not path.exists()
    config.step_threshold(1)
    assert json5.loads(path.read_text())["learn"]["threshold"] == 1e-6
    assert "//" in path.read_text()  # the created file explains its keys


def test_a_missing_section_or_key_is_added_without_touching_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "config.json5"
    path.write_text("{\n  // keep me\n  tui: {theme: 'dark'}\n}\n")
    config = ConfigFile(path)
    config.set_threshold(3e-7)
    config.set_value("finetune_timeout", 12.5)
    text = path.read_text()
    assert text.startswith("{\n  // keep me\n  tui: {theme: 'dark'},\n")
    assert json5.loads(text) == {
        "tui": {"theme": "dark"},
        "learn": {"threshold": 3e-7, "finetune_timeout": 12.5},
    }
    assert config.load().finetune_timeout == 12.5


def test_an_unparsable_file_is_reported_with_line_and_column_and_left_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json5"
    broken = b"{\n  learn: {\n    threshold: ,\n  },\n}\n"
    path.write_bytes(broken)
    config = ConfigFile(path)
    with pytest.raises(ConfigUnreadable) as caught:
        config.step_threshold(1)
    assert (caught.value.line, caught.value.column) == (3, 16)
    assert "line 3" in caught.value.message
    assert path.read_bytes() == broken
    assert [p.name for p in tmp_path.iterdir()] == ["config.json5"]  # no temp file left


def test_an_invalid_stored_threshold_is_reported_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "config.json5"
    path.write_text("{learn: {\n  threshold: -1,\n}}\n")
    with pytest.raises(ConfigUnreadable) as caught:
        ConfigFile(path).load()
    assert caught.value.line == 2


@pytest.mark.parametrize("value", [math.nan, math.inf, -1e-7, 0.0])
def test_a_threshold_that_is_not_finite_positive_is_refused(tmp_path: Path, value: float) -> None:
    path = tmp_path / "config.json5"
    path.write_bytes(USER_FILE.encode())
    with pytest.raises(InvalidArgument):
        ConfigFile(path).set_threshold(value)
    assert path.read_bytes() == USER_FILE.encode()


def test_crlf_files_keep_their_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "config.json5"
    original = USER_FILE.replace("\n", "\r\n").encode()
    path.write_bytes(original)
    ConfigFile(path).step_threshold(1)
    assert path.read_bytes() == original.replace(b"threshold: 1e-7,", b"threshold: 1e-6,")


def test_temporaries_of_a_killed_write_are_removed_at_start(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "config.json5")
    config.set_threshold(2e-7)
    stale = [tmp_path / ".config.json5.abc123.tmp", tmp_path / ".config.json5.x.tmp"]
    for path in stale:
        path.write_text("{learn: {threshold: 3e-7")  # half written when the kill came
    other = tmp_path / ".other.json5.abc.tmp"
    other.write_text("not ours")

    removed = config.remove_stale_temporaries()

    assert sorted(removed) == sorted(stale)
    assert not any(path.exists() for path in stale) and other.exists()
    assert config.load().threshold == 2e-7


def test_a_symlinked_config_is_written_through_to_its_target(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "ftreview.json5"
    target.write_text("// mine\n{learn: {threshold: 1e-7}}\n")
    link = tmp_path / "home" / "config.json5"
    link.parent.mkdir()
    link.symlink_to(target)

    ConfigFile(link).set_threshold(5e-7)

    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == "// mine\n{learn: {threshold: 5e-7}}\n"
    assert ConfigFile(link).load().threshold == 5e-7
    assert list(link.parent.iterdir()) == [link]  # no temporary left beside the link


@pytest.mark.parametrize("steps", [2**31, -(2**31), 2**31 - 1, 701, -701])
def test_absurd_steps_are_refused_naming_the_field(tmp_path: Path, steps: int) -> None:
    config = ConfigFile(tmp_path / "config.json5")
    config.set_threshold(1e-7)
    before = config.path.read_bytes()
    with pytest.raises(InvalidArgument) as caught:
        config.step_threshold(steps)
    assert caught.value.field == "steps"
    assert config.path.read_bytes() == before
