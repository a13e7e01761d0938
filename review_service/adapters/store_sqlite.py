"""SQLite store of candidates, the trained ledger, scored replies, conversations, stats,
reply owners, sends in flight and training jobs.

Invariants:
- the schema only grows, and an existing database file opens: tables are created when
  missing and columns added when missing (`_migrate`, one transaction), so a file written
  by an older version keeps its candidates and ledger. Rows of `scored_replies` written
  before the latest scores were kept have NULL scores: they still mark their reply as
  scored (incremental ingest skips it) but carry no score to list. Reply owners of a file
  from before they were kept are taken from its ledger, candidates and scored replies;
- every `commit` is one transaction (BEGIN IMMEDIATE ... COMMIT) in WAL mode with
  `synchronous=FULL`, whatever the number of changes in it: when `commit` returns, they all
  survive a crash of the process and of the machine (and none did if it raised), so the
  service may tell their callers they succeeded;
- a decision (approve, reject, undo) is a row of `decisions`, a few dozen bytes, and
  overrides the status, decision time and reason of its candidate's row; a candidate
  written whole carries its own decision and drops that row, and so does a deleted one.
  Writing the decision into the candidate's row instead made SQLite write the row again
  with its overflow pages (its length changes): ~16 KB of WAL per decision against ~5 KB;
- a reply in the trained ledger is never written back as a candidate (checked here too, so
  no caller bug can resurrect a trained reply);
- no reply is in the ledger because of a job that failed: earlier versions wrote the
  ledger when the endpoint accepted a reply, so a job that then failed stranded its
  replies there (never trained, never sent again). Opening a file removes those entries
  (its job stored FAILED, no adapter), in the migration's transaction; their conversations
  are stored, so the next SyncCandidates brings them back as candidates;
- a ledger entry of a file from before schema 8 opens LIVE (its knowledge state columns
  NULL), with its reply's text taken from wherever the file kept it (`ledger_content`);
- with `background_checkpoints` (the server's store), a commit never checkpoints: SQLite
  would otherwise copy the WAL back into the database inside the commit that passes 1,000
  WAL pages, and that commit (and every decision waiting on it) took up to 72 ms where one
  takes ~1 ms (bench/bench_review.py). A thread of its own, on its own connection, runs
  PASSIVE checkpoints instead, which neither wait for the writer nor block it. Durability
  is the WAL's either way: a checkpoint only moves committed pages.

Used from one thread at a time (the core's store thread).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from review_service.adapters import store_migrations, store_rows
from review_service.domain.jobs import TrainingJob
from review_service.domain.model import (
    Candidate,
    DecisionRecord,
    LatestScore,
    NotCandidateReason,
    ScoringStats,
    SendInFlight,
    Status,
    TrainedEntry,
)
from review_service.domain.ports import StoreChange

SCHEMA_VERSION = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    timestamp_ns INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    content TEXT NOT NULL,
    context TEXT NOT NULL,
    divergence REAL NOT NULL,
    peak REAL NOT NULL,
    tokens TEXT NOT NULL,
    alternate TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'approved', 'rejected', 'forgotten')),
    scored_at_ns INTEGER NOT NULL,
    decided_at_ns INTEGER NOT NULL,
    reject_reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trained (
    timestamp_ns INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    trained_at_ns INTEGER NOT NULL,
    destination TEXT NOT NULL,
    job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scored_replies (
    timestamp_ns INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scored_by_conversation ON scored_replies (conversation_id);
CREATE TABLE IF NOT EXISTS unset_timestamp_scores (
    conversation_id TEXT NOT NULL,
    node_path TEXT NOT NULL,
    PRIMARY KEY (conversation_id, node_path)
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stats_messages (
    conversation_id TEXT PRIMARY KEY,
    taken_at_ns INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reply_owners (
    timestamp_ns INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {jobs};
CREATE INDEX IF NOT EXISTS trained_by_job ON trained (job_id);
CREATE TABLE IF NOT EXISTS decisions (
    timestamp_ns INTEGER PRIMARY KEY,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'approved', 'rejected', 'forgotten')),
    decided_at_ns INTEGER NOT NULL,
    reject_reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decision_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    decided_at_ns INTEGER NOT NULL,
    conversation_id TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sends_in_flight (
    timestamp_ns INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    url TEXT NOT NULL,
    started_at_ns INTEGER NOT NULL
);
""".replace("{jobs}", store_rows.JOBS_TABLE)


