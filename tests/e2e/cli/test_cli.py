"""The `ftreview` command as a user runs it: a subprocess against real services.

One `ftreview serve` (both services, the embedded model, a temporary home, port 0) is
started for the module and shared; the tests run in file order, like a session at a
terminal: score, list, decide, alternate, export, threshold, stats, watch, errors, and
finally stop the services with SIGTERM.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.model

FTREVIEW = [sys.executable, "-m", "ftreview"]
BISCUIT_REPLY_NS = 1772355611000000007  # "Your cat is named Biscuit." in biscuit.json
STARTUP_S = 300


@dataclass
class Services:
    process: subprocess.Popen[str]
    scorer: str
    review: str
    home: Path


class Lines:
    """A child's pipe read on a thread, so a test can wait for a line with a deadline
    (select() on a buffered text pipe misses lines already in the buffer)."""

    def __init__(self, stream: Any) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def next(self, deadline: float) -> str | None:
        """The next line, or None at end of stream or at the deadline."""
        try:
            return self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home = tmp_path_factory.mktemp("home")
    process = subprocess.Popen(
        [*FTREVIEW, "--home", str(home), "serve", "--quiet",
         "--scorer-listen", "127.0.0.1:0", "--review-listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines = Lines(process.stdout)
    addresses: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_S
    while len(addresses) < 2:
        line = lines.next(deadline)
        assert line, "ftreview serve did not report both addresses"
        match = re.match(r"(scorer|review) serving on (\S+)", line)
        if match:
            addresses[match.group(1)] = match.group(2)
    yield Services(process, addresses["scorer"], addresses["review"], home)
    if process.poll() is None:
        process.kill()
        process.wait()


def run(services: Services, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FTREVIEW_SCORER_ADDR": services.scorer,
        "FTREVIEW_REVIEW_ADDR": services.review,
    }
    result = subprocess.run(
        [*FTREVIEW, *args], capture_output=True, text=True, env=env, timeout=600
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def run_json(services: Services, *args: str) -> Any:
    return json.loads(run(services, *args, "--json").stdout)


def test_score_shows_each_reply_with_its_divergence_or_why_not(
    services: Services, fixtures_dir: Path
) -> None:
    report = run_json(services, "score", str(fixtures_dir / "biscuit.json"))
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


def test_score_table_and_progress_for_people(services: Services, fixtures_dir: Path) -> None:
    result = run(services, "score", str(fixtures_dir / "old-log-unset-timestamps.json"))
    assert "no: unset timestamp" in result.stdout
    # Not a terminal: the progress bar writes the start and the end of the activity.
    assert "started:" in result.stderr and "succeeded:" in result.stderr


def test_score_json_gives_numbers_for_every_reply_also_without_a_timestamp(
    services: Services, fixtures_dir: Path
) -> None:
    # Scored by the test above already, so nothing is new: what is shown is what the Review
    # kept from that pass, for the reply without a timestamp too.
    report = run_json(services, "score", str(fixtures_dir / "old-log-unset-timestamps.json"))
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


def test_score_no_wait_returns_the_activity(services: Services, fixtures_dir: Path) -> None:
    report = run_json(services, "score", "--no-wait", str(fixtures_dir / "no-memories.json"))
    (ingested,) = report["runs"]
    assert ingested["activity_id"] and ingested["conversation_id"]


def test_candidates_json_lists_the_candidate(services: Services) -> None:
    listed = run_json(services, "candidates")["candidates"]
    biscuit = next(c for c in listed if c["timestamp_ns"] == BISCUIT_REPLY_NS)
    assert biscuit["status"] == "pending"
    assert biscuit["content"] == "Your cat is named Biscuit."
    assert biscuit["divergence"] > 0.5
    human = run(services, "candidates").stdout
    assert str(BISCUIT_REPLY_NS) in human and "pending" in human


def test_reject_undo_approve_change_the_status(services: Services) -> None:
    ns = str(BISCUIT_REPLY_NS)
    rejected = run_json(services, "reject", ns, "--reason", "not sure")["candidates"]
    assert rejected[0]["status"] == "rejected" and rejected[0]["reject_reason"] == "not sure"
    assert run_json(services, "undo", ns)["candidates"][0]["status"] == "pending"
    assert run_json(services, "approve", ns)["candidates"][0]["status"] == "approved"
    statuses = {
        c["timestamp_ns"]: c["status"] for c in run_json(services, "candidates")["candidates"]
    }
    assert statuses[BISCUIT_REPLY_NS] == "approved"


def test_alternate_is_what_the_model_says_without_memories(services: Services) -> None:
    shown = run_json(services, "alternate", str(BISCUIT_REPLY_NS))["candidate"]
    assert shown["alternate"].strip()
    assert shown["alternate"] != shown["content"]


def test_threshold_up_down_and_value(services: Services) -> None:
    start = run_json(services, "threshold")["threshold"]
    assert run_json(services, "threshold", "up")["threshold"] == pytest.approx(start * 10)
    assert run_json(services, "threshold", "down")["threshold"] == pytest.approx(start)
    config = run_json(services, "threshold", "0.25")
    assert config["threshold"] == 0.25
    assert Path(config["config_path"]).read_text().count("0.25") == 1
    run(services, "threshold", str(start))
    refused = run(services, "threshold", "-1", check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert run_json(services, "threshold")["threshold"] == pytest.approx(start)


def test_stats_json_explains_the_last_run(services: Services) -> None:
    stats = run_json(services, "stats")
    for field in ("responses_seen", "responses_above_threshold", "max_divergence",
                  "threshold", "skipped_unset_timestamp", "error", "taken_at"):  # fmt: skip
        assert field in stats
    assert stats["approved"] >= 1
    assert "threshold" in run(services, "stats").stdout


def test_send_without_an_endpoint_says_how_to_set_one(services: Services) -> None:
    result = run(services, "send", check=False)
    assert result.returncode == 1
    assert "finetune_url" in result.stderr and "Traceback" not in result.stderr


def test_watch_prints_a_decision_made_elsewhere(services: Services) -> None:
    env = {**os.environ, "FTREVIEW_REVIEW_ADDR": services.review,
           "FTREVIEW_SCORER_ADDR": services.scorer}  # fmt: skip
    watcher = subprocess.Popen(
        [*FTREVIEW, "watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    out, err = Lines(watcher.stdout), Lines(watcher.stderr)
    try:
        deadline = time.monotonic() + 60
        ready = err.next(deadline)
        assert ready and "watching" in ready
        run(services, "reject", str(BISCUIT_REPLY_NS))
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
    run(services, "approve", str(BISCUIT_REPLY_NS))


def test_review_without_a_terminal_prints_candidates_and_stats(services: Services) -> None:
    shown = run(services, "review").stdout
    assert str(BISCUIT_REPLY_NS) in shown and "threshold" in shown


def test_export_writes_training_examples_and_can_mark_them_trained(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "train.jsonl"
    summary = run_json(services, "export", "--format", "openai", "-o", str(out))
    assert summary["count"] == 1 and summary["timestamps_ns"] == [BISCUIT_REPLY_NS]
    (example,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert example["messages"][-1]["content"] == "Your cat is named Biscuit."
    trl = run(services, "export", "--format", "trl").stdout
    assert json.loads(trl.splitlines()[0])["completion"]
    run_json(services, "export", "--mark-trained", "-o", str(out))
    trained = run_json(services, "trained")["trained"]
    assert [t["timestamp_ns"] for t in trained] == [BISCUIT_REPLY_NS]
    assert trained[0]["destination"].startswith("export")


def test_unknown_id_is_not_found(services: Services) -> None:
    result = run(services, "approve", "123", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("ftreview: not found")
    assert result.stderr.count("\n") == 1


def test_a_bad_id_or_file_is_refused_with_where_and_what(
    services: Services, tmp_path: Path
) -> None:
    assert run(services, "approve", "abc", check=False).returncode == 2
    bad = tmp_path / "bad.jsonl"
    good = '{"nodes": [{"role": "user", "content": "hi"}]}'
    bad.write_text(good + '\n{"nodes": [{"role": "wizard", "content": "x"}]}\n')
    result = run(services, "score", str(bad), check=False)
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr and "wizard" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_service_that_is_not_running_is_named_with_how_to_start_it(tmp_path: Path) -> None:
    down = Services(None, "127.0.0.1:9", "127.0.0.1:9", tmp_path)  # type: ignore[arg-type]
    for command in (["candidates"], ["stats", "--json"], ["approve", "1"]):
        result = run(down, *command, check=False)
        assert result.returncode == 3, command
        assert "Review service is not running at 127.0.0.1:9" in result.stderr
        assert "ftreview serve" in result.stderr
        assert result.stderr.count("\n") == 1


def test_a_stock_grpc_client_calls_both_services_through_reflection(services: Services) -> None:
    # .ci/run installs buf (npm @bufbuild/buf); a missing one is a broken environment.
    assert shutil.which("buf"), "buf is not installed (npm install -g @bufbuild/buf)"

    def curl(address: str, method: str) -> Any:
        result = subprocess.run(
            ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge",
             "--data", "{}", f"http://{address}/{method}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    info = curl(services.scorer, "ftreview.v1.Scorer/GetInfo")
    assert info["backend"] == "local"
    config = curl(services.review, "ftreview.v1.Review/GetConfig")
    assert "threshold" in config["config"]


def test_serve_stops_both_services_on_sigterm(services: Services) -> None:
    services.process.send_signal(signal.SIGTERM)
    assert services.process.wait(timeout=60) == 0
    result = run(services, "stats", check=False)
    assert result.returncode == 3
