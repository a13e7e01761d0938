"""What the Review relays is stored as the wire message and comes back byte for byte: a
scoring pass's stats, a training job's figures. A file from an older version (stats as a
JSON object per row, or a message per row in the oldest; job figures as columns of their
own) opens with every stored field intact."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from ftreview.core.wire import to_timestamp
from ftreview.v1 import review_pb2, scorer_pb2

from review_service.adapters.scorer_wire import stats_from_wire, stats_to_wire
from review_service.adapters.store_sqlite import SqliteStore
from review_service.domain.jobs import JobState
from review_service.domain.ports import StoreChange

TAKEN_NS = 1_767_225_600_123_456_789


def _message(cid: str, seen: int) -> scorer_pb2.FinetuneScoringStats:
    return scorer_pb2.FinetuneScoringStats(
        conversation_id=cid, responses_seen=seen, responses_scored=seen - 1,
        responses_above_threshold=1, max_divergence=0.75, threshold=1e-7,
        skipped_unset_timestamp=1, skipped_too_long=2, truncated=3, error="",
        taken_at=to_timestamp(TAKEN_NS),
    )  # fmt: skip


def test_stats_come_back_as_the_message_the_scorer_sent(tmp_path: Path) -> None:
    sent = _message("c1", 5)
    store = SqliteStore(tmp_path / "review.db")
    store.commit([StoreChange(stats=stats_from_wire(sent))])
    store.close()

    (kept,) = SqliteStore(tmp_path / "review.db").load_stats()
    assert (kept.conversation_id, kept.taken_at_ns) == ("c1", TAKEN_NS)
    assert stats_to_wire(kept) == sent


def test_a_message_without_a_time_is_stamped_when_it_arrives() -> None:
    kept = stats_from_wire(scorer_pb2.FinetuneScoringStats(conversation_id="c"))
    assert kept.taken_at_ns > TAKEN_NS
    assert stats_to_wire(kept).taken_at.seconds == kept.taken_at_ns // 1_000_000_000


def test_json_stats_of_an_older_file_open_as_messages(tmp_path: Path) -> None:
    path = tmp_path / "review.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '6');"
        "CREATE TABLE scoring_stats (conversation_id TEXT PRIMARY KEY, json TEXT NOT NULL);"
    )
    fields = {
        "conversation_id": "old", "threshold": 0.5, "responses_seen": 7, "responses_scored": 6,
        "responses_above_threshold": 2, "max_divergence": 1.25, "skipped_unset_timestamp": 1,
        "skipped_already_trained": 4, "skipped_too_long": 0, "skipped_tokenization_mismatch": 1,
        "truncated": 0, "error": "", "taken_at_ns": TAKEN_NS,
    }  # fmt: skip
    db.execute("INSERT INTO scoring_stats VALUES ('old', ?)", (json.dumps(fields),))
    db.commit()
    db.close()

    (kept,) = SqliteStore(path).load_stats()
    wire = stats_to_wire(kept)
    assert kept.taken_at_ns == TAKEN_NS
    assert (wire.responses_seen, wire.skipped_already_trained, wire.max_divergence) == (7, 4, 1.25)
    assert wire.threshold == 0.5 and wire.skipped_tokenization_mismatch == 1
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "scoring_stats" not in tables


def test_message_rows_of_the_oldest_files_keep_their_conversation(tmp_path: Path) -> None:
    path = tmp_path / "review.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE stats (conversation_id TEXT PRIMARY KEY, body BLOB NOT NULL)")
    db.execute("INSERT INTO stats VALUES ('c9', ?)", (_message("", 3).SerializeToString(),))
    db.commit()
    db.close()

    (kept,) = SqliteStore(path).load_stats()
    assert kept.conversation_id == "c9"
    assert stats_to_wire(kept).responses_seen == 3


def test_job_figures_kept_as_columns_by_an_older_file_open_as_one_message(tmp_path: Path) -> None:
    path = tmp_path / "review.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (destination TEXT NOT NULL, id TEXT NOT NULL, state INTEGER NOT NULL,"
        " examples INTEGER NOT NULL, epochs INTEGER NOT NULL, step INTEGER NOT NULL,"
        " total_steps INTEGER NOT NULL, detail TEXT NOT NULL, adapter TEXT NOT NULL,"
        " adapter_path TEXT NOT NULL, trained_divergence_before REAL,"
        " trained_divergence_after REAL, recall REAL, generic_loglik_change REAL,"
        " error TEXT NOT NULL, created_at_ns INTEGER NOT NULL, ended_at_ns INTEGER NOT NULL,"
        " follow_note TEXT NOT NULL, measured_at_ns INTEGER NOT NULL,"
        " PRIMARY KEY (destination, id))"
    )
    db.execute(
        "INSERT INTO jobs VALUES ('http://t', 'ft-2', 3, 4, 6, 12, 12, 'done', 'v2', '/a/v2',"
        " 1.5, 0.25, 0.75, NULL, '', 10, 20, '', 30)"
    )
    db.commit()
    db.close()

    (job,) = SqliteStore(path).load_jobs()
    assert (job.id, job.state, job.examples, job.adapter, job.measured_at_ns) == (
        "ft-2", JobState.SUCCEEDED, 4, "v2", 30,
    )  # fmt: skip
    figures = review_pb2.TrainingJob.FromString(job.figures)
    assert (figures.epochs, figures.trained_divergence_before, figures.recall) == (6, 1.5, 0.75)
    assert figures.trained_divergence_after == 0.25
    assert not figures.HasField("generic_loglik_change")  # NULL stays unset

    # The rebuilt table takes today's rows.
    store = SqliteStore(path)
    store.commit([StoreChange(jobs=[dataclasses.replace(job, id="ft-3", figures=b"")])])
    assert [j.id for j in store.load_jobs()] == ["ft-2", "ft-3"]
