"""The Review's rules on its domain alone: the real SQLite store in a temp folder, an
in-memory Scorer and endpoint (review_fakes.py), no gRPC. Ingest and additive sync, reply
ownership, decisions, filters, stored conversations."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ftreview.v1 import activity_pb2
from review_fakes import (
    JsonConversations,
    TableScorer,
    conversation,
    ended,
    ingest,
    open_review,
    reply_ts,
)

from review_service.adapters.scorer_wire import stats_to_wire
from review_service.app.review import CandidateFilter, Review
from review_service.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from review_service.domain.model import Message, Status

SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED


@pytest.fixture
def scorer() -> TableScorer:
    return TableScorer()


@pytest.fixture
async def review(tmp_path: Path, scorer: TableScorer) -> AsyncIterator[Review]:
    running = open_review(tmp_path, scorer)
    yield running
    await running.close()


def stamps(candidates: list[object]) -> set[int]:
    return {c.timestamp_ns for c in candidates}  # type: ignore[attr-defined]


async def test_ingest_adds_pending_candidates_with_question_and_memories(
    review: Review, scorer: TableScorer
) -> None:
    scorer.divergence["a reply 1"] = 3e-8  # below 1e-7: not a candidate
    done = await ingest(review, conversation("a", 3))
    assert done.state == SUCCEEDED
    assert (done.result.new_candidates, done.result.conversation_id) == (2, "a")
    listed = {c.timestamp_ns: c for c in review.candidates()}
    assert set(listed) == {reply_ts("a", 0), reply_ts("a", 2)}
    first = listed[reply_ts("a", 0)]
    assert first.status == Status.PENDING
    assert first.question == "question 0"
    assert [(m.node_path, m.content) for m in first.memories] == [
        ("nodes[1].children[0]", "Memory of a.")
    ]
    assert [m.content for m in listed[reply_ts("a", 2)].context] == [
        "You are helpful.", "question 0", "a reply 0", "question 1", "a reply 1", "question 2",
    ]  # fmt: skip


async def test_statuses_survive_rescoring_and_the_next_turn_scores_only_new_replies(
    review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("b", 2))
    await review.approve([reply_ts("b", 0)])
    assert (await ingest(review, conversation("b", 3))).result.new_candidates == 1
    assert scorer.calls[-1][2] == [reply_ts("b", 2)]
    scorer.divergence["b reply 0"] = 2.5
    scorer.divergence["b reply 1"] = 1e-9
    for activity_id in await review.sync_candidates(["b"]):
        rescored = await ended(review, activity_id)
        assert rescored.state == SUCCEEDED and rescored.result.conversation_id == "b"
        assert rescored.result.new_candidates == 0  # all three were listed already
    by_ts = {c.timestamp_ns: c for c in review.candidates()}
    assert set(by_ts) == {reply_ts("b", i) for i in range(3)}  # nothing dropped
    assert (by_ts[reply_ts("b", 0)].status, by_ts[reply_ts("b", 0)].divergence) == (
        Status.APPROVED, 2.5,
    )  # fmt: skip
    assert by_ts[reply_ts("b", 1)].divergence == 1e-9
    # A pass without attributions (below the threshold now) keeps the memories known.
    assert by_ts[reply_ts("b", 1)].memories


async def test_a_timestamp_held_by_another_conversation_is_refused_and_nothing_changes(
    tmp_path: Path, review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("first", 2))
    await review.approve([reply_ts("first", 0)])
    before = review.candidates()
    calls = len(scorer.calls)
    # Conversation "second" has a reply at the timestamp of first's reply 0.
    clashing = conversation("second", 2, at=lambda cid, i: reply_ts("first", i))

    with pytest.raises(InvalidArgument) as caught:
        await review.ingest(clashing)

    assert caught.value.field == "conversation.nodes[3].timestamp"
    assert "'first'" in caught.value.message
    assert review.candidates() == before
    assert len(scorer.calls) == calls
    with pytest.raises(NotFound):
        await review.conversation("second")
    stored = await review.conversation("first")
    assert [m.content for m in stored.messages][-1] == "first reply 1"


async def test_two_different_replies_with_one_timestamp_are_refused(review: Review) -> None:
    messages = [
        Message("user", "q", 5, False, "nodes[0]"),
        Message("assistant", "one", 10, False, "nodes[1]"),
        Message("assistant", "two", 10, False, "nodes[2]"),
    ]
    with pytest.raises(InvalidArgument) as caught:
        await review.ingest(JsonConversations.make("dup", messages))
    assert caught.value.field == "conversation.nodes[2].timestamp"
    assert "nodes[1]" in caught.value.message


async def test_claims_survive_a_restart_and_the_same_conversation_may_grow(
    tmp_path: Path, scorer: TableScorer
) -> None:
    review = open_review(tmp_path, scorer)
    await ingest(review, conversation("grow", 1))
    await review.close()
    review = open_review(tmp_path, scorer)
    try:
        assert (await ingest(review, conversation("grow", 2))).state == SUCCEEDED
        with pytest.raises(InvalidArgument):
            await review.ingest(conversation("thief", 1, at=lambda cid, i: reply_ts("grow", 1)))
    finally:
        await review.close()


async def test_decisions_are_all_or_nothing_idempotent_and_reversible(review: Review) -> None:
    await ingest(review, conversation("d", 2))
    ts = reply_ts("d", 0)
    with pytest.raises(NotFound):
        await review.approve([ts, 123])
    assert {c.status for c in review.candidates()} == {Status.PENDING}
    first = await review.approve([ts])
    again = await review.approve([ts])
    assert first[0].decided_at_ns == again[0].decided_at_ns
    (rejected,) = await review.reject([ts], "off topic")
    assert (rejected.status, rejected.reject_reason) == (Status.REJECTED, "off topic")
    (cleared,) = await review.clear_decision([ts])
    assert (cleared.status, cleared.decided_at_ns) == (Status.PENDING, 0)
    with pytest.raises(InvalidArgument):
        await review.approve([])


async def test_the_eleventh_rejection_forgets_the_oldest_for_good(
    review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("r", 12))
    for i in range(12):
        await review.reject([reply_ts("r", i)], f"no {i}")
    assert stamps(review.candidates(CandidateFilter(statuses=(Status.REJECTED,)))) == {
        reply_ts("r", i) for i in range(2, 12)
    }
    for activity_id in await review.sync_candidates([]):
        await ended(review, activity_id)
    with pytest.raises(NotFound, match="no longer kept"):
        await review.approve([reply_ts("r", 0)])


async def test_filters_search_divergence_range_and_conversation(
    review: Review, scorer: TableScorer
) -> None:
    scorer.divergence.update({"f reply 0": 0.2, "f reply 1": 1.0, "f reply 2": 3.0})
    await ingest(review, conversation("f", 3))
    await ingest(review, conversation("g", 1))

    def pick(**kw: object) -> list[str]:
        return [c.content for c in review.candidates(CandidateFilter(**kw))]  # type: ignore[arg-type]

    assert pick(search="F REPLY") == ["f reply 2", "f reply 1", "f reply 0"]
    assert pick(min_divergence=0.2, max_divergence=3.0) == ["f reply 1", "g reply 0", "f reply 0"]
    assert pick(min_divergence=1.0) == ["f reply 2", "f reply 1"]  # [min, max)
    assert pick(conversation_id="g") == ["g reply 0"]
    assert pick(conversation_id="g", search="f") == []
    with pytest.raises(InvalidArgument) as caught:
        pick(min_divergence=float("nan"))
    assert caught.value.field == "min_divergence"


async def test_a_trained_reply_cannot_be_decided_and_never_returns(
    review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("t", 2))
    ts = reply_ts("t", 0)
    await review.approve([ts])
    exported = await review.export("openai", [], [], mark_trained=True)
    assert exported.timestamps == [ts]
    with pytest.raises(FailedPrecondition):
        await review.reject([ts])
    for activity_id in await review.sync_candidates(["t"]):
        await ended(review, activity_id)
    assert ts in scorer.calls[-1][1]  # told to exclude it
    assert stamps(review.candidates()) == {reply_ts("t", 1)}


async def test_a_failed_pass_keeps_its_reason_and_marks_nothing_scored(
    review: Review, scorer: TableScorer
) -> None:
    scorer.broken = "backend down"
    failed = await ingest(review, conversation("down", 2))
    assert failed.state == activity_pb2.ACTIVITY_STATE_FAILED and "backend down" in failed.error
    assert stats_to_wire(review.stats("down").conversations[0]).error == "backend down"
    assert review.candidates() == []
    scorer.broken = ""
    assert (await ingest(review, conversation("down", 2))).state == SUCCEEDED
    assert len(review.candidates()) == 2  # the failed pass marked nothing as scored
    assert stats_to_wire(review.stats("down").conversations[0]).error == ""


async def test_schema_gains_its_tables_on_an_old_file(tmp_path: Path, scorer: TableScorer) -> None:
    review = open_review(tmp_path, scorer)
    await ingest(review, conversation("old", 1))
    await review.close()
    db = sqlite3.connect(tmp_path / "review.sqlite3")
    db.execute("DROP TABLE reply_owners")
    db.execute("DROP TABLE sends_in_flight")
    db.commit()
    db.close()
    review = open_review(tmp_path, scorer)  # the owners come back from the candidates
    try:
        with pytest.raises(InvalidArgument):
            await review.ingest(conversation("new", 1, at=lambda cid, i: reply_ts("old", 0)))
    finally:
        await review.close()


async def test_the_decision_history_outlives_the_list_and_a_restart(
    tmp_path: Path, review: Review, scorer: TableScorer
) -> None:
    await ingest(review, conversation("h", 12))
    stamps_ = [reply_ts("h", i) for i in range(12)]
    await review.approve(stamps_[:1], "ana")
    await review.approve(stamps_[:1], "ana")  # changes nothing: not a decision again
    await review.reject(stamps_, "off topic", "ben")
    assert len([c for c in review.candidates() if c.status == Status.REJECTED]) == 10
    await review.close()

    again = open_review(tmp_path, scorer)
    try:
        history = await again.decisions()
        assert len(history) == 1 + 12
        assert [d.status for d in history[:12]] == [Status.REJECTED] * 12
        assert {(d.reason, d.reviewer) for d in history[:12]} == {("off topic", "ben")}
        first = history[-1]
        assert (first.timestamp_ns, first.status, first.reviewer) == (
            stamps_[0], Status.APPROVED, "ana",
        )  # fmt: skip
        assert first.conversation_id == "h" and first.content == "h reply 0"
        assert [d.timestamp_ns for d in await again.decisions(2)] == [
            d.timestamp_ns for d in history[:2]
        ]
    finally:
        await again.close()
