"""SQLite store of candidates, the trained ledger, scored replies, conversations and stats.

Invariants:
- the schema only grows, and an existing database file opens: tables are created when
  missing and columns added when missing (`_migrate`, one transaction), so a file written
  by an older version keeps its candidates and ledger. Rows of `scored_replies` written
  before the latest scores were kept have NULL scores: they still mark their reply as
  scored (incremental ingest skips it) but carry no score to list;
- every `StoreChange` is one transaction (BEGIN IMMEDIATE ... COMMIT) in WAL mode with
  `synchronous=FULL`: when `commit` returns, the change survives a crash of the process and
  of the machine, so the service may tell its caller it succeeded;
- a reply in the trained ledger is never written back as a candidate (checked here too, so
  no caller bug can resurrect a trained reply).

Used from one thread at a time (the core's store thread).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ftreview.v1 import scorer_pb2

from .model import Candidate, ContextMessage, LatestScore, Status, TokenValue, TrainedEntry
from .ports import StoreChange

SCHEMA_VERSION = 2

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
CREATE TABLE IF NOT EXISTS stats (
    conversation_id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
"""


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Transactions are explicit (isolation_level=None); the connection moves to the
        # store thread after this constructor, hence check_same_thread=False.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        """Creates what is missing, in one transaction: tables, then the latest-score
        columns (the same path for a new file and for one from schema version 1)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for table in ("scored_replies", "unset_timestamp_scores"):
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in _SCORE_COLUMNS:
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    # -- reads --------------------------------------------------------------------------

    def load_candidates(self) -> list[Candidate]:
        rows = self._db.execute(
            "SELECT timestamp_ns, conversation_id, content, context, divergence, peak, tokens,"
            " alternate, status, scored_at_ns, decided_at_ns, reject_reason FROM candidates"
        ).fetchall()
        return [_candidate(row) for row in rows]

    def load_ledger(self) -> list[TrainedEntry]:
        rows = self._db.execute(
            "SELECT timestamp_ns, conversation_id, trained_at_ns, destination, job_id"
            " FROM trained ORDER BY trained_at_ns, timestamp_ns"
        ).fetchall()
        return [TrainedEntry(*row) for row in rows]

    def load_stats(self) -> list[scorer_pb2.FinetuneScoringStats]:
        rows = self._db.execute("SELECT body FROM stats ORDER BY conversation_id").fetchall()
        return [scorer_pb2.FinetuneScoringStats.FromString(row[0]) for row in rows]

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
        columns = ", ".join(name for name, _ in _SCORE_COLUMNS)
        rows = self._db.execute(
            f"SELECT conversation_id, timestamp_ns, {columns} FROM scored_replies"
            " WHERE conversation_id = ? AND scored IS NOT NULL"
            f" UNION ALL SELECT conversation_id, 0, {columns} FROM unset_timestamp_scores"
            " WHERE conversation_id = ? AND scored IS NOT NULL",
            (conversation_id, conversation_id),
        ).fetchall()
        return [_latest_score(row) for row in rows]

    def conversation(self, conversation_id: str) -> bytes | None:
        row = self._db.execute(
            "SELECT body FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def conversation_ids(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT id FROM conversations ORDER BY id")]

    # -- the one write path -------------------------------------------------------------

    def commit(self, change: StoreChange) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for entry in change.trained:
                db.execute(
                    "INSERT OR IGNORE INTO trained (timestamp_ns, conversation_id, trained_at_ns,"
                    " destination, job_id) VALUES (?, ?, ?, ?, ?)",
                    (
                        entry.timestamp_ns,
                        entry.conversation_id,
                        entry.trained_at_ns,
                        entry.destination,
                        entry.job_id,
                    ),
                )
            db.executemany(
                "DELETE FROM candidates WHERE timestamp_ns = ?", [(ts,) for ts in change.delete]
            )
            for candidate in change.upsert:
                db.execute(
                    "INSERT OR REPLACE INTO candidates (timestamp_ns, conversation_id, content,"
                    " context, divergence, peak, tokens, alternate, status, scored_at_ns,"
                    " decided_at_ns, reject_reason)"
                    " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM trained WHERE timestamp_ns = ?)",
                    (*_row(candidate), candidate.timestamp_ns),
                )
            if change.scores is not None:
                self._keep_scores(*change.scores)
            if change.conversation is not None:
                db.execute(
                    "INSERT OR REPLACE INTO conversations (id, body) VALUES (?, ?)",
                    change.conversation,
                )
            if change.stats is not None:
                db.execute(
                    "INSERT OR REPLACE INTO stats (conversation_id, body) VALUES (?, ?)",
                    (change.stats.conversation_id, change.stats.SerializeToString()),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _keep_scores(self, conversation_id: str, scores: list[LatestScore]) -> None:
        columns = ", ".join(name for name, _ in _SCORE_COLUMNS)
        marks = ", ".join("?" for _ in _SCORE_COLUMNS)
        self._db.executemany(
            f"INSERT OR REPLACE INTO scored_replies (timestamp_ns, conversation_id, {columns})"
            f" VALUES (?, ?, {marks})",
            [(s.timestamp_ns, s.conversation_id, *_score_values(s)) for s in scores
             if s.timestamp_ns],
        )  # fmt: skip
        self._db.execute(
            "DELETE FROM unset_timestamp_scores WHERE conversation_id = ?", (conversation_id,)
        )
        self._db.executemany(
            f"INSERT OR REPLACE INTO unset_timestamp_scores (conversation_id, {columns})"
            f" VALUES (?, {marks})",
            [(s.conversation_id, *_score_values(s)) for s in scores if not s.timestamp_ns],
        )


# The latest score of a reply, in both `scored_replies` and `unset_timestamp_scores`.
# Nullable, because ALTER TABLE adds them to rows that predate them (see `_migrate`).
_SCORE_COLUMNS = (
    ("node_path", "TEXT"),
    ("content", "TEXT"),
    ("scored", "INTEGER"),
    ("divergence", "REAL"),
    ("peak", "REAL"),
    ("candidate", "INTEGER"),
    ("reason", "INTEGER"),  # a ftreview.v1.NotCandidateReason value
    ("context_tokens_cut", "INTEGER"),
    ("scored_at_ns", "INTEGER"),
)


def _score_values(s: LatestScore) -> tuple[Any, ...]:
    return (
        s.node_path,
        s.content,
        int(s.scored),
        s.divergence,
        s.peak,
        int(s.candidate),
        s.reason,
        s.context_tokens_cut,
        s.scored_at_ns,
    )


def _latest_score(row: tuple[Any, ...]) -> LatestScore:
    (cid, ts, path, content, scored, divergence, peak, candidate, reason, cut, scored_at) = row
    return LatestScore(
        conversation_id=cid,
        timestamp_ns=ts,
        node_path=path or "",
        content=content or "",
        scored=bool(scored),
        divergence=divergence or 0.0,
        peak=peak or 0.0,
        candidate=bool(candidate),
        reason=reason or 0,
        context_tokens_cut=cut or 0,
        scored_at_ns=scored_at or 0,
    )


def _row(c: Candidate) -> tuple[Any, ...]:
    if c.status == Status.SENT:
        raise ValueError("sent candidates live in the trained ledger, not in the list")
    context = [[m.role, m.content, m.timestamp_ns] for m in c.context]
    tokens = [
        [t.token_id, t.text, t.logprob_with_memories, t.logprob_without_memories, t.divergence]
        for t in c.tokens
    ]
    return (
        c.timestamp_ns,
        c.conversation_id,
        c.content,
        json.dumps(context, ensure_ascii=False),
        c.divergence,
        c.peak,
        json.dumps(tokens, ensure_ascii=False),
        c.alternate,
        c.status.value,
        c.scored_at_ns,
        c.decided_at_ns,
        c.reject_reason,
    )


def _candidate(row: tuple[Any, ...]) -> Candidate:
    (ts, cid, content, context, divergence, peak, tokens, alternate, status, scored, decided,
     reason) = row  # fmt: skip
    return Candidate(
        timestamp_ns=ts,
        conversation_id=cid,
        content=content,
        context=tuple(ContextMessage(r, t, n) for r, t, n in json.loads(context)),
        divergence=divergence,
        peak=peak,
        tokens=tuple(TokenValue(*token) for token in json.loads(tokens)),
        alternate=alternate,
        status=Status(status),
        scored_at_ns=scored,
        decided_at_ns=decided,
        reject_reason=reason,
    )
