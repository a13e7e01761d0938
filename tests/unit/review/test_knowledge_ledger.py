"""Knowledge that changes, on the domain alone (real SQLite file, in-memory endpoint): a
trained fact forgotten, superseded by an approved reply (and put back by an undo),
retracted because a later conversation's memory changed it; each retraction committed at
once and told to its destination at Forget, before the next Send's examples, and when the
Review starts, until an answer counts as told (2xx, no route, an export), also after a
crash between the commit and the POST; an ended job's retention checks filling
`comes_back`; a store file of schema 7 opening with every entry live."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from review_fakes import (
    JsonConversations,
    RecordingEndpoint,
    ScriptedTrainer,
    TableScorer,
    ingest,
    job_ended,
    open_review,
)

from review_service.adapters.store_sqlite import SqliteStore
from review_service.app.config import ConfigFile
from review_service.app.review import Review
from review_service.domain.errors import EndpointError, InvalidArgument, NotFound
from review_service.domain.examples import idempotency_key
from review_service.domain.jobs import JobState
from review_service.domain.model import Conversation, KnowledgeState, Message, TrainedEntry
from review_service.domain.ports import RetractReply

URL = "http://trainer.test/finetune"
DAY = 86_400 * 10**9
A_NS = 1_772_000_000_000_000_007
B_NS = A_NS + DAY
C_NS = A_NS + 2 * DAY
OLD = "User's dentist appointment is on 18 March at 14:30"
NEW = "User's dentist appointment is on 20 March"


def talk(cid: str, memory: str, reply: str, ts: int) -> Conversation:
    """One memory, one question, one reply at `ts`."""
    return JsonConversations.make(
        cid,
        [
            Message("system", "You are helpful.", ts - 3, False, "nodes[0]"),
            Message("system", memory, ts - 2, True, "nodes[1].children[0]"),
            Message("user", "When is my dentist appointment?", ts - 1, False, "nodes[2]"),
            Message("assistant", reply, ts, False, "nodes[3]"),
        ],
    )


OLD_TALK = talk("a", OLD, "Your dentist appointment is on 18 March at 14:30.", A_NS)
NEW_TALK = talk("b", NEW, "Your dentist appointment is on 20 March.", B_NS)


@dataclass
class KnowingEndpoint(RecordingEndpoint):
    """The recording endpoint with the retract route: `retract_mode` "ok" (told, job
    `consolidate_job`), "absent" (no route) or "fail" (an error, nothing told)."""

    retract_mode: str = "ok"
    consolidate_job: str = ""
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def post(self, url: str, body: dict[str, Any], timeout: float, retries: int) -> Any:
        self.calls.append(("post", url, {e["idempotency_key"]: "" for e in body["examples"]}))
        return await super().post(url, body, timeout, retries)

    async def retract(
        self, url: str, keys: dict[str, str], timeout: float, retries: int
    ) -> RetractReply:
        self.calls.append(("retract", url, dict(keys)))
        if self.retract_mode == "fail":
            raise EndpointError(f"{url}/retract answered 503: busy (after 1 try)")
        if self.retract_mode == "absent":
            return RetractReply(supported=False)
        return RetractReply(True, set(keys), set(), self.consolidate_job)


@pytest.fixture
def endpoint() -> KnowingEndpoint:
    return KnowingEndpoint(job_id="")  # no job: accepted replies go to the ledger at once


@pytest.fixture
async def review(tmp_path: Path, endpoint: KnowingEndpoint) -> AsyncIterator[Review]:
    ConfigFile(tmp_path / "config.json5").set_value("finetune_url", URL)
    running = open_review(tmp_path, TableScorer(), endpoint)
    yield running
    await running.close()


async def trained(review: Review, conv: Conversation) -> TrainedEntry:
    await ingest(review, conv)
    ts = conv.messages[-1].timestamp_ns
    await review.approve([ts])
    report = await review.send([ts])
    assert report.accepted == [ts]
    return entry(review, ts)


def entry(review: Review, ts: int) -> TrainedEntry:
    return {e.timestamp_ns: e for e in review.trained()}[ts]


async def test_forget_retracts_at_once_and_tells_the_endpoint(
    review: Review, endpoint: KnowingEndpoint, tmp_path: Path
) -> None:
    fact = await trained(review, OLD_TALK)
    assert (fact.state, fact.content, fact.reason) == (
        KnowledgeState.LIVE,
        OLD_TALK.messages[-1].content,
        "",
    )
    assert fact.candidate is not None and fact.candidate.memories

    endpoint.consolidate_job = "ft-12"
    outcome = await review.forget(A_NS, "  the date  was wrong ", "ann")
    assert outcome.entry.state == KnowledgeState.RETRACTED
    assert outcome.entry.reason == "forgotten by ann: the date was wrong"
    assert outcome.entry.retraction_delivered
    assert (outcome.job_id, outcome.delivery_error) == ("ft-12", "")
    assert endpoint.calls[-1] == ("retract", URL, {idempotency_key(A_NS): outcome.entry.reason})
    assert "ft-12" in {j.id for j in review.jobs()}

    again = await review.forget(A_NS, "twice", "bob")
    assert again.entry == outcome.entry and again.job_id == ""
    assert sum(call[0] == "retract" for call in endpoint.calls) == 1

    await review.close()
    reopened = open_review(tmp_path, TableScorer(), KnowingEndpoint(job_id=""))
    try:
        kept = entry(reopened, A_NS)
        assert kept == outcome.entry
    finally:
        await reopened.close()


async def test_forget_refuses_unknown_replies_and_long_reasons(review: Review) -> None:
    await ingest(review, OLD_TALK)
    with pytest.raises(NotFound, match=f"no trained reply {A_NS}.*candidate"):
        await review.forget(A_NS)
    await review.approve([A_NS])
    await review.send([A_NS])
    with pytest.raises(InvalidArgument) as refused:
        await review.forget(A_NS, "x" * 5000)
    assert refused.value.field == "reason"
    assert entry(review, A_NS).state == KnowledgeState.LIVE
    done = await review.forget(A_NS)
    assert done.entry.reason == "forgotten by someone"


async def test_an_undelivered_retraction_goes_before_the_next_send_and_at_start(
    review: Review, endpoint: KnowingEndpoint, tmp_path: Path
) -> None:
    await trained(review, OLD_TALK)
    endpoint.retract_mode = "fail"
    outcome = await review.forget(A_NS, "", "ann")
    assert outcome.entry.state == KnowledgeState.RETRACTED
    assert not outcome.entry.retraction_delivered
    assert "503" in outcome.delivery_error

    # A Send tells it before it posts its examples.
    endpoint.retract_mode = "ok"
    await ingest(review, NEW_TALK)
    await review.approve([B_NS])
    await review.send([B_NS])
    kinds = [call[0] for call in endpoint.calls]
    assert kinds[-2:] == ["retract", "post"]
    assert entry(review, A_NS).retraction_delivered

    # Pending when the Review stops: told when it starts again.
    endpoint.retract_mode = "fail"
    await review.forget(B_NS, "moved again", "ann")
    assert not entry(review, B_NS).retraction_delivered
    await review.close()
    fresh = KnowingEndpoint(job_id="")
    reopened = open_review(tmp_path, TableScorer(), fresh)
    try:
        for _ in range(200):
            if entry(reopened, B_NS).retraction_delivered:
                break
            await asyncio.sleep(0.01)
        assert entry(reopened, B_NS).retraction_delivered
        assert fresh.calls == [
            ("retract", URL, {idempotency_key(B_NS): "forgotten by ann: moved again"})
        ]
    finally:
        await reopened.close()


async def test_no_route_and_exports_count_as_told_and_say_so(
    review: Review, endpoint: KnowingEndpoint
) -> None:
    await trained(review, OLD_TALK)
    endpoint.retract_mode = "absent"
    told = await review.forget(A_NS, "", "ann")
    assert told.entry.retraction_delivered and told.delivery_error == ""
    assert "keeps no knowledge" in told.entry.reason

    await ingest(review, NEW_TALK)
    await review.approve([B_NS])
    await review.export("openai", [], [B_NS], mark_trained=True)
    exported = await review.forget(B_NS, "", "ann")
    assert exported.entry.destination == "export:openai"
    assert exported.entry.retraction_delivered
    assert "an export cannot be told" in exported.entry.reason


async def test_approving_a_replacement_supersedes_and_undo_restores(
    review: Review, endpoint: KnowingEndpoint
) -> None:
    await trained(review, OLD_TALK)
    await ingest(review, NEW_TALK)
    await review.approve([B_NS])
    old = entry(review, A_NS)
    assert old.state == KnowledgeState.SUPERSEDED and old.superseded_by_ns == B_NS
    assert old.reason == f"superseded by {B_NS}: 18 March 14:30 -> 20 March"
    assert not old.retraction_delivered

    await review.clear_decision([B_NS])
    assert entry(review, A_NS).state == KnowledgeState.LIVE
    assert entry(review, A_NS).reason == ""
    await review.approve([B_NS])
    await review.reject([B_NS], "not sure")
    assert entry(review, A_NS).state == KnowledgeState.LIVE

    # Told (the Send delivers it, though the endpoint refuses the new reply): an undo
    # leaves it superseded and says why.
    await review.approve([B_NS])
    endpoint.refuse[idempotency_key(B_NS)] = "not now"
    await review.send([B_NS])
    assert entry(review, A_NS).retraction_delivered
    await review.clear_decision([B_NS])
    kept = entry(review, A_NS)
    assert kept.state == KnowledgeState.SUPERSEDED and "told already" in kept.reason


async def test_a_later_memory_that_says_otherwise_retracts_the_fact(
    review: Review, endpoint: KnowingEndpoint
) -> None:
    await trained(review, OLD_TALK)
    later = talk("c", "User's dentist appointment was moved to 22 March", "Noted.", C_NS)
    await ingest(review, later)
    fact = entry(review, A_NS)
    assert fact.state == KnowledgeState.RETRACTED and not fact.retraction_delivered
    assert fact.reason == "its memory changed in conversation c: 18 March 14:30 -> 22 March"
    unrelated = talk("d", "User's cat is called Biscuit", "Nice cat.", C_NS + DAY)
    await ingest(review, unrelated)
    assert entry(review, A_NS) == fact
    await review.send([])  # nothing approved: the retraction alone is told
    assert entry(review, A_NS).retraction_delivered
    assert endpoint.calls[-1][0] == "retract"


def test_an_older_store_opens_with_every_entry_live_and_its_text(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '7');"
        "CREATE TABLE trained (timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL,"
        " trained_at_ns INTEGER NOT NULL, destination TEXT NOT NULL, job_id TEXT NOT NULL,"
        " divergence_before REAL, divergence_after REAL, adapter TEXT);"
        "CREATE TABLE scored_replies (timestamp_ns INTEGER PRIMARY KEY,"
        " conversation_id TEXT NOT NULL, node_path TEXT, content TEXT, scored INTEGER,"
        " divergence REAL, peak REAL, candidate INTEGER, reason INTEGER,"
        " context_tokens_cut INTEGER, scored_at_ns INTEGER);"
    )
    db.execute("INSERT INTO trained VALUES (?, 'a', 5, ?, 'job-1', 1.5, 0.25, 'v1')", (A_NS, URL))
    db.execute("INSERT INTO trained VALUES (?, 'b', 6, ?, '', NULL, NULL, NULL)", (B_NS, URL))
    db.execute(
        "INSERT INTO scored_replies (timestamp_ns, conversation_id, content) VALUES (?, 'a', ?)",
        (A_NS, "It is on 18 March."),
    )
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        a, b = store.load_ledger()
        assert (a.state, a.content, a.adapter, a.divergence_after) == (
            KnowledgeState.LIVE,
            "It is on 18 March.",
            "v1",
            0.25,
        )
        assert (a.comes_back, a.reason, a.retraction_delivered, a.candidate) == (
            None,
            "",
            False,
            None,
        )
        assert (b.state, b.content) == (KnowledgeState.LIVE, "")
        (version,) = store._db.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        assert version == "8"
    finally:
        store.close()


async def test_an_ended_job_says_which_facts_come_back(tmp_path: Path) -> None:
    ConfigFile(tmp_path / "config.json5").set_value("finetune_url", URL)
    endpoint = KnowingEndpoint(job_id="job-1")
    trainer = ScriptedTrainer()
    review = open_review(tmp_path, TableScorer(), endpoint, trainer)
    try:
        trainer.scripts["job-1"] = [{"state": "succeeded", "adapter": "v1"}]
        await trained_in_job(review, OLD_TALK, "job-1")
        learnt = entry(review, A_NS)
        assert (learnt.comes_back, learnt.checked_by_job, learnt.adapter) == (True, "job-1", "v1")

        # A later job's retention check: the fact no longer comes back.
        other = talk("e", "User's cat is called Biscuit", "Your cat is called Biscuit.", C_NS)
        check = {"idempotency_key": idempotency_key(A_NS), "comes_back": False}
        trainer.scripts["job-2"] = [
            {"state": "succeeded", "adapter": "v2", "kind": "learn", "retention": [check]}
        ]
        endpoint.job_id = "job-2"
        await trained_in_job(review, other, "job-2")
        assert (entry(review, A_NS).comes_back, entry(review, A_NS).checked_by_job) == (
            False,
            "job-2",
        )
        assert entry(review, C_NS).comes_back is True
        # v2 continued from v1: the earlier live fact names the adapter served now.
        assert (entry(review, A_NS).adapter, entry(review, C_NS).adapter) == ("v2", "v2")

        # Forget: the consolidation job the endpoint names is followed like a sent one.
        endpoint.consolidate_job = "ft-12"
        gone = {"idempotency_key": idempotency_key(A_NS), "comes_back": False, "retracted": True}
        kept = {"idempotency_key": idempotency_key(C_NS), "comes_back": True}
        trainer.scripts["ft-12"] = [
            {"state": "running"},
            {
                "state": "succeeded",
                "adapter": "v3",
                "kind": "consolidate",
                "retention": [gone, kept],
            },
        ]
        outcome = await review.forget(C_NS, "not my cat", "ann")
        assert outcome.job_id == "ft-12"
        await job_ended(review, "ft-12")
        jobs = {j.id: j for j in review.jobs()}
        assert jobs["ft-12"].state == JobState.SUCCEEDED
        assert (entry(review, C_NS).comes_back, entry(review, C_NS).checked_by_job) == (
            True,
            "ft-12",
        )
        assert entry(review, C_NS).state == KnowledgeState.RETRACTED
        # The consolidation's adapter holds every live fact; a retracted one keeps the
        # adapter that learnt it.
        assert (entry(review, A_NS).adapter, entry(review, C_NS).adapter) == ("v3", "v2")
    finally:
        await review.close()


async def trained_in_job(review: Review, conv: Conversation, job_id: str) -> None:
    await ingest(review, conv)
    ts = conv.messages[-1].timestamp_ns
    await review.approve([ts])
    report = await review.send([ts])
    assert report.job_id == job_id
    await job_ended(review, job_id)
    assert review.is_trained(ts)


async def test_a_crash_between_the_commit_and_the_delivery_loses_nothing(
    review: Review, endpoint: KnowingEndpoint, tmp_path: Path
) -> None:
    await trained(review, OLD_TALK)
    hung = asyncio.Event()

    async def never(url: str, keys: dict[str, str], timeout: float, retries: int) -> RetractReply:
        hung.set()
        await asyncio.Event().wait()  # the process dies while the POST is out
        raise AssertionError("unreachable")

    endpoint.retract = never  # type: ignore[method-assign]
    forgetting = asyncio.ensure_future(review.forget(A_NS, "wrong", "ann"))
    await asyncio.wait_for(hung.wait(), 5)
    # The retraction is committed; a new process on the same file (the old one never
    # answered, never closed) finds it pending and delivers it when it starts.
    fresh = KnowingEndpoint(job_id="")
    after = open_review(tmp_path, TableScorer(), fresh)
    try:
        assert entry(after, A_NS).state == KnowledgeState.RETRACTED
        for _ in range(200):
            if entry(after, A_NS).retraction_delivered:
                break
            await asyncio.sleep(0.01)
        assert entry(after, A_NS).retraction_delivered
        assert [call[0] for call in fresh.calls] == ["retract"]
    finally:
        forgetting.cancel()
        await after.close()
