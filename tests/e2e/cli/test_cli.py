"""The `ftreview` command as a user runs it, against real services.

Each test has a Review of its own (see `conftest.py`), so the tests pass in any order and
alone. Most run the command in this process; the subprocess tests cover what only a real
process shows: exit codes, a reader that leaves the pipe, SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from ftreview.client import ScorerClient

from tests.e2e.cli.conftest import FTREVIEW, Cli, Lines, Review, Stack, run_ftreview, start_serve

pytestmark = pytest.mark.model

BISCUIT_REPLY_NS = 1772355611000000007  # "Your cat is named Biscuit." in biscuit.json


def ok(cli: Cli, *args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, err
    return out


def as_json(cli: Cli, *args: str) -> Any:
    return json.loads(ok(cli, *args, "--json"))


@pytest.fixture
def scored(cli: Cli, fixtures_dir: Path) -> Cli:
    """The fresh Review with biscuit.json scored: one pending candidate."""
    ok(cli, "score", "--quiet", str(fixtures_dir / "biscuit.json"))
    return cli


def test_score_shows_each_reply_with_its_divergence_or_why_not(
    cli: Cli, fixtures_dir: Path
) -> None:
    report = as_json(cli, "score", str(fixtures_dir / "biscuit.json"))
    replies = {r["timestamp_ns"]: r for r in report["replies"]}
    biscuit = replies[BISCUIT_REPLY_NS]
    assert biscuit["content"] == "Your cat is named Biscuit."
    assert biscuit["candidate"] is True and biscuit["status"] == "pending"
    assert biscuit["divergence"] > 0.5 and biscuit["peak"] >= biscuit["divergence"]
    others = [r for ns, r in replies.items() if ns != BISCUIT_REPLY_NS]
    assert others and all(r["candidate"] is False for r in others)
    assert all(r["reason"] == "below_threshold" for r in others)
    # Real numbers for every scored reply, not only for the candidate.
    assert all(isinstance(r["divergence"], float) and r["divergence"] < 0.5 for r in others)
    assert all(isinstance(r["peak"], float) for r in others)
    (run_report,) = report["runs"]
    assert run_report["state"] == "succeeded"
    assert run_report["stats"]["responses_seen"] == len(replies)
    assert run_report["stats"]["responses_above_threshold"] == 1


def test_score_table_and_progress_for_people(cli: Cli, fixtures_dir: Path) -> None:
    code, out, err = cli("score", str(fixtures_dir / "old-log-unset-timestamps.json"))
    assert code == 0, err
    assert "no: unset timestamp" in out and "DIVERGENCE" in out
    # Not a terminal: the batch's progress is one line when it starts, one when it ends.
    assert err.splitlines()[0] == "scoring 1 conversation"
    assert err.splitlines()[1].startswith("scored 1 conversation in ")
    assert err.count("\n") == 2
    assert out.splitlines()[-1].startswith("total: 1 conversation · 2 replies")


def test_score_again_shows_what_the_review_kept_also_without_a_timestamp(
    cli: Cli, fixtures_dir: Path
) -> None:
    path = str(fixtures_dir / "old-log-unset-timestamps.json")
    ok(cli, "score", "--quiet", path)
    # Nothing is new the second time: what is shown is what the Review kept from the first
    # pass, for the reply without a timestamp too.
    report = as_json(cli, "score", path)
    old, timed = report["replies"]
    assert old["content"].startswith("Ines is a luthier") and old["timestamp_ns"] == 0
    assert (old["candidate"], old["reason"]) == (False, "unset_timestamp")
    for reply in (old, timed):
        assert isinstance(reply["divergence"], float) and isinstance(reply["peak"], float)
        assert reply["peak"] >= reply["divergence"]
    assert timed["timestamp_ns"] == 1772625601000000001
    assert timed["candidate"] is True or timed["reason"] == "below_threshold"
    (run_report,) = report["runs"]
    assert run_report["stats"]["skipped_unset_timestamp"] == 1


def test_score_no_wait_returns_the_activity(cli: Cli, fixtures_dir: Path) -> None:
    report = as_json(cli, "score", "--no-wait", str(fixtures_dir / "no-memories.json"))
    (ingested,) = report["runs"]
    assert ingested["activity_id"] and ingested["conversation_id"]


def test_a_batch_scores_every_file_it_can_and_names_each_one_refused(
    cli: Cli, fixtures_dir: Path, tmp_path: Path
) -> None:
    """One unreadable file and one conversation whose reply timestamp another conversation
    holds: both are named on stderr with why, the good files are stored, the status is 1."""
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "b", "nodes": [', encoding="utf-8")
    biscuit = json.loads((fixtures_dir / "biscuit.json").read_text(encoding="utf-8"))
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({**biscuit, "id": "someone-else"}), encoding="utf-8")
    files = [str(fixtures_dir / "biscuit.json"), str(broken), str(clash),
             str(fixtures_dir / "no-memories.json")]  # fmt: skip
    code, out, err = cli("score", "--json", *files)
    assert code == 1, err
    runs = {Path(r["file"]).name: r for r in json.loads(out)["runs"]}
    assert runs["biscuit.json"]["state"] == "succeeded"
    assert runs["no-memories.json"]["state"] in ("succeeded", "nothing_to_score")
    assert (
        runs["broken.json"]["state"] == "refused" and "broken.json" in runs["broken.json"]["error"]
    )
    assert runs["clash.json"]["state"] == "refused"
    assert "clash.json" in runs["clash.json"]["error"] and "biscuit" in runs["clash.json"]["error"]
    refusals = [line for line in err.splitlines() if line.startswith("ftreview: refused")]
    assert len(refusals) == 2 and "broken.json" in refusals[0] and "clash.json" in refusals[1]
    assert "2 of 4 conversations not scored" in err
    stored = as_json(cli, "candidates")["candidates"]
    assert BISCUIT_REPLY_NS in [c["timestamp_ns"] for c in stored]


def test_candidates_json_lists_the_candidate(scored: Cli) -> None:
    (biscuit,) = as_json(scored, "candidates")["candidates"]
    assert biscuit["timestamp_ns"] == BISCUIT_REPLY_NS
    assert biscuit["status"] == "pending"
    assert biscuit["content"] == "Your cat is named Biscuit."
    assert biscuit["divergence"] > 0.5
    # "Biscuit", the word its memory drove, is in that memory.
    assert biscuit["grounding"] == "supported"
    assert "Biscuit" in [s["text"] for s in biscuit["grounding_spans"]]
    human = ok(scored, "candidates")
    assert str(BISCUIT_REPLY_NS) in human and "pending" in human
    assert "Your cat is named Biscuit." in human
    assert "≠" not in human and "+ says more" not in human
    assert as_json(scored, "candidates", "--grounding", "supported")["candidates"]
    assert ok(scored, "candidates", "--grounding", "contradicts_memory") == "no candidates match\n"


def test_no_candidates_says_why(cli: Cli, fixtures_dir: Path) -> None:
    ok(cli, "score", "--quiet", str(fixtures_dir / "no-memories.json"))
    shown = ok(cli, "candidates")
    assert shown.startswith("no candidates") and "max divergence" in shown


def test_reject_undo_approve_change_the_status(scored: Cli) -> None:
    ns = str(BISCUIT_REPLY_NS)
    rejected = as_json(scored, "reject", ns, "--reason", "not sure")["candidates"]
    assert rejected[0]["status"] == "rejected" and rejected[0]["reject_reason"] == "not sure"
    assert as_json(scored, "undo", ns)["candidates"][0]["status"] == "pending"
    assert as_json(scored, "approve", ns)["candidates"][0]["status"] == "approved"
    statuses = {c["timestamp_ns"]: c["status"] for c in as_json(scored, "candidates")["candidates"]}
    assert statuses == {BISCUIT_REPLY_NS: "approved"}
    assert f"{ns}  back to pending  (pending)" in ok(scored, "undo", ns)


def test_alternate_is_what_the_model_says_without_memories(scored: Cli) -> None:
    shown = as_json(scored, "alternate", str(BISCUIT_REPLY_NS))["candidate"]
    assert shown["alternate"].strip()
    assert shown["alternate"] != shown["content"]


def test_threshold_up_down_and_value(cli: Cli) -> None:
    start = as_json(cli, "threshold")["threshold"]
    assert as_json(cli, "threshold", "up")["threshold"] == pytest.approx(start * 10)
    assert as_json(cli, "threshold", "down")["threshold"] == pytest.approx(start)
    config = as_json(cli, "threshold", "0.25")
    assert config["threshold"] == 0.25
    assert Path(config["config_path"]).read_text().count("0.25") == 1
    code, _, err = cli("threshold", "-1")
    assert code == 1 and err.count("\n") == 1
    assert as_json(cli, "threshold")["threshold"] == 0.25


def test_stats_json_explains_the_last_run(scored: Cli) -> None:
    stats = as_json(scored, "stats")
    for field in ("responses_seen", "responses_above_threshold", "max_divergence",
                  "threshold", "skipped_unset_timestamp", "error", "taken_at"):  # fmt: skip
        assert field in stats
    assert (stats["pending"], stats["responses_above_threshold"]) == (1, 1)
    assert "threshold" in ok(scored, "stats")


def test_global_flags_also_after_the_command(
    scored: Cli, review: Review, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FTREVIEW_REVIEW_ADDR")
    assert as_json(scored, "stats", "--review", review.address)["pending"] == 1
    assert as_json(scored, "--review", review.address, "stats")["pending"] == 1
    code, _, err = scored("stats")  # no address at all: the default, where nothing runs
    assert code == 3 and "not running at 127.0.0.1:50052" in err


def test_send_without_an_endpoint_says_how_to_set_one(scored: Cli) -> None:
    ok(scored, "approve", str(BISCUIT_REPLY_NS))
    code, _, err = scored("send")
    assert code == 1
    assert "finetune_url" in err and err.count("\n") == 1


def test_watch_prints_a_decision_made_elsewhere(scored: Cli, review: Review) -> None:
    watcher = subprocess.Popen(
        [*FTREVIEW, "watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "FTREVIEW_REVIEW_ADDR": review.address},
    )  # fmt: skip
    out, err = Lines(watcher.stdout), Lines(watcher.stderr)
    try:
        deadline = time.monotonic() + 60
        ready = err.next(deadline)
        assert ready and "watching" in ready
        ok(scored, "reject", str(BISCUIT_REPLY_NS))
        seen = None
        while seen is None:
            line = out.next(deadline)
            assert line, "watch printed nothing for the rejection"
            event = json.loads(line)
            if event["type"] == "candidate" and event["event"] == "status_changed":
                seen = event
        assert seen["candidate"]["timestamp_ns"] == BISCUIT_REPLY_NS
        assert seen["candidate"]["status"] == "rejected"
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)


def test_review_without_a_terminal_prints_candidates_and_stats(scored: Cli) -> None:
    shown = ok(scored, "review")
    assert str(BISCUIT_REPLY_NS) in shown and "threshold" in shown


def test_export_writes_training_examples_and_can_mark_them_trained(
    scored: Cli, tmp_path: Path
) -> None:
    ok(scored, "approve", str(BISCUIT_REPLY_NS))
    out = tmp_path / "train.jsonl"
    summary = as_json(scored, "export", "--format", "openai", "-o", str(out))
    assert summary["count"] == 1 and summary["timestamps_ns"] == [BISCUIT_REPLY_NS]
    (example,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert example["messages"][-1]["content"] == "Your cat is named Biscuit."
    trl = ok(scored, "export", "--format", "trl")
    assert json.loads(trl.splitlines()[0])["completion"]
    assert "nothing trained yet" in ok(scored, "trained")
    as_json(scored, "export", "--mark-trained", "-o", str(out))
    trained = as_json(scored, "trained")["trained"]
    assert [t["timestamp_ns"] for t in trained] == [BISCUIT_REPLY_NS]
    assert trained[0]["destination"].startswith("export")
    assert str(BISCUIT_REPLY_NS) in ok(scored, "trained")


def test_unknown_id_is_not_found(cli: Cli) -> None:
    code, _, err = cli("approve", "123")
    assert code == 1
    assert err.startswith("ftreview: not found") and err.count("\n") == 1


# ---- as a process: exit codes, pipes, signals -------------------------------------------


def test_a_bad_id_or_file_is_refused_with_where_and_what(review: Review, tmp_path: Path) -> None:
    assert run_ftreview(review.address, "approve", "abc", check=False).returncode == 2
    bad = tmp_path / "bad.jsonl"
    good = '{"nodes": [{"role": "user", "content": "hi"}]}'
    bad.write_text(good + '\n{"nodes": [{"role": "wizard", "content": "x"}]}\n')
    result = run_ftreview(review.address, "score", str(bad), check=False)
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr and "wizard" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_service_that_is_not_running_is_named_with_how_to_start_it() -> None:
    for command in (["candidates"], ["stats", "--json"], ["approve", "1"]):
        result = run_ftreview("127.0.0.1:9", *command, check=False)
        assert result.returncode == 3, command
        assert "Review service is not running at 127.0.0.1:9" in result.stderr
        assert "ftreview serve" in result.stderr
        assert result.stderr.count("\n") == 1


def test_a_reader_that_leaves_the_pipe_is_not_an_error(review: Review) -> None:
    process = subprocess.Popen(
        [*FTREVIEW, "threshold", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "FTREVIEW_REVIEW_ADDR": review.address},
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command can write: its write finds no reader
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, err
    assert err == ""


def test_a_stock_grpc_client_calls_both_services_through_reflection(stack: Stack) -> None:
    # scripts/setup installs buf (npm @bufbuild/buf) into .tools/; scripts/test puts it on
    # the PATH. A missing one is a broken environment, not a reason to skip.
    assert shutil.which("buf"), "buf is not installed (scripts/setup installs it)"

    def curl(address: str, method: str) -> Any:
        result = subprocess.run(
            ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge",
             "--data", "{}", f"http://{address}/{method}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    info = curl(stack.scorer, "ftreview.v1.Scorer/GetInfo")
    assert info["backend"] == "local"
    config = curl(stack.review, "ftreview.v1.Review/GetConfig")
    assert "threshold" in config["config"]


def test_serve_with_a_running_scorer_stops_its_review_on_sigterm(
    stack: Stack, tmp_path: Path
) -> None:
    serve = start_serve("--scorer", stack.scorer, "--home", str(tmp_path))
    addresses = serve.addresses
    try:
        assert addresses["scorer"] == stack.scorer
        assert run_ftreview(addresses["review"], "stats").returncode == 0
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=60) == 0
    finally:
        serve.kill()
    assert run_ftreview(addresses["review"], "stats", check=False).returncode == 3
    with ScorerClient(stack.scorer) as scorer:  # not ours to stop
        assert scorer.health() == "SERVING"
