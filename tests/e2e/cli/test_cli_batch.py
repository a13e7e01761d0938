"""Scoring many files at once, against real services: one progress line for the batch, a
summary table with a total, and `stats` over every conversation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli.chats import FACTS, chat, write_chat
from tests.e2e.cli.conftest import Cli

pytestmark = pytest.mark.model

BASE = 1_781_000_000_000_000_000


def _files(tmp_path: Path, fixtures_dir: Path) -> list[str]:
    """Three conversations: two with two memory-dependent replies each, one without memories."""
    return [
        str(write_chat(tmp_path / "a.json", chat("batch-a", BASE, FACTS[:2]))),
        str(write_chat(tmp_path / "b.json", chat("batch-b", BASE + 1_000_000, FACTS[2:4]))),
        str(fixtures_dir / "no-memories.json"),
    ]


def test_many_files_one_progress_line_a_summary_table_and_a_total(
    cli: Cli, tmp_path: Path, fixtures_dir: Path
) -> None:
    files = _files(tmp_path, fixtures_dir)
    code, out, err = cli("score", *files)
    assert code == 0, err
    # Not a terminal: one line when the batch starts, one when it ends, none per file.
    lines = err.splitlines()
    assert lines[0] == "scoring 3 conversations"
    assert lines[1].startswith("scored 3 conversations in ")
    assert lines[1].endswith(" · 4 new candidates") and len(lines) == 2
    table = out.splitlines()
    header = table[0].split()
    assert header == ["FILE", "CONVERSATION", "REPLIES", "CANDIDATES", "MAX", "DIVERGENCE",
                      "STATE"]  # fmt: skip
    rows = {line.split()[1]: line.split() for line in table[1:4]}
    assert rows["batch-a"][2:4] == ["2", "2"] and rows["batch-a"][-1] == "succeeded"
    assert rows["batch-b"][2:4] == ["2", "2"]
    assert float(rows["batch-a"][4]) > 0.1
    assert table[-1].startswith("total: 3 conversations · ")
    assert " · 4 candidates · max divergence " in table[-1]
    # Again: nothing new to score, and the count of new candidates says so.
    code, _, err = cli("score", *files)
    assert code == 0 and err.splitlines()[1].endswith(" · 0 new candidates")


def test_score_json_is_unchanged_by_the_batch(cli: Cli, tmp_path: Path, fixtures_dir: Path) -> None:
    code, out, err = cli("score", "--json", *_files(tmp_path, fixtures_dir))
    assert code == 0 and err == ""  # --json: no progress at all
    report = json.loads(out)
    assert set(report) == {"replies", "runs"}
    assert [r["state"] for r in report["runs"]] == ["succeeded"] * 3
    assert sum(r["candidate"] for r in report["replies"]) == 4


def test_stats_summarises_every_conversation(cli: Cli, tmp_path: Path, fixtures_dir: Path) -> None:
    code, _, err = cli("score", "--quiet", *_files(tmp_path, fixtures_dir))
    assert code == 0, err
    code, out, err = cli("stats")
    assert code == 0, err
    assert "CONVERSATION" in out and "ABOVE THRESHOLD" in out
    for conversation in ("batch-a", "batch-b"):
        assert any(line.split()[:1] == [conversation] for line in out.splitlines())
    total = out.splitlines()[-1]
    assert total.startswith("total: 3 conversations · ") and " · 4 above threshold" in total
    code, out, _ = cli("stats", "--json")
    stats = json.loads(out)
    assert len(stats["conversations"]) == 3
    totals = stats["totals"]
    assert totals["conversations"] == 3 and totals["responses_above_threshold"] == 4
    assert totals["max_divergence"] == max(c["max_divergence"] for c in stats["conversations"])
    assert totals["errors"] == 0
