"""The trainer's SQLite job ledger: idempotency keys, jobs and their figures.

Invariants:
- an idempotency key is stored once, with the job that has it; a key seen again while its
  job is queued or running, or once an adapter learnt it, is answered with that job and
  never starts a new one (also after a restart or a crash). A key whose job ended without
  learning it (the guard returned it) moves to the new job of the request that sends it
  again: that is how the Review retries it, and it is still trained at most once into an
  adapter;
- a key stays "pending" (in no promoted adapter) until a job whose adapter learnt it marks
  it, in the same transaction that marks the job succeeded;
- a job is `queued`, `running`, `succeeded` or `failed`; one found `running` at start was
  interrupted and is queued again from the start (`recover`), never resumed half-way;
- every write is one transaction, so a crash leaves the ledger as it was before or after;
- a key is `live` or `retracted` (`knowing.py`): a retracted key is never learnt, replayed
  or sent into a new job again; a job is of `kind` `learn` or `consolidate` and records
  the adapter it `continued_from` ("" for the base model);
- a consolidation that promotes holds every live key it trained, learnt or not: the ones
  it did not learn are said not to come back (`comes_back` 0) and stay in the replay of
  later jobs, since the Review keeps them as trained and will not send them again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import knowing
from .examples import Example, HeldOut
from .lasting import CONSOLIDATE, Started

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    examples INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}',
    epochs INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    loss REAL,
    detail TEXT NOT NULL DEFAULT '',
    adapter TEXT NOT NULL DEFAULT '',
    adapter_path TEXT NOT NULL DEFAULT '',
    trained_divergence_before REAL,
    trained_divergence_after REAL,
    recall REAL,
    generic_loglik_change REAL,
    per_example TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    runs INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    ended_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS examples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL REFERENCES jobs(job_id),
    payload TEXT NOT NULL,
    adapter TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS held_out (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL UNIQUE
);
"""

# Columns added after the first version: (table, name, type), added to an older file at open.
ADDED_COLUMNS = (
    ("jobs", "learnt", "INTEGER"),
    ("jobs", "drift", "REAL"),
    ("jobs", "general_retention", "REAL"),
    ("jobs", "kind", "TEXT NOT NULL DEFAULT 'learn'"),
    ("jobs", "continued_from", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "facts_checked", "INTEGER"),
    ("jobs", "facts_kept", "INTEGER"),
    ("jobs", "retention", "TEXT NOT NULL DEFAULT '[]'"),
    ("jobs", "queued_next", "TEXT NOT NULL DEFAULT ''"),
    ("examples", "state", "TEXT NOT NULL DEFAULT 'live'"),
    ("examples", "reason", "TEXT NOT NULL DEFAULT ''"),
    ("examples", "fact", "TEXT"),
    ("examples", "comes_back", "INTEGER"),
    ("examples", "checked_job", "TEXT NOT NULL DEFAULT ''"),
    ("examples", "retract_job", "TEXT NOT NULL DEFAULT ''"),
)

