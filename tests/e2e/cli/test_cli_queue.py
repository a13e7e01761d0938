"""Clearing a queue from the command line, against real services: what a candidate carries
(its question, the memories it leaned on), server-side filters, and bulk decisions with
their confirmation."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli.chats import FACTS, chat, write_chat
from tests.e2e.cli.conftest import FTREVIEW, Cli, Review

pytestmark = pytest.mark.model

BASE = 1_780_000_000_000_000_000


def ok(cli: Cli, *args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, err
    return out


def as_json(cli: Cli, *args: str) -> Any:
    return json.loads(ok(cli, *args, "--json"))


@pytest.fixture
def queue(cli: Cli, tmp_path: Path) -> Cli:
    """Two conversations of six memory-dependent replies each, scored: twelve pending."""
    files = [
        write_chat(tmp_path / "a.json", chat("chat-a", BASE)),
        write_chat(tmp_path / "b.json", chat("chat-b", BASE + 1_000_000)),
    ]
    ok(cli, "score", "--quiet", *map(str, files))
    pending = as_json(cli, "candidates", "--status", "pending")["candidates"]
    assert len(pending) == 2 * len(FACTS), [c["content"] for c in pending]
    return cli


def test_a_candidate_carries_its_question_and_the_memories_it_leaned_on(queue: Cli) -> None:
    candidates = as_json(queue, "candidates", "--conversation", "chat-a")["candidates"]
    assert {c["conversation_id"] for c in candidates} == {"chat-a"}
    by_reply = {c["content"]: c for c in candidates}
    for fact, question, reply in FACTS:
        shown = by_reply[reply]
        assert shown["question"] == question
        assert shown["send_error"] == ""
        memories = shown["memories"]
        assert len(memories) == len(FACTS)
        assert set(memories[0]) == {"content", "attribution", "node_path"}
        attributions = [m["attribution"] for m in memories]
        assert attributions == sorted(attributions, reverse=True)
        assert all(m["node_path"].startswith("nodes[") for m in memories)
        assert any(fact in m["content"] for m in memories)
    # The table shows the question where the width leaves room (240 columns in a pipe).
    table = ok(queue, "candidates", "--conversation", "chat-a")
    assert "QUESTION" in table and "What is my cat called?" in table


def test_search_and_divergence_filters_are_applied_by_the_review(queue: Cli) -> None:
    found = as_json(queue, "candidates", "--search", "marisol")["candidates"]
    assert [c["content"] for c in found] == ["Your sister is called Marisol."] * 2
    everything = as_json(queue, "candidates")["candidates"]
    divergences = sorted(c["divergence"] for c in everything)
    middle = divergences[len(divergences) // 2]
    low = as_json(queue, "candidates", "--max", str(middle))["candidates"]
    high = as_json(queue, "candidates", "--min", str(middle))["candidates"]
    assert low and high and len(low) + len(high) == len(everything)
    assert all(c["divergence"] < middle for c in low)
    assert all(c["divergence"] >= middle for c in high)
    none = ok(queue, "candidates", "--search", "no such words anywhere")
    assert none.strip() == "no candidates match"


def test_bulk_reject_below_needs_yes_without_a_terminal(queue: Cli) -> None:
    everything = as_json(queue, "candidates")["candidates"]
    divergences = sorted(c["divergence"] for c in everything)
    cut = divergences[4]  # four are below it
    code, out, err = queue("reject", "--below", str(cut))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "add --yes" in err and "reject 4 pending" in err
    assert len(as_json(queue, "candidates", "--status", "rejected")["candidates"]) == 0
    result = as_json(queue, "reject", "--below", str(cut), "--yes", "--reason", "too weak")
    assert result["count"] == 4 and result["forgotten"] == 0
    assert all(c["status"] == "rejected" for c in result["candidates"])
    assert all(c["reject_reason"] == "too weak" for c in result["candidates"])
    assert all(c["divergence"] < cut for c in result["candidates"])
    pending = as_json(queue, "candidates", "--status", "pending")["candidates"]
    assert len(pending) == len(everything) - 4 and all(c["divergence"] >= cut for c in pending)


def test_approve_all_of_one_conversation(queue: Cli) -> None:
    shown = ok(queue, "approve", "--all", "--conversation", "chat-b", "--yes")
    assert shown.strip() == f"approved {len(FACTS)} candidates"
    statuses = {
        (c["conversation_id"], c["status"]) for c in as_json(queue, "candidates")["candidates"]
    }
    assert statuses == {("chat-a", "pending"), ("chat-b", "approved")}
    code, _, err = queue("approve", "--all", "--conversation", "chat-b", "--yes")
    assert code == 0 and "no pending candidates of conversation chat-b" in err


def test_rejecting_more_than_the_list_keeps_says_so_once(queue: Cli) -> None:
    code, out, err = queue("reject", "--all", "--yes")
    assert code == 0 and out.strip() == f"rejected {2 * len(FACTS)} candidates"
    dropped = 2 * len(FACTS) - 10
    assert err.count("left the list") == 1
    assert f"{dropped} rejected candidates left the list" in err
    assert len(as_json(queue, "candidates", "--status", "rejected")["candidates"]) == 10


def test_every_decision_stays_in_the_history_with_its_reviewer_and_reason(
    queue: Cli,
) -> None:
    """The list keeps 10 rejections; the history keeps every decision, newest first."""
    ok(queue, "reject", "--all", "--yes", "--reason", "not a fact", "--reviewer", "ana")
    assert len(as_json(queue, "candidates", "--status", "rejected")["candidates"]) == 10
    kept = as_json(queue, "candidates", "--status", "rejected")["candidates"][0]["timestamp_ns"]
    ok(queue, "undo", str(kept), "--reviewer", "ben")
    history = as_json(queue, "decisions")["decisions"]
    assert len(history) == 2 * len(FACTS) + 1
    undone, *rejections = history
    assert (undone["timestamp_ns"], undone["status"], undone["reviewer"]) == (
        kept,
        "pending",
        "ben",
    )
    assert {(d["status"], d["reason"], d["reviewer"]) for d in rejections} == {
        ("rejected", "not a fact", "ana")
    }
    assert all(d["content"] and d["decided_at"].endswith("Z") for d in history)
    assert len(as_json(queue, "decisions", "--limit", "3")["decisions"]) == 3
    table = ok(queue, "decisions")
    assert str(kept) in table and "not a fact" in table and "ana" in table

    # An approval's note is its reason in the history; one too long is refused, one line.
    ok(queue, "approve", str(kept), "--note", "checked  with the user", "--reviewer", "cy")
    (approved,) = as_json(queue, "decisions", "--limit", "1")["decisions"]
    assert (approved["timestamp_ns"], approved["status"], approved["reason"]) == (
        kept,
        "approved",
        "checked with the user",
    )
    code, out, err = queue("approve", str(kept), "--note", "x" * 2001)
    assert code != 0 and out == "" and len(err.strip().splitlines()) == 1 and "note" in err


def test_ids_and_a_bulk_flag_together_are_refused(queue: Cli) -> None:
    code, _, err = queue("reject", "123", "--all", "--yes")
    assert code == 2 and "not both" in err
    code, _, err = queue("approve")
    assert code == 2 and "--all" in err


def test_on_a_terminal_it_asks_and_a_no_changes_nothing(queue: Cli, review: Review) -> None:
    def ask(answer: bytes) -> tuple[int, str]:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [*FTREVIEW, "reject", "--all", "--conversation", "chat-a"],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "FTREVIEW_REVIEW_ADDR": review.address},
        )  # fmt: skip
        os.close(follower)
        try:
            os.write(leader, answer)
            out, err = process.communicate(timeout=120)
        finally:
            os.close(leader)
        assert f"reject {len(FACTS)} pending candidates of conversation chat-a? [y/N]" in err
        # Listed before the question: every row a "yes" would change, its ID whole.
        listed = err[: err.index("[y/N]")]
        assert all(str(c["timestamp_ns"]) in listed for c in chat_a)
        return process.returncode, out

    chat_a = as_json(queue, "candidates", "--conversation", "chat-a")["candidates"]
    assert len(chat_a) == len(FACTS)
    assert ask(b"n\n") == (0, "")
    assert not as_json(queue, "candidates", "--status", "rejected")["candidates"]
    code, out = ask(b"y\n")
    assert code == 0 and out.strip() == f"rejected {len(FACTS)} candidates"
    rejected = as_json(queue, "candidates", "--status", "rejected")["candidates"]
    assert {c["conversation_id"] for c in rejected} == {"chat-a"}