log = logging.getLogger("review_service")

# How often the checkpoint thread moves the WAL into the database file.
CHECKPOINT_INTERVAL_S = 0.25


class _Checkpointer:
    """PASSIVE checkpoints on a connection of its own, every `interval` seconds."""

    def __init__(self, path: Path, interval: float) -> None:
        self._stop = threading.Event()
        self._path = path
        self._interval = interval
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="review-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as error:  # the next round tries again
                    log.warning("a background checkpoint failed: %s", error)
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class SqliteStore:
    def __init__(self, path: Path, background_checkpoints: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Transactions are explicit (isolation_level=None); the connection moves to the
        # store thread after this constructor, hence check_same_thread=False.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self.checkpointer: _Checkpointer | None = None
        if background_checkpoints:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self.checkpointer = _Checkpointer(path, CHECKPOINT_INTERVAL_S)

    def _migrate(self) -> None:
        """Creates what is missing, in one transaction: tables, then the columns added
        since (the same path for a new file and for one from any earlier version)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for table, columns in (
                ("scored_replies", store_rows.SCORE_COLUMNS),
                ("unset_timestamp_scores", store_rows.SCORE_COLUMNS),
                ("candidates", store_rows.CANDIDATE_COLUMNS),
                ("trained", store_rows.TRAINED_COLUMNS),
            ):
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns:
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            # Owners of a file from before they were kept: the ledger's first, then the
            # list's, then the scored replies' (OR IGNORE: the first claim wins).
            for table in ("trained", "candidates", "scored_replies"):
                db.execute(
                    "INSERT OR IGNORE INTO reply_owners (timestamp_ns, conversation_id)"
                    f" SELECT timestamp_ns, conversation_id FROM {table} WHERE timestamp_ns != 0"
                )
            store_migrations.stats_as_messages(db)
            store_migrations.job_figures_as_messages(db)
            store_migrations.release_stranded(db)
            store_migrations.ledger_content(db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self._db.close()

    # -- reads --------------------------------------------------------------------------

    def load_candidates(self) -> list[Candidate]:
        return [
            store_rows.candidate(r)
            for r in self._db.execute(
                store_rows.CANDIDATE_SELECT + " ORDER BY c.timestamp_ns"
            ).fetchall()
        ]

    def load_ledger(self) -> list[TrainedEntry]:
        rows = self._db.execute(
            store_rows.TRAINED_SELECT + " ORDER BY trained_at_ns, timestamp_ns"
        ).fetchall()
        return [store_rows.trained(row) for row in rows]

    def decisions(self, limit: int) -> list[DecisionRecord]:
        """The decision history, newest first (`limit` 0: all)."""
        rows = self._db.execute(
            "SELECT timestamp_ns, status, reason, reviewer, decided_at_ns, conversation_id,"
            " content FROM decision_log ORDER BY seq DESC LIMIT ?",
            (limit or -1,),
        ).fetchall()
        return [DecisionRecord(ts, Status(status), *rest) for ts, status, *rest in rows]

    def load_jobs(self) -> list[TrainingJob]:
        rows = self._db.execute(
            f"SELECT {', '.join(store_rows.JOB_COLUMNS)} FROM jobs ORDER BY created_at_ns"
        ).fetchall()
        return [store_rows.job(row) for row in rows]

    def load_stats(self) -> list[ScoringStats]:
        rows = self._db.execute(
            "SELECT conversation_id, taken_at_ns, body FROM stats_messages ORDER BY conversation_id"
        )
        return [ScoringStats(cid, taken, bytes(body)) for cid, taken, body in rows.fetchall()]

    def load_owners(self) -> dict[int, str]:
        return dict(self._db.execute("SELECT timestamp_ns, conversation_id FROM reply_owners"))

    def load_sends_in_flight(self) -> list[SendInFlight]:
        rows = self._db.execute(
            "SELECT timestamp_ns, idempotency_key, url, started_at_ns FROM sends_in_flight"
            " ORDER BY timestamp_ns"
        ).fetchall()
        return [SendInFlight(*row) for row in rows]

    def scored_replies(self, conversation_id: str) -> set[int]:
        # NULL: scored before the scores were kept. 0: refused (too long...), try again.
        rows = self._db.execute(
            "SELECT timestamp_ns FROM scored_replies"
            " WHERE conversation_id = ? AND (scored IS NULL OR scored = 1)",
            (conversation_id,),
        ).fetchall()
        return {row[0] for row in rows}

    def latest_scores(self, conversation_id: str) -> list[LatestScore]:
        """The kept scores of a conversation's replies (rows without scores left out)."""
        columns = ", ".join(name for name, _ in store_rows.SCORE_COLUMNS)
        rows = self._db.execute(
            f"SELECT conversation_id, timestamp_ns, {columns} FROM scored_replies"
            " WHERE conversation_id = ? AND scored IS NOT NULL"
            f" UNION ALL SELECT conversation_id, 0, {columns} FROM unset_timestamp_scores"
            " WHERE conversation_id = ? AND scored IS NOT NULL",
            (conversation_id, conversation_id),
        ).fetchall()
        return [store_rows.latest_score(row) for row in rows]

    def conversation_body(self, conversation_id: str) -> bytes | None:
        row = self._db.execute(
            "SELECT body FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def conversation_ids(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT id FROM conversations ORDER BY id")]

    def generic_replies(self, limit: int) -> list[tuple[str, int]]:
        reason = NotCandidateReason.BELOW_THRESHOLD.value
        rows = self._db.execute(
            "SELECT conversation_id, timestamp_ns FROM scored_replies"
            " WHERE scored = 1 AND candidate = 0 AND reason = ? AND timestamp_ns != 0"
            " AND timestamp_ns NOT IN (SELECT timestamp_ns FROM trained)"
            " ORDER BY abs(divergence), timestamp_ns LIMIT ?",
            (reason, limit),
        ).fetchall()
        return [(cid, ts) for cid, ts in rows]

    # -- the one write path -------------------------------------------------------------

    def commit(self, changes: Sequence[StoreChange]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for change in changes:
                self._write(change)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`executemany`, skipped when there is nothing to write. Each statement the store
        thread runs gives the GIL up and takes it back, and taking it back can wait for the
        event loop's thread (up to the switch interval, 5 ms): a decision runs one statement
        between BEGIN and COMMIT, not the eleven of `_write`, most of them with no rows."""
        if rows:
            self._db.executemany(sql, rows)

    def _write(self, change: StoreChange) -> None:
        db = self._db
        self._many("DELETE FROM trained WHERE timestamp_ns = ?", [(ts,) for ts in change.untrained])
        self._many(
            store_rows.TRAINED_INSERT, [store_rows.trained_values(e) for e in change.trained]
        )
        # Measurements and knowledge state: an entry is never created or moved here.
        self._many(
            store_rows.TRAINED_UPDATE, [store_rows.trained_update(e) for e in change.ledger_updates]
        )
        marks = ", ".join("?" for _ in store_rows.JOB_COLUMNS)
        self._many(
            f"INSERT OR REPLACE INTO jobs ({', '.join(store_rows.JOB_COLUMNS)}) VALUES ({marks})",
            [store_rows.job_values(j) for j in change.jobs],
        )
        deleted = [(ts,) for ts in change.delete]
        self._many("DELETE FROM candidates WHERE timestamp_ns = ?", deleted)
        self._many("DELETE FROM decisions WHERE timestamp_ns = ?", deleted)
        self._many(
            "INSERT OR REPLACE INTO candidates (timestamp_ns, conversation_id, content,"
            " context, divergence, peak, tokens, alternate, status, scored_at_ns,"
            " decided_at_ns, reject_reason, question, memories, send_error, job_id, sent_to)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM trained WHERE timestamp_ns = ?)",
            [(*store_rows.row(c), c.timestamp_ns) for c in change.upsert],
        )
        # A whole row carries its decision: a narrow row kept from before would override it.
        self._many(
            "DELETE FROM decisions WHERE timestamp_ns = ?",
            [(c.timestamp_ns,) for c in change.upsert],
        )
        # A decision is a narrow row of its own: approving a candidate whose row holds its
        # context and per-token values writes a few dozen bytes, not that row again.
        self._many(
            "INSERT OR REPLACE INTO decisions (timestamp_ns, status, decided_at_ns,"
            " reject_reason) SELECT ?, ?, ?, ?"
            " WHERE EXISTS (SELECT 1 FROM candidates WHERE timestamp_ns = ?)",
            [(*store_rows.decision_values(c), c.timestamp_ns) for c in change.decided],
        )
        if change.scores is not None:
            self._keep_scores(*change.scores)
        if change.conversation is not None:
            db.execute(
                "INSERT OR REPLACE INTO conversations (id, body) VALUES (?, ?)",
                (change.conversation.id, change.conversation.body),
            )
        self._many(
            "INSERT INTO decision_log (timestamp_ns, status, reason, reviewer, decided_at_ns,"
            " conversation_id, content) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(d.timestamp_ns, d.status.value, d.reason, d.reviewer, d.decided_at_ns,
              d.conversation_id, d.content) for d in change.logged],
        )  # fmt: skip
        if change.stats is not None:
            db.execute(
                "INSERT OR REPLACE INTO stats_messages (conversation_id, taken_at_ns, body)"
                " VALUES (?, ?, ?)",
                (change.stats.conversation_id, change.stats.taken_at_ns, change.stats.body),
            )
        self._many(
            "INSERT OR IGNORE INTO reply_owners (timestamp_ns, conversation_id) VALUES (?, ?)",
            list(change.owners.items()),
        )
        self._many(
            "DELETE FROM sends_in_flight WHERE timestamp_ns = ?",
            [(ts,) for ts in change.sends_ended],
        )
        self._many(
            "INSERT OR REPLACE INTO sends_in_flight (timestamp_ns, idempotency_key, url,"
            " started_at_ns) VALUES (?, ?, ?, ?)",
            [(s.timestamp_ns, s.idempotency_key, s.url, s.started_at_ns)
             for s in change.sends_started],
        )  # fmt: skip

    def _keep_scores(self, conversation_id: str, scores: list[LatestScore]) -> None:
        columns = ", ".join(name for name, _ in store_rows.SCORE_COLUMNS)
        marks = ", ".join("?" for _ in store_rows.SCORE_COLUMNS)
        self._many(
            f"INSERT OR REPLACE INTO scored_replies (timestamp_ns, conversation_id, {columns})"
            f" VALUES (?, ?, {marks})",
            [(s.timestamp_ns, s.conversation_id, *store_rows.score_values(s)) for s in scores
             if s.timestamp_ns],
        )  # fmt: skip
        self._db.execute(
            "DELETE FROM unset_timestamp_scores WHERE conversation_id = ?", (conversation_id,)
        )
        self._many(
            f"INSERT OR REPLACE INTO unset_timestamp_scores (conversation_id, {columns})"
            f" VALUES (?, {marks})",
            [
                (s.conversation_id, *store_rows.score_values(s))
                for s in scores
                if not s.timestamp_ns
            ],
        )