JOB_FIELDS = (
    "job_id", "state", "examples", "epochs", "step", "total_steps", "loss", "detail",
    "adapter", "adapter_path", "trained_divergence_before", "trained_divergence_after",
    "recall", "generic_loglik_change", "per_example", "error", "created_at", "ended_at",
    "learnt", "drift", "general_retention", "kind", "continued_from", "facts_checked",
    "facts_kept", "retention", "queued_next",
)  # fmt: skip


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobLedger:
    """Safe to share between the HTTP loop and the worker thread (one lock, one connection)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            for table in ("jobs", "examples"):
                have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
                for at, name, kind in ADDED_COLUMNS:
                    if at == table and name not in have:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def accept(
        self, examples: list[Example], held_out: list[HeldOut], settings: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        """(the new job's id or "", {key: the job that accepted it}) for every key."""
        owners: dict[str, str] = {}
        returned: set[str] = set()
        with self._write() as db:
            for example in examples:
                row = db.execute(
                    "SELECT e.job_id, e.adapter, e.state AS knowing, j.state FROM examples e "
                    "JOIN jobs j ON e.job_id = j.job_id WHERE e.key = ?",
                    (example.key,),
                ).fetchone()
                if row is None:
                    continue
                if row["knowing"] == "retracted":
                    owners[example.key] = row["job_id"]  # never learnt again
                elif not row["adapter"] and row["state"] in ("succeeded", "failed"):
                    returned.add(example.key)
                else:
                    owners[example.key] = row["job_id"]
            fresh = [e for e in examples if e.key not in owners]
            for item in held_out:
                db.execute(
                    "INSERT OR IGNORE INTO held_out (payload) VALUES (?)",
                    (json.dumps(item.to_json(), sort_keys=True),),
                )
            if not fresh:
                return "", owners
            seq = db.execute(
                "INSERT INTO jobs (job_id, state, examples, settings, created_at, detail) "
                "VALUES ('', 'queued', ?, ?, ?, 'queued')",
                (len(fresh), json.dumps(settings), now()),
            ).lastrowid
            job_id = f"ft-{seq}"
            db.execute("UPDATE jobs SET job_id = ? WHERE seq = ?", (job_id, seq))
            for example in fresh:
                payload = json.dumps(example.to_json())
                if example.key in returned:
                    db.execute(
                        "UPDATE examples SET job_id = ?, payload = ? WHERE key = ?",
                        (job_id, payload, example.key),
                    )
                else:
                    db.execute(
                        "INSERT INTO examples (key, job_id, payload) VALUES (?, ?, ?)",
                        (example.key, job_id, payload),
                    )
                owners[example.key] = job_id
        return job_id, owners

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _job_json(row)

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY seq DESC").fetchall()
        return [_job_json(row) for row in rows]

    def settings(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute(
                "SELECT settings FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return dict(json.loads(row["settings"])) if row else {}

    def recover(self) -> list[str]:
        """Queue again, from the start, every job a stopped trainer left running."""
        with self._write() as db:
            rows = db.execute("SELECT job_id, runs FROM jobs WHERE state = 'running'").fetchall()
            for row in rows:
                db.execute(
                    "UPDATE jobs SET state = 'queued', step = 0, loss = NULL, detail = ? "
                    "WHERE job_id = ?",
                    (
                        f"queued again: the trainer stopped during run {row['runs']}; "
                        "it runs again from the start and nothing of that run was promoted",
                        row["job_id"],
                    ),
                )
        return [row["job_id"] for row in rows]

    def next_queued(self) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT job_id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else str(row["job_id"])

    def start(self, job_id: str) -> Started:
        """Mark the job running; what it learns and what the ledger knows (`lasting.py`).

        To learn: the live keys this job holds (a key an earlier job did not learn comes
        back only when it is sent again, into that request's job). Also the live keys in a
        promoted adapter and the retracted keys the served adapter holds, in acceptance
        order, for `lasting.plan_job` to draw its replay and retention samples from."""
        with self._write() as db:
            job = db.execute(
                "SELECT detail, runs, kind FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            previous = job["detail"]
            rows = db.execute(
                "SELECT payload FROM examples WHERE job_id = ? AND adapter = '' "
                "AND state = 'live' ORDER BY seq",
                (job_id,),
            ).fetchall()
            learn = [Example.from_json(json.loads(r["payload"])) for r in rows]
            now = knowing.served(db)
            started = Started(
                job_id,
                str(job["kind"]),
                int(job["runs"]) + 1,
                learn,
                knowing.live_learnt(db),
                knowing.retracted_served(db),
                None if now is None else (now[0], now[1]),
            )
            detail = "started" if job["runs"] == 0 else f"started again ({previous})"
            db.execute(
                "UPDATE jobs SET state = 'running', runs = runs + 1, examples = ?, step = 0, "
                "total_steps = 0, loss = NULL, detail = ?, error = '' WHERE job_id = ?",
                (len(learn), detail, job_id),
            )
        return started

    def planned(self, job_id: str, kind: str, continued_from: str, examples: int) -> None:
        """Record what the running job turned out to be (`lasting.plan_job`)."""
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET kind = ?, continued_from = ?, examples = ? WHERE job_id = ?",
                (kind, continued_from, examples, job_id),
            )

    def retract(self, items: list[tuple[str, str]]) -> dict[str, Any]:
        """`{"retracted", "unknown", "job_id"}` (`knowing.retract`), in one transaction."""
        with self._write() as db:
            return knowing.retract(db, items, now())

    def held_out(self) -> list[HeldOut]:
        with self._lock:
            rows = self._db.execute("SELECT payload FROM held_out ORDER BY seq").fetchall()
        return [HeldOut.from_json(json.loads(r["payload"])) for r in rows]

    def progress(self, job_id: str, **fields: Any) -> None:
        allowed = {"step", "total_steps", "loss", "detail", "epochs"}
        names = [name for name in fields if name in allowed]
        if not names:
            return
        with self._write() as db:
            db.execute(
                f"UPDATE jobs SET {', '.join(f'{n} = ?' for n in names)} WHERE job_id = ?",
                (*(fields[n] for n in names), job_id),
            )

    def finish(
        self,
        job_id: str,
        *,
        succeeded: bool,
        detail: str,
        figures: dict[str, Any],
        trained_keys: list[str],
        adapter: str = "",
        adapter_path: str = "",
        error: str = "",
        checks: dict[str, bool] | None = None,
        consolidate_because: str = "",
    ) -> None:
        """End the job; on success the keys it trained are marked as in `adapter`, at once.

        Also, per key it checked, whether it came back (`checks`), and per key it learnt,
        its fact words (from `per_example`). A consolidation's trained keys move to its
        adapter, and so do the live keys it trained but did not learn (said not to come
        back). A retracted key the served adapter still holds and that still comes back
        (retracted while the job ran, or its consolidation was refused) gets a
        consolidation queued, and so does `consolidate_because` (a learn job that drifted
        far, `lasting.drift_reason`)."""
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, detail = ?, error = ?, adapter = ?, adapter_path = ?, "
                "epochs = ?, trained_divergence_before = ?, trained_divergence_after = ?, "
                "recall = ?, generic_loglik_change = ?, per_example = ?, ended_at = ?, "
                "learnt = ?, drift = ?, general_retention = ?, facts_checked = ?, "
                "facts_kept = ?, retention = ? WHERE job_id = ?",
                (
                    "succeeded" if succeeded else "failed",
                    detail,
                    error,
                    adapter,
                    adapter_path,
                    figures.get("epochs", 0),
                    figures.get("trained_divergence_before"),
                    figures.get("trained_divergence_after"),
                    figures.get("recall"),
                    figures.get("generic_loglik_change"),
                    json.dumps(figures.get("per_example", [])),
                    now(),
                    figures.get("learnt"),
                    figures.get("drift"),
                    figures.get("general_retention"),
                    figures.get("facts_checked"),
                    figures.get("facts_kept"),
                    json.dumps(figures.get("retention", [])),
                    job_id,
                ),
            )
            kind = db.execute("SELECT kind FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            rebuilt = kind is not None and kind["kind"] == CONSOLIDATE
            learnt = trained_keys if succeeded else []
            if succeeded:
                db.executemany(
                    "UPDATE examples SET adapter = ? WHERE key = ?"
                    + ("" if rebuilt else " AND adapter = ''"),
                    [(adapter, key) for key in trained_keys],
                )
            if succeeded and rebuilt:
                # A live key the rebuilt adapter trained but did not learn stays in it (and
                # in the replay of later jobs), said not to come back: the Review keeps it
                # as trained, so handing it back to pending would drop it from every job.
                trained = {p["idempotency_key"] for p in figures.get("per_example", [])}
                db.executemany(
                    "UPDATE examples SET adapter = ?, comes_back = 0, checked_job = ? "
                    "WHERE key = ? AND state = 'live'",
                    [(adapter, job_id, key) for key in sorted(trained - set(trained_keys))],
                )
            facts = {p["idempotency_key"]: p["fact"] for p in figures.get("per_example", [])}
            knowing.record_checks(db, job_id, checks or {}, learnt, facts)
            if succeeded and (
                queued := knowing.ensure_consolidation(
                    db, now(), consolidate_because, only_back=True
                )
            ):
                db.executemany(
                    "UPDATE examples SET retract_job = ? WHERE key = ? AND state = 'retracted'",
                    [(queued, key) for key in trained_keys],
                )
                if queued != job_id:  # the job names what it left queued (`queued_next`)
                    db.execute("UPDATE jobs SET queued_next = ? WHERE job_id = ?", (queued, job_id))

    def trained_keys(self) -> dict[str, str]:
        """{key: adapter} of the live keys in a promoted adapter."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, adapter FROM examples WHERE adapter != '' AND state = 'live'"
            )
            return {r["key"]: r["adapter"] for r in rows.fetchall()}


def _job_json(row: sqlite3.Row) -> dict[str, Any]:
    job = {name: row[name] for name in JOB_FIELDS}
    job["per_example"] = json.loads(row["per_example"])
    job["retention"] = json.loads(row["retention"])
    return job
