"""The ledger's side of knowledge that lasts: retractions, the served adapter's keys, and
what each job checked. Functions on an open connection, called by `JobLedger` inside its
one-transaction writes.

Invariants:
- an example is `live` or `retracted`; a retracted key stays retracted (its first reason
  kept), is never learnt or replayed again, and a request that sends it again is answered
  with its job and starts nothing;
- the served adapter is the last promoted one in the ledger; it holds the keys of every
  adapter along its `continued_from` chain back to one trained from the base model (its
  *lineage*);
- a retracted key still in the served adapter has a consolidation job queued for it, one
  at a time: retracting while one is queued answers that one; retracting again answers
  the job the first retraction answered (`retract_job`), also after a restart;
- a retracted key in a queued job leaves that job; a learn job left with no key fails
  before it runs, saying so;
- after a promoted job, a consolidation is queued again while the served adapter holds a
  retracted key that still comes back (as last checked; a key never checked counts as
  coming back): one whose new value a learn job trained over it, so that it no longer
  comes back cold, waits for the next consolidation instead of costing a rebuild a day.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .examples import Example
from .lasting import CONSOLIDATE, Known


def served(db: sqlite3.Connection) -> tuple[str, str, set[str]] | None:
    """(name, path, lineage) of the served adapter, or None before the first promotion."""
    row = db.execute(
        "SELECT adapter, adapter_path, continued_from FROM jobs "
        "WHERE state = 'succeeded' AND adapter != '' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    lineage = {str(row["adapter"])}
    parent = str(row["continued_from"])
    while parent and parent not in lineage:
        lineage.add(parent)
        up = db.execute(
            "SELECT continued_from FROM jobs WHERE adapter = ? AND state = 'succeeded' "
            "ORDER BY seq DESC LIMIT 1",
            (parent,),
        ).fetchone()
        parent = str(up["continued_from"]) if up else ""
    return str(row["adapter"]), str(row["adapter_path"]), lineage


def _known(row: sqlite3.Row) -> Known:
    fact = json.loads(row["fact"]) if row["fact"] is not None else None
    return Known(
        Example.from_json(json.loads(row["payload"])),
        None if fact is None else tuple(str(w) for w in fact),
        row["state"] == "retracted",
        row["comes_back"] == 0,
    )


def live_learnt(db: sqlite3.Connection) -> list[Known]:
    rows = db.execute(
        "SELECT payload, fact, state, comes_back FROM examples "
        "WHERE adapter != '' AND state = 'live' ORDER BY seq"
    ).fetchall()
    return [_known(r) for r in rows]


def _retracted_rows(db: sqlite3.Connection) -> list[sqlite3.Row]:
    now = served(db)
    if now is None:
        return []
    lineage = sorted(now[2])
    return db.execute(
        "SELECT payload, fact, state, comes_back FROM examples WHERE state = 'retracted' "
        f"AND adapter IN ({', '.join('?' for _ in lineage)}) ORDER BY seq",
        lineage,
    ).fetchall()


def retracted_served(db: sqlite3.Connection) -> list[Known]:
    return [_known(r) for r in _retracted_rows(db)]


def ensure_consolidation(
    db: sqlite3.Connection, created_at: str, why: str = "", only_back: bool = False
) -> str:
    """The queued consolidation job when the served adapter holds a retracted key (with
    `only_back`: one that still comes back, as last checked), or when `why` says another
    reason (drift), queued now unless one already is; else ""."""
    held = _retracted_rows(db)
    if only_back:
        held = [r for r in held if r["comes_back"] is None or r["comes_back"]]
    if not held and not why:
        return ""
    row = db.execute(
        "SELECT job_id FROM jobs WHERE state = 'queued' AND kind = ? ORDER BY seq LIMIT 1",
        (CONSOLIDATE,),
    ).fetchone()
    if row is not None:
        return str(row["job_id"])
    seq = db.execute(
        "INSERT INTO jobs (job_id, state, kind, examples, settings, created_at, detail) "
        "VALUES ('', 'queued', ?, 0, ?, ?, ?)",
        (
            CONSOLIDATE,
            json.dumps({"why": why} if why else {}),
            created_at,
            f"queued: rebuild the adapter from the base model without {len(held)} retracted keys"
            if held
            else f"queued: rebuild the adapter from the base model ({why})",
        ),
    ).lastrowid
    job_id = f"ft-{seq}"
    db.execute("UPDATE jobs SET job_id = ? WHERE seq = ?", (job_id, seq))
    return job_id


def retract(db: sqlite3.Connection, items: list[tuple[str, str]], ended_at: str) -> dict[str, Any]:
    """`{"retracted", "unknown", "job_id"}` for (key, reason) pairs (see the invariants)."""
    retracted: list[str] = []
    unknown: list[str] = []
    earlier = ""
    fresh: list[str] = []  # newly retracted keys the served adapter holds
    now = served(db)
    lineage = now[2] if now else set()
    for key, reason in items:
        row = db.execute(
            "SELECT e.state, e.adapter, e.job_id, e.retract_job, j.state AS job_state, "
            "j.kind FROM examples e JOIN jobs j ON e.job_id = j.job_id WHERE e.key = ?",
            (key,),
        ).fetchone()
        if row is None:
            unknown.append(key)
            continue
        retracted.append(key)
        if row["state"] == "retracted":
            earlier = earlier or str(row["retract_job"])
            continue
        if row["adapter"] in lineage:
            fresh.append(key)
        db.execute(
            "UPDATE examples SET state = 'retracted', reason = ? WHERE key = ?", (reason, key)
        )
        if row["job_state"] == "queued" and not row["adapter"]:
            _leave_queued_job(db, str(row["job_id"]), str(row["kind"]), ended_at)
    job_id = ensure_consolidation(db, ended_at) if fresh else ""
    if job_id:
        db.executemany(
            "UPDATE examples SET retract_job = ? WHERE key = ?", [(job_id, k) for k in fresh]
        )
    return {"retracted": retracted, "unknown": unknown, "job_id": job_id or earlier}


def _leave_queued_job(db: sqlite3.Connection, job_id: str, kind: str, ended_at: str) -> None:
    left = db.execute(
        "SELECT COUNT(*) AS n FROM examples WHERE job_id = ? AND state = 'live' AND adapter = ''",
        (job_id,),
    ).fetchone()["n"]
    db.execute("UPDATE jobs SET examples = ? WHERE job_id = ?", (left, job_id))
    if left == 0 and kind != CONSOLIDATE:
        db.execute(
            "UPDATE jobs SET state = 'failed', ended_at = ?, detail = ?, error = ? "
            "WHERE job_id = ?",
            (
                ended_at,
                "every key was retracted before the job ran: nothing to learn",
                "every key was retracted before the job ran",
                job_id,
            ),
        )


def record_checks(
    db: sqlite3.Connection,
    job_id: str,
    checks: dict[str, bool],
    learnt: list[str],
    facts: dict[str, list[str]],
) -> None:
    """Per checked key whether it came back and the job that checked it; per learnt key,
    its fact words and comes_back 1."""
    db.executemany(
        "UPDATE examples SET comes_back = ?, checked_job = ? WHERE key = ?",
        [(int(back), job_id, key) for key, back in checks.items()],
    )
    db.executemany(
        "UPDATE examples SET comes_back = 1, checked_job = ?, fact = ? WHERE key = ?",
        [(job_id, json.dumps(facts.get(key, [])), key) for key in learnt],
    )
