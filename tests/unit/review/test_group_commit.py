"""Group commit: concurrent decisions share transactions, and acknowledged still means
durable; a refused decision and a failed transaction fail alone."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from ftreview.core.activity_hub import ActivityHub
from hypothesis import given, settings
from hypothesis import strategies as st
from review_fakes import (
    JsonConversations,
    RecordingEndpoint,
    TableScorer,
    conversation,
    ingest,
    reply_ts,
)

from review_service.adapters.job_http import JobFollower
from review_service.adapters.store_sqlite import CHECKPOINT_INTERVAL_S, SqliteStore
from review_service.app.config import ConfigFile
from review_service.app.review import Review
from review_service.app.view import View
from review_service.domain.errors import NotFound
from review_service.domain.model import Candidate, ContextMessage, Status
from review_service.domain.ports import StoreChange

CLIENTS = 50
BASE = 1_772_000_000_000_000_000


class FailingStore(SqliteStore):
    """The real store, refusing any transaction that would write `poison`."""

    poison = -1

    def commit(self, changes: Sequence[StoreChange]) -> None:
        written = (c for change in changes for c in [*change.upsert, *change.decided])
        if any(c.timestamp_ns == self.poison for c in written):
            raise OSError("disk full (injected)")
        super().commit(changes)


def open_with(store: SqliteStore, home: Path) -> Review:
    return Review(
        store, TableScorer(), RecordingEndpoint(), ConfigFile(home / "config.json5"),
        ActivityHub(), codec=JsonConversations(), jobs=JobFollower(),
    )  # fmt: skip


async def test_fifty_concurrent_decisions_share_transactions_and_all_are_durable(
    tmp_path: Path,
) -> None:
    review = open_with(SqliteStore(tmp_path / "db"), tmp_path)
    await ingest(review, conversation("g", CLIENTS))
    stamps = [reply_ts("g", i) for i in range(CLIENTS)]
    before = review.writer.transactions

    async def decide(i: int) -> None:
        if i % 5 == 0:  # 10 rejections: all kept
            await review.reject([stamps[i]], "no")
        elif i % 5 == 1:
            await review.approve([stamps[i]])
            await review.clear_decision([stamps[i]])
        else:
            await review.approve([stamps[i]])

    expected = {0: Status.REJECTED, 1: Status.PENDING}

    await asyncio.gather(*(decide(i) for i in range(CLIENTS)))
    changes = review.writer.changes
    transactions = review.writer.transactions - before
    await review.close()

    assert transactions < CLIENTS  # shared: 60 changes in a few transactions
    reopened = {c.timestamp_ns: c for c in SqliteStore(tmp_path / "db").load_candidates()}
    for i, ts in enumerate(stamps):
        assert reopened[ts].status == expected.get(i % 5, Status.APPROVED)
    assert changes > CLIENTS


async def test_a_refused_decision_in_a_batch_leaves_the_others_alone(tmp_path: Path) -> None:
    review = open_with(SqliteStore(tmp_path / "db"), tmp_path)
    try:
        await ingest(review, conversation("m", 4))
        stamps = [reply_ts("m", i) for i in range(4)]
        results = await asyncio.gather(
            review.approve([stamps[0]]),
            review.approve([stamps[1], 42]),  # 42 is no candidate: this call changes nothing
            review.reject([stamps[2]]),
            return_exceptions=True,
        )
        assert isinstance(results[1], NotFound)
        statuses = {c.timestamp_ns: c.status for c in review.candidates()}
        assert statuses == {
            stamps[0]: Status.APPROVED, stamps[1]: Status.PENDING,
            stamps[2]: Status.REJECTED, stamps[3]: Status.PENDING,
        }  # fmt: skip
    finally:
        await review.close()


async def test_a_failed_shared_transaction_fails_only_its_bad_change(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "db")
    review = open_with(store, tmp_path)
    try:
        await ingest(review, conversation("f", 3))
        stamps = [reply_ts("f", i) for i in range(3)]
        store.poison = stamps[1]
        results = await asyncio.gather(
            *(review.approve([ts]) for ts in stamps), return_exceptions=True
        )
        assert isinstance(results[1], OSError)
        assert not isinstance(results[0], BaseException) and not isinstance(
            results[2], BaseException
        )
        statuses = {c.timestamp_ns: c.status for c in review.candidates()}
        assert statuses == {
            stamps[0]: Status.APPROVED, stamps[1]: Status.PENDING, stamps[2]: Status.APPROVED
        }  # fmt: skip
    finally:
        await review.close()
    reopened = {c.timestamp_ns: c.status for c in SqliteStore(tmp_path / "db").load_candidates()}
    assert reopened == statuses


async def test_a_caller_that_goes_away_does_not_cancel_its_change(tmp_path: Path) -> None:
    review = open_with(SqliteStore(tmp_path / "db"), tmp_path)
    try:
        await ingest(review, conversation("c", 1))
        call = asyncio.ensure_future(review.approve([reply_ts("c", 0)]))
        await asyncio.sleep(0)  # queued
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The writer still commits it: a read queued behind it sees it.
        status = await review.writer.read(
            lambda: None, lambda _, view: view.candidates[reply_ts("c", 0)].status
        )
        assert status == Status.APPROVED
    finally:
        await review.close()


async def test_a_decision_writes_its_three_columns_and_keeps_the_rest_of_the_row(
    tmp_path: Path,
) -> None:
    """Approve, reject and undo store the decision only: a decision on a candidate with a
    long context and per-token values does not rewrite them (bench/bench_review.py)."""
    review = open_with(SqliteStore(tmp_path / "db"), tmp_path)
    try:
        await ingest(review, conversation("d", 2))
        first, second = reply_ts("d", 0), reply_ts("d", 1)
        before = {c.timestamp_ns: c for c in SqliteStore(tmp_path / "db").load_candidates()}
        await review.approve([first])
        await review.reject([second], "out of date")
    finally:
        await review.close()
    after = {c.timestamp_ns: c for c in SqliteStore(tmp_path / "db").load_candidates()}
    assert (after[first].status, after[first].reject_reason) == (Status.APPROVED, "")
    assert (after[second].status, after[second].reject_reason) == (Status.REJECTED, "out of date")
    assert after[first].decided_at_ns > 0 and after[second].decided_at_ns > 0
    for ts in (first, second):
        undecided = dataclasses.replace(
            after[ts], status=Status.PENDING, decided_at_ns=0, reject_reason=""
        )
        assert undecided == before[ts], "everything but the decision is as it was"

    # The store writes only those columns: a decided candidate whose other fields differ
    # (as no decision makes them) changes nothing else in the row.
    store = SqliteStore(tmp_path / "db")
    odd = dataclasses.replace(after[first], content="not written", status=Status.PENDING)
    store.commit([StoreChange(decided=[odd])])
    kept = {c.timestamp_ns: c for c in store.load_candidates()}[first]
    assert kept.content == before[first].content and kept.status == Status.PENDING
    store.close()


def _probe(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A connection of the test's own to the store's file: what any SQLite client sees.
    Checkpoints and the page size belong to the database, so it can ask for them too."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _long_rows(count: int) -> list[Candidate]:
    return [
        Candidate(
            BASE + i, "c", f"reply {i}", (ContextMessage("user", "x" * 3000, BASE),), 1.0, 2.0
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("background", [True, False])
def test_only_a_store_without_background_checkpoints_checkpoints_when_it_commits(
    tmp_path: Path, background: bool
) -> None:
    """SQLite checkpoints inside the commit that takes the WAL past 1,000 pages; the server's
    store turned that off. With its checkpoint thread stopped, nothing moves the WAL into
    the database file, however long the WAL grows; the plain store's commits do move it.
    (500 commits of a 3 KB row write about 1,500 WAL pages.)"""
    path = tmp_path / "db"
    store = SqliteStore(path, background_checkpoints=background)
    if store.checkpointer is not None:
        store.checkpointer.stop()
    with _probe(path) as probe:
        page_size = probe.execute("PRAGMA page_size").fetchone()[0]
    empty = path.stat().st_size
    for row in _long_rows(500):
        store.commit([StoreChange(upsert=[row])])
    if background:
        assert _wal(path).stat().st_size > 1000 * page_size
        assert path.stat().st_size == empty, "a commit moved the WAL into the database"
    else:
        assert path.stat().st_size > empty + 200 * 3000, "no commit checkpointed"
    store.close()


def test_the_server_store_checkpoints_off_the_commit_path(tmp_path: Path) -> None:
    """With background checkpoints the committing connection never checkpoints (a commit
    that did took up to 72 ms); the checkpoint thread moves the WAL into the database file,
    and what was committed is all there on reopening."""
    path = tmp_path / "db"
    store = SqliteStore(path, background_checkpoints=True)
    assert store.checkpointer is not None
    empty = path.stat().st_size
    for row in _long_rows(200):
        store.commit([StoreChange(upsert=[row])])
    deadline = time.monotonic() + 10
    # Both: the file grows while a checkpoint runs, before the thread counts it.
    while time.monotonic() < deadline and (
        path.stat().st_size < empty + 200 * 3000 or store.checkpointer.checkpoints == 0
    ):
        time.sleep(0.05)
    assert path.stat().st_size >= empty + 200 * 3000, "the WAL reached the database file"
    assert store.checkpointer.checkpoints > 0
    store.close()
    stopped_at = store.checkpointer.checkpoints
    time.sleep(4 * CHECKPOINT_INTERVAL_S)
    assert store.checkpointer.checkpoints == stopped_at, "close stops the checkpoints"
    assert len(SqliteStore(path).load_candidates()) == 200


def _pages_written(path: Path, store: SqliteStore, change: StoreChange) -> int:
    """The database pages one commit of `change` writes to the WAL (frames, counted by a
    checkpoint that starts from an empty WAL)."""
    with _probe(path) as probe:
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.commit([change])
        _, frames, _ = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)


def test_a_decision_writes_a_page_not_the_candidates_long_row(tmp_path: Path) -> None:
    """A candidate's row spans several pages (its context and per-token values); writing its
    decision into that row made SQLite write all of them again (~16 KB of WAL per decision,
    bench/bench_review.py). A decision is a narrow row of its own: one page."""
    path = tmp_path / "db"
    store = SqliteStore(path)
    long_context = tuple(ContextMessage("user", f"turn {i} " + "x" * 1000, BASE) for i in range(12))
    rows = [Candidate(BASE + i, "c", f"reply {i}", long_context, 1.0, 2.0) for i in range(50)]
    with _probe(path) as probe:
        page_size = probe.execute("PRAGMA page_size").fetchone()[0]
    assert _pages_written(path, store, StoreChange(upsert=rows[:1])) > 12_000 // page_size
    store.commit([StoreChange(upsert=rows[1:])])

    approved = dataclasses.replace(rows[7], status=Status.APPROVED, decided_at_ns=BASE + 99)
    assert _pages_written(path, store, StoreChange(decided=[approved])) == 1
    rejected = dataclasses.replace(
        rows[8], status=Status.REJECTED, decided_at_ns=BASE + 98, reject_reason="stale"
    )
    undone = dataclasses.replace(rows[7], status=Status.PENDING)
    assert _pages_written(path, store, StoreChange(decided=[rejected, undone])) == 1
    store.close()

    loaded = {c.timestamp_ns: c for c in SqliteStore(tmp_path / "db").load_candidates()}
    assert loaded[rows[7].timestamp_ns] == undone
    assert loaded[rows[8].timestamp_ns] == rejected
    assert [loaded[c.timestamp_ns] for c in rows if c not in (rows[7], rows[8])] == [
        c for c in rows if c not in (rows[7], rows[8])
    ]


def test_a_whole_row_or_a_deletion_supersedes_a_kept_decision(tmp_path: Path) -> None:
    """The decision's own row overrides the candidate's columns only until the candidate is
    written whole again (which carries its decision) or deleted; a decision on a candidate
    that is not listed writes nothing."""
    path = tmp_path / "db"
    store = SqliteStore(path)
    first, second = (Candidate(BASE + i, "c", f"reply {i}", (), 1.0, 2.0) for i in range(2))
    store.commit([StoreChange(upsert=[first, second])])
    approved = [dataclasses.replace(c, status=Status.APPROVED) for c in (first, second)]
    store.commit([StoreChange(decided=approved)])
    rescored = dataclasses.replace(first, divergence=1.5, status=Status.REJECTED, reject_reason="r")
    store.commit([StoreChange(upsert=[rescored], delete=[second.timestamp_ns])])
    ghost = Candidate(BASE + 5, "c", "never listed", (), 1.0, 2.0, status=Status.APPROVED)
    store.commit([StoreChange(decided=[ghost])])

    assert store.load_candidates() == [rescored]
    with _probe(path) as probe:
        assert probe.execute("SELECT count(*) FROM decisions").fetchone() == (0,)
    store.commit([StoreChange(upsert=[second])])
    assert store.load_candidates() == [rescored, second], "the deleted decision did not return"
    store.close()


_DECISIONS = (Status.PENDING, Status.APPROVED, Status.REJECTED, Status.FORGOTTEN)
_step = st.tuples(
    st.sampled_from(["upsert", "decide", "delete"]),
    st.integers(0, 4),  # which reply
    st.sampled_from([*_DECISIONS, Status.SENT]),  # SENT: written whole, in job "job-<n>"
    st.integers(0, 3),  # what else differs: divergence, time, reason
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_step, min_size=1, max_size=3), min_size=1, max_size=12))
def test_the_store_reads_back_what_the_view_holds_after_any_writes(
    batches: list[list[tuple[str, int, Status, int]]],
) -> None:
    """Whole rows (in training too), decisions and deletions in any order and any grouping
    into transactions: the candidates read back (on the same connection and after reopening
    the file) are the ones the view holds after applying the same changes (a decision only
    names a listed candidate not in training, as the domain guarantees)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "db")
        view = View()
        for batch in batches:
            changes = []
            for kind, reply, status, n in batch:
                ts = BASE + reply
                listed = view.candidates.get(ts)
                change = StoreChange()
                sent = status == Status.SENT
                if kind == "upsert":
                    change.upsert.append(
                        Candidate(ts, "c", f"reply {reply}", (), 1.0 + n, 2.0, status=status,
                                  decided_at_ns=n, reject_reason="r" * n,
                                  job_id=f"job-{n}" if sent else "", sent_to="u" if sent else "")
                    )  # fmt: skip
                elif (
                    kind == "decide" and listed is not None and not listed.in_training and not sent
                ):
                    change.decided.append(
                        dataclasses.replace(listed, status=status, decided_at_ns=BASE + n,
                                            reject_reason=f"reason {n}")
                    )  # fmt: skip
                elif kind == "delete":
                    change.delete.append(ts)
                view.apply(change)
                changes.append(change)
            store.commit(changes)
            assert {c.timestamp_ns: c for c in store.load_candidates()} == dict(view.candidates)
        store.close()
        reopened = SqliteStore(Path(tmp) / "db")
        assert {c.timestamp_ns: c for c in reopened.load_candidates()} == dict(view.candidates)
        reopened.close()
