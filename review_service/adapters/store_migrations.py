"""What opening an older store file changes, in the migration's transaction
(`SqliteStore._migrate`).

Invariants:
- each step is idempotent: it finds what an older version left and changes only that, so
  every file, from any version, goes through the same steps;
- nothing stored is lost: stats change their encoding, never their content; ledger entries
  leave only when no adapter ever learnt them, and their conversations stay stored.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from ftreview.core.wire import to_timestamp
from ftreview.v1 import review_pb2, scorer_pb2

from review_service.adapters import store_rows
from review_service.domain.jobs import JobState

log = logging.getLogger("review_service")


def stats_as_messages(db: sqlite3.Connection) -> None:
    """Moves scoring stats kept in an older encoding into `stats_messages` (the Scorer's
    wire message, as the Review relays it), then drops the old table: schema 2 kept one
    message per row in `stats`; schemas 3 to 6 kept a JSON object of the same fields in
    `scoring_stats`. A conversation already in `stats_messages` keeps its newer row."""
    if _exists(db, "stats"):
        for cid, body in db.execute("SELECT conversation_id, body FROM stats").fetchall():
            wire = scorer_pb2.FinetuneScoringStats.FromString(body)
            wire.conversation_id = cid
            _keep(db, wire)
        db.execute("DROP TABLE stats")
    if _exists(db, "scoring_stats"):
        for (text,) in db.execute("SELECT json FROM scoring_stats").fetchall():
            fields = json.loads(text)
            taken = int(fields.pop("taken_at_ns", 0) or 0)
            known = scorer_pb2.FinetuneScoringStats.DESCRIPTOR.fields_by_name
            wire = scorer_pb2.FinetuneScoringStats(
                **{k: v for k, v in fields.items() if k in known}
            )
            if taken:
                wire.taken_at.CopyFrom(to_timestamp(taken))
            _keep(db, wire)
        db.execute("DROP TABLE scoring_stats")


# The jobs table before its figures were one message (schemas 4 to 6): these columns held
# them one by one.
_LEGACY_FIGURES = (
    "trained_divergence_before", "trained_divergence_after", "recall", "generic_loglik_change",
)  # fmt: skip
_KEPT_JOB_COLUMNS = (
    "destination", "id", "state", "examples", "step", "total_steps", "detail", "adapter",
    "adapter_path", "error", "created_at_ns", "ended_at_ns", "follow_note", "measured_at_ns",
)  # fmt: skip


def job_figures_as_messages(db: sqlite3.Connection) -> None:
    """Rebuilds a jobs table of an older file whose figures were columns of their own
    (`epochs`, `recall`, ...) into today's, where they are one wire `TrainingJob` message
    (`figures`): the table is created anew (SQLite cannot drop a NOT NULL column), each
    row's figures moved into the message, and the old table dropped."""
    present = [row[1] for row in db.execute("PRAGMA table_info(jobs)")]
    if "figures" in present:
        return
    kept = ", ".join(_KEPT_JOB_COLUMNS)
    rows = db.execute(f"SELECT {kept}, epochs, {', '.join(_LEGACY_FIGURES)} FROM jobs").fetchall()
    (create,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()
    db.execute("ALTER TABLE jobs RENAME TO jobs_before_figures")
    db.execute(f"CREATE TABLE {store_rows.JOBS_TABLE}")
    for row in rows:
        epochs, *legacy = row[len(_KEPT_JOB_COLUMNS) :]
        message = review_pb2.TrainingJob(epochs=epochs or 0)
        for name, value in zip(_LEGACY_FIGURES, legacy, strict=True):
            if value is not None:
                setattr(message, name, value)
        db.execute(
            f"INSERT INTO jobs ({kept}, figures) VALUES"
            f" ({', '.join('?' for _ in _KEPT_JOB_COLUMNS)}, ?)",
            (*row[: len(_KEPT_JOB_COLUMNS)], message.SerializeToString(deterministic=True)),
        )
    db.execute("DROP TABLE jobs_before_figures")
    log.info("jobs table rebuilt with its figures as one message (was: %s)", create)


def release_stranded(db: sqlite3.Connection) -> None:
    """Takes out of the ledger the replies a failed job stranded there: earlier versions
    wrote the ledger when the endpoint accepted a reply, so a job that then failed left
    entries of a job stored FAILED that carry no adapter. Their conversations are stored,
    so the next SyncCandidates brings them back as candidates."""
    stranded = (
        " FROM trained WHERE coalesce(adapter, '') = '' AND EXISTS (SELECT 1 FROM jobs"
        " WHERE jobs.destination = trained.destination AND jobs.id = trained.job_id"
        " AND jobs.state = ?)"
    )
    failed = (int(JobState.FAILED),)
    (count,) = db.execute("SELECT count(*)" + stranded, failed).fetchone()
    if count:
        db.execute("DELETE" + stranded, failed)
        log.warning(
            "%d repl%s of failed training jobs left the trained ledger (earlier versions "
            "wrote it when the endpoint accepted them); SyncCandidates brings them back as "
            "candidates", count, "y" if count == 1 else "ies",
        )  # fmt: skip


def ledger_content(db: sqlite3.Connection) -> None:
    """Fills the reply text of ledger entries written before the ledger kept it (schema 8):
    from the candidate row if one is stored, else from the reply's latest score (which
    keeps its text); "" when neither is. Entries that have a text keep it."""
    db.execute(
        "UPDATE trained SET content = coalesce("
        "(SELECT c.content FROM candidates AS c WHERE c.timestamp_ns = trained.timestamp_ns),"
        " (SELECT s.content FROM scored_replies AS s WHERE s.timestamp_ns = trained.timestamp_ns"
        " AND s.content IS NOT NULL), '') WHERE content IS NULL"
    )


def _exists(db: sqlite3.Connection, table: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return found.fetchone() is not None


def _keep(db: sqlite3.Connection, wire: scorer_pb2.FinetuneScoringStats) -> None:
    taken = wire.taken_at.seconds * 1_000_000_000 + wire.taken_at.nanos
    db.execute(
        "INSERT OR IGNORE INTO stats_messages (conversation_id, taken_at_ns, body)"
        " VALUES (?, ?, ?)",
        (wire.conversation_id, taken, wire.SerializeToString(deterministic=True)),
    )
