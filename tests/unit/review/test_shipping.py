"""Send and export on the domain alone: a send in flight is recorded before the POST, an
answer settles it (accepted replies are in training, SENT, until their job says; an endpoint
without a jobs route puts them in the ledger), an unknown outcome holds the reply back from
export until a send (same idempotency key) settles it, and an endpoint's refusal stays on
the candidate."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from review_fakes import (
    RecordingEndpoint,
    TableScorer,
    conversation,
    ingest,
    job_ended,
    open_review,
    reply_ts,
)

from review_service.adapters.store_sqlite import SqliteStore
from review_service.app.config import ConfigFile
from review_service.app.review import CandidateFilter, Review
from review_service.domain.errors import FailedPrecondition
from review_service.domain.examples import idempotency_key
from review_service.domain.model import SendInFlight, Status
from review_service.domain.ports import StoreChange

URL = "http://trainer.test/finetune"


@pytest.fixture
def endpoint() -> RecordingEndpoint:
    return RecordingEndpoint()


@pytest.fixture
async def review(tmp_path: Path, endpoint: RecordingEndpoint) -> AsyncIterator[Review]:
    ConfigFile(tmp_path / "config.json5").set_value("finetune_url", URL)
    running = open_review(tmp_path, TableScorer(), endpoint)
    yield running
    await running.close()


async def approved(review: Review, cid: str, n: int) -> list[int]:
    await ingest(review, conversation(cid, n))
    stamps = [reply_ts(cid, i) for i in range(n)]
    await review.approve(stamps)
    return stamps


def sends_in_flight(home: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(home / "review.sqlite3")
    try:
        return db.execute(
            "SELECT timestamp_ns, idempotency_key, url FROM sends_in_flight"
        ).fetchall()
    finally:
        db.close()


async def test_the_send_is_recorded_before_the_post_and_cleared_by_the_answer(
    tmp_path: Path, review: Review, endpoint: RecordingEndpoint
) -> None:
    stamps = await approved(review, "ok", 2)
    seen_while_posting: list[list[tuple[Any, ...]]] = []
    endpoint.during_post = lambda body: seen_while_posting.append(sends_in_flight(tmp_path))

    report = await review.send([])

    assert sorted(report.accepted) == stamps and report.failed == []
    assert sorted(seen_while_posting[0]) == [(ts, idempotency_key(ts), URL) for ts in stamps]
    assert sends_in_flight(tmp_path) == []
    # Answered: in training in the job the answer named, not in the ledger yet.
    assert [(c.timestamp_ns, c.status, c.job_id) for c in review.candidates(order="time")] == [
        (ts, Status.SENT, "job-1") for ts in reversed(stamps)
    ]
    assert review.trained() == []
    # The endpoint has no jobs route (404): acceptance is all it will say, so the ledger.
    await job_ended(review)
    assert {e.timestamp_ns for e in review.trained()} == set(stamps)
    assert review.candidates() == []


async def test_an_unknown_outcome_holds_the_reply_back_until_a_send_settles_it(
    tmp_path: Path, review: Review, endpoint: RecordingEndpoint
) -> None:
    first, second = await approved(review, "lost", 2)
    endpoint.fail = "http://trainer.test/finetune answered 500: trainer crashed"  # after training

    report = await review.send([first])

    assert report.accepted == [] and "500" in report.failed[0][1]
    held = {c.timestamp_ns: c for c in review.candidates()}[first]
    assert held.status == Status.APPROVED and "send again to settle it" in held.send_error
    exported = await review.export("openai", [], [], mark_trained=True)
    assert exported.timestamps == [second]  # held back, never exported as new
    with pytest.raises(FailedPrecondition) as caught:
        await review.export("openai", [], [first], mark_trained=False)
    assert caught.value.kind == "SEND_IN_FLIGHT"

    endpoint.fail = ""
    again = await review.send([])
    assert again.accepted == [first]
    assert endpoint.trained == {idempotency_key(first)}  # the same key, trained once
    assert sends_in_flight(tmp_path) == []


async def test_a_send_in_flight_when_the_process_died_is_held_back_after_a_restart(
    tmp_path: Path, review: Review, endpoint: RecordingEndpoint
) -> None:
    first, second = await approved(review, "crash", 2)
    await review.close()
    # What a SIGKILL between the POST and the answer's transaction leaves behind.
    store = SqliteStore(tmp_path / "review.sqlite3")
    store.commit([StoreChange(sends_started=[SendInFlight(first, idempotency_key(first), URL, 5)])])
    store.close()
    review = open_review(tmp_path, TableScorer(), endpoint)
    try:
        held = {c.timestamp_ns: c for c in review.candidates()}[first]
        assert URL in held.send_error and "held back from export" in held.send_error
        exported = await review.export("trl", [Status.APPROVED], [], mark_trained=True)
        assert exported.timestamps == [second]
        report = await review.send([])
        assert report.accepted == [first]
        await job_ended(review)
        assert {e.timestamp_ns for e in review.trained()} == {first, second}
    finally:
        await review.close()


async def test_a_refusal_stays_on_the_candidate_and_is_not_posted_again_unless_named(
    review: Review, endpoint: RecordingEndpoint
) -> None:
    first, second = await approved(review, "part", 2)
    endpoint.refuse[idempotency_key(second)] = "example too long"

    report = await review.send([])

    assert report.accepted == [first]
    refusal = "refused by the endpoint: example too long"
    assert report.failed == [(second, refusal)]
    (left,) = review.candidates(CandidateFilter(statuses=(Status.APPROVED,)))
    assert (left.timestamp_ns, left.status, left.send_error) == (
        second, Status.APPROVED, refusal,
    )  # fmt: skip
    # A refusal is an answer: nothing is in flight, so export may hand it out.
    assert (await review.export("openai", [], [], mark_trained=False)).timestamps == [second]

    # Sending every approved reply again does not post it: the endpoint judged the reply.
    posts = endpoint.posts
    again = await review.send([])
    assert endpoint.posts == posts and again.accepted == [] and again.activity_id == ""
    assert again.failed == [
        (second, f"not sent again, {refusal} (reject it, or name it to send it again)")
    ]
    # Named, it is posted again; accepted this time, it goes into training.
    del endpoint.refuse[idempotency_key(second)]
    named = await review.send([second])
    assert endpoint.posts == posts + 1 and named.accepted == [second] and named.failed == []


async def test_send_without_a_url_explains_how_to_set_one(tmp_path: Path) -> None:
    review = open_review(tmp_path, TableScorer())
    try:
        await approved(review, "nourl", 1)
        with pytest.raises(FailedPrecondition, match="finetune_url"):
            await review.send([])
    finally:
        await review.close()
