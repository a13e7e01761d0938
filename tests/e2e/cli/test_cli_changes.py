"""`ftreview candidates` and `approve` on candidates that would change what the model was
taught, against a real Review (gRPC, SQLite, in this process, its Scorer the integration
tests' stand-in, a fact trained through a real HTTP receiver): `--json` gains
`supersedes`, `conflicts_with` and `change` (and keeps every other key), the table marks
the rows and keeps conflicting ones together at 80 columns, and approving a conflicting
candidate is refused in one line (exit 2) unless --yes, which rejects the others "superseded
by ID" (two of one group at once: refused). One test (`model`) scores agent-written
conversations on the real model through `ftreview serve` (conftest's `cli`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from ftreview.core.wire import to_timestamp
from ftreview.v1 import conversation_pb2
from ftreview.v1 import review_pb2 as S

from review_service.app.config import ConfigFile
from tests.e2e.cli.chats import FACTS, chat, write_chat
from tests.e2e.cli.conftest import AsyncCli, threaded_cli
from tests.integration.review.review_support import (
    BASE_NS,
    Receiver,
    ReviewUnderTest,
    RunningFakeScorer,
    leaf,
    memory_branch,
    serve_fake_scorer,
    serve_receiver,
    until_none_in_training,
)

OLD, NEW, CAT, OTHER = (BASE_NS + i * 1_000_000 for i in (1, 2, 3, 4))
REAL_NS = 1_781_000_000_000_000_000
CHATS = {
    OLD: ("old", "User's dentist appointment is on 18 March at 14:30.", "On 18 March at 2:30 pm."),
    NEW: ("new", "User moved the dentist appointment to 20 March.", "It's on 20 March now."),
    CAT: ("cat", "The user's cat is named Biscuit.", "Your cat is Biscuit."),
    OTHER: ("other", "The user's appointment with the dentist is on 22 March.", "On March 22nd."),
}  # fmt: skip
KEYS_BEFORE = {
    "timestamp_ns", "timestamp", "conversation_id", "status", "divergence", "peak", "content",
    "alternate", "reject_reason", "scored_at", "decided_at", "question", "memories",
    "send_error", "job_id", "grounding", "grounding_spans",
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as state:
        yield state


@pytest.fixture
async def scorer() -> AsyncIterator[RunningFakeScorer]:
    async with serve_fake_scorer() as running:
        yield running


@pytest.fixture
async def stub_review(tmp_path: Path, scorer: RunningFakeScorer) -> AsyncIterator[ReviewUnderTest]:
    running = ReviewUnderTest(tmp_path / "home", scorer.address)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def stub_cli(
    stub_review: ReviewUnderTest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncCli:
    return threaded_cli(stub_review.port, capsys, monkeypatch)


async def ingest(review: ReviewUnderTest, scorer: RunningFakeScorer, ts: int) -> None:
    cid, memory, reply = CHATS[ts]
    scorer.scorer.divergence[reply] = 2.0
    conv = conversation_pb2.Conversation(id=cid)
    conv.nodes.append(leaf(conversation_pb2.ROLE_SYSTEM, "You are helpful.", ts - 10))
    conv.nodes.append(memory_branch(leaf(conversation_pb2.ROLE_SYSTEM, memory, ts - 9)))
    conv.nodes.append(leaf(conversation_pb2.ROLE_USER, "When is it?", ts - 1))
    conv.nodes.append(leaf(conversation_pb2.ROLE_ASSISTANT, reply, ts))
    await review.ingest_and_wait(conv)


@pytest.fixture
async def queue(
    stub_review: ReviewUnderTest, scorer: RunningFakeScorer, receiver: Receiver
) -> None:
    """OLD trained (live); NEW, CAT and OTHER pending: NEW and OTHER move OLD's appointment
    to two other dates."""
    config = ConfigFile(stub_review.config_path)
    config.set_value("finetune_url", receiver.url)
    config.set_value("finetune_retries", 0)
    await ingest(stub_review, scorer, OLD)
    await stub_review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(OLD)]))
    await stub_review.stub.Send(S.SendRequest())
    await until_none_in_training(stub_review.stub)
    for ts in (NEW, CAT, OTHER):
        await ingest(stub_review, scorer, ts)


async def test_candidates_json_gains_what_each_would_change(
    stub_cli: AsyncCli, queue: None
) -> None:
    code, out, err = await stub_cli("candidates", "--json", "--order", "time")
    assert code == 0, err
    shown = {c["timestamp_ns"]: c for c in json.loads(out)["candidates"]}
    assert set(shown) == {NEW, CAT, OTHER}
    for c in shown.values():
        assert set(c) == KEYS_BEFORE | {"supersedes", "conflicts_with", "change"}
    assert shown[NEW]["supersedes"] == OLD and shown[OTHER]["supersedes"] == OLD
    assert shown[NEW]["conflicts_with"] == [OTHER]
    assert shown[OTHER]["conflicts_with"] == [NEW]
    assert shown[NEW]["change"] == "18 March 14:30 -> 20 March"
    assert shown[CAT] | {"supersedes": None, "conflicts_with": [], "change": ""} == shown[CAT]


async def test_the_table_marks_and_groups_conflicting_rows_at_80_columns(
    stub_cli: AsyncCli, queue: None
) -> None:
    # Newest first: OTHER, CAT, NEW; the conflicting pair is drawn together.
    code, out, err = await stub_cli("candidates", "--order", "time")
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    rows = [line for line in lines if line.startswith(str(BASE_NS)[:6])]
    assert [int(r.split()[0]) for r in rows] == [OTHER, NEW, CAT]
    assert "pending »×" in rows[0] and "pending »×" in rows[1]
    assert "»" not in rows[2] and "×" not in rows[2]
    assert lines[-3:] == [
        f"» {OTHER} supersedes {OLD}: 18 March 14:30 -> 22 March",
        f"× {OTHER} conflicts with {NEW}",
        f"» {NEW} supersedes {OLD}: 18 March 14:30 -> 20 March",
    ]


async def test_approving_a_conflicting_candidate_asks_for_yes_then_supersedes_the_others(
    stub_cli: AsyncCli, queue: None
) -> None:
    code, out, err = await stub_cli("approve", str(NEW))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert f"{NEW} conflicts with {OTHER} (18 March 14:30 -> 20 March)" in line
    assert "approving rejects it as superseded" in line and line.endswith("run again with --yes")
    code, out, err = await stub_cli("candidates", "--json", "--status", "pending")
    assert {c["timestamp_ns"] for c in json.loads(out)["candidates"]} == {NEW, CAT, OTHER}

    code, out, err = await stub_cli("approve", str(NEW), "--yes")
    assert code == 0, err
    assert out.splitlines() == [
        f"{NEW}  approved  (approved)",
        f"{OTHER}  rejected  (superseded by {NEW})",
    ]
    code, out, err = await stub_cli("decisions", "--json")
    newest = json.loads(out)["decisions"][0]
    assert newest["status"] == "rejected" and newest["reason"] == f"superseded by {NEW}"
    assert newest["reviewer"] == "ann"

    code, out, err = await stub_cli("approve", str(CAT), "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["candidates"][0]["conflicts_with"] == [] and shown["superseded"] == []


async def test_approving_two_of_one_conflict_group_is_refused(
    stub_cli: AsyncCli, queue: None
) -> None:
    for args in ((str(NEW), str(OTHER), "--yes"), ("--all", "--yes")):
        code, out, err = await stub_cli("approve", *args)
        assert code == 2, args
        (line,) = err.splitlines()
        assert f"{NEW} and {OTHER} conflict" in line
    code, out, err = await stub_cli("candidates", "--json", "--status", "approved")
    assert json.loads(out)["candidates"] == []


async def test_bulk_approve_with_yes_rejects_each_group_s_others(
    stub_cli: AsyncCli, queue: None
) -> None:
    code, out, err = await stub_cli("approve", str(OTHER), str(CAT), "--yes", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert {c["timestamp_ns"] for c in shown["candidates"]} == {OTHER, CAT}
    (loser,) = shown["superseded"]
    assert loser["timestamp_ns"] == NEW and loser["reject_reason"] == f"superseded by {OTHER}"


@pytest.mark.model
def test_on_the_real_model_only_the_changed_fact_conflicts(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    """Two conversations with six memories each, as an agent writes them, scored by the
    real model (its attribution decides which memory each reply leaned on most): they
    agree on five facts and name the cat differently, so only the two cat replies
    conflict."""
    renamed = [
        (fact.replace("Biscuit", "Mimi"), question, reply.replace("Biscuit", "Mimi"))
        for fact, question, reply in FACTS
    ]
    files = [
        write_chat(tmp_path / "a.json", chat("chat-a", REAL_NS)),
        write_chat(tmp_path / "b.json", chat("chat-b", REAL_NS + 1_000_000, renamed)),
    ]
    code, _, err = cli("score", "--quiet", *map(str, files))
    assert code == 0, err
    code, out, err = cli("candidates", "--json")
    assert code == 0, err
    shown = {c["timestamp_ns"]: c for c in json.loads(out)["candidates"]}
    biscuit = REAL_NS + 12  # reply 0 of each chat: the cat's name
    mimi = REAL_NS + 1_000_000 + 12
    assert shown[biscuit]["content"] == "Your cat is named Biscuit."
    assert shown[mimi]["content"] == "Your cat is named Mimi."
    conflicting = {ts: c["conflicts_with"] for ts, c in shown.items() if c["conflicts_with"]}
    assert conflicting == {biscuit: [mimi], mimi: [biscuit]}
    assert shown[biscuit]["change"] == shown[mimi]["change"] == "Biscuit -> Mimi"
    assert all(c["supersedes"] is None for c in shown.values())


async def test_order_conversation_sorts_as_the_review_screen_does(
    stub_cli: AsyncCli, queue: None
) -> None:
    code, out, err = await stub_cli("candidates", "--json", "--order", "conversation")
    assert code == 0, err
    shown = [(c["conversation_id"], c["timestamp_ns"]) for c in json.loads(out)["candidates"]]
    assert shown == [("cat", CAT), ("new", NEW), ("other", OTHER)]
