"""SQLite store of candidates, the trained ledger, scored replies, conversations and stats.

Invariants:
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

from .model import Candidate, ContextMessage, Status, TokenValue, TrainedEntry
from .ports import StoreChange

SCHEMA_VERSION = 1

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
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

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
        rows = self._db.execute(
            "SELECT timestamp_ns FROM scored_replies WHERE conversation_id = ?",
            (conversation_id,),
        ).fetchall()
        return {row[0] for row in rows}

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
            db.executemany(
                "INSERT OR REPLACE INTO scored_replies (timestamp_ns, conversation_id)"
                " VALUES (?, ?)",
                change.scored,
            )
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
