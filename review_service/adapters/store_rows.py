"""Rows of the SQLite store: how each domain value is written to a row and read back.

Invariant: a value read back equals the value written (`candidate(row(c)) == c`); columns
added by later schema versions are NULL in older rows and read as empty.

A candidate in training (SENT) is its approved row plus the job it is in (`job_id` set):
the status column's CHECK constraint, written into every file since schema 1, allows no
other value, and SQLite cannot change a constraint without rebuilding the table. So a row
with a job is SENT, and one without is what its status says.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from review_service.domain.jobs import JobState, TrainingJob
from review_service.domain.model import (
    Candidate,
    ContextMessage,
    KnowledgeState,
    LatestScore,
    MemoryAttribution,
    NotCandidateReason,
    Status,
    TokenValue,
    TrainedEntry,
)

# Candidate columns added after schema version 2 (NULL in older rows means empty).
CANDIDATE_COLUMNS = (
    ("question", "TEXT"),
    ("memories", "TEXT"),
    ("send_error", "TEXT"),
    ("job_id", "TEXT"),  # schema 6: the training job of a SENT candidate
    ("sent_to", "TEXT"),
)
# A candidate's decision is its row in `decisions` when it has one (see `decision_values`),
# else the columns of its own row (files from before schema 5, and rows written whole).
CANDIDATE_SELECT = (
    "SELECT c.timestamp_ns, c.conversation_id, c.content, c.context, c.divergence, c.peak,"
    " c.tokens, c.alternate, coalesce(d.status, c.status),"
    " c.scored_at_ns, coalesce(d.decided_at_ns, c.decided_at_ns),"
    " coalesce(d.reject_reason, c.reject_reason), c.question, c.memories, c.send_error,"
    " c.job_id, c.sent_to"
    " FROM candidates AS c LEFT JOIN decisions AS d ON d.timestamp_ns = c.timestamp_ns"
)


# The latest score of a reply, in both `scored_replies` and `unset_timestamp_scores`.
# Nullable, because ALTER TABLE adds them to rows that predate them (see `_migrate`).
SCORE_COLUMNS = (
    ("node_path", "TEXT"),
    ("content", "TEXT"),
    ("scored", "INTEGER"),
    ("divergence", "REAL"),
    ("peak", "REAL"),
    ("candidate", "INTEGER"),
    ("reason", "INTEGER"),  # a NotCandidateReason value
    ("context_tokens_cut", "INTEGER"),
    ("scored_at_ns", "INTEGER"),
)


def score_values(s: LatestScore) -> tuple[Any, ...]:
    return (
        s.node_path,
        s.content,
        int(s.scored),
        s.divergence,
        s.peak,
        int(s.candidate),
        s.reason.value,
        s.context_tokens_cut,
        s.scored_at_ns,
    )


def latest_score(row: tuple[Any, ...]) -> LatestScore:
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
        reason=NotCandidateReason(reason or 0),
        context_tokens_cut=cut or 0,
        scored_at_ns=scored_at or 0,
    )


def _stored_status(c: Candidate) -> str:
    """The status column's value: a SENT candidate is stored approved with its job."""
    if c.status == Status.SENT:
        if not c.job_id:
            raise ValueError("a sent candidate is in a training job; this one names none")
        return str(Status.APPROVED.value)
    if c.job_id:
        raise ValueError(f"only a sent candidate is in a training job, not a {c.status.value} one")
    return str(c.status.value)


def row(c: Candidate) -> tuple[Any, ...]:
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
        _stored_status(c),
        c.scored_at_ns,
        c.decided_at_ns,
        c.reject_reason,
        c.question,
        json.dumps(
            [[m.node_path, m.content, m.attribution] for m in c.memories], ensure_ascii=False
        ),
        c.send_error,
        c.job_id,
        c.sent_to,
    )


def decision_values(c: Candidate) -> tuple[Any, ...]:
    """A decision's row: what approve, reject and undo change, and nothing else."""
    if c.status == Status.SENT:
        raise ValueError("a sent candidate is written whole, with its job, not as a decision")
    return (c.timestamp_ns, c.status.value, c.decided_at_ns, c.reject_reason)


def candidate(row: tuple[Any, ...]) -> Candidate:
    (ts, cid, content, context, divergence, peak, tokens, alternate, status, scored, decided,
     reason, question, memories, send_error, job_id, sent_to) = row  # fmt: skip
    return Candidate(
        timestamp_ns=ts,
        conversation_id=cid,
        content=content,
        context=tuple(ContextMessage(r, t, n) for r, t, n in json.loads(context)),
        divergence=divergence,
        peak=peak,
        tokens=tuple(TokenValue(*token) for token in json.loads(tokens)),
        alternate=alternate,
        status=Status.SENT if job_id else Status(status),
        scored_at_ns=scored,
        decided_at_ns=decided,
        reject_reason=reason,
        question=question or "",
        memories=tuple(MemoryAttribution(*m) for m in json.loads(memories or "[]")),
        send_error=send_error or "",
        job_id=job_id or "",
        sent_to=sent_to or "",
    )


# Ledger columns added since schema version 4 (NULL in older rows: not measured, no
# adapter; from schema 8 the fact's knowledge state, NULL read as LIVE and not checked).
TRAINED_COLUMNS = (
    ("divergence_before", "REAL"),
    ("divergence_after", "REAL"),
    ("adapter", "TEXT"),
    ("state", "TEXT"),  # a KnowledgeState value
    ("superseded_by_ns", "INTEGER"),
    ("reason", "TEXT"),
    ("retraction_delivered", "INTEGER"),
    ("comes_back", "INTEGER"),  # NULL: never checked
    ("checked_by_job", "TEXT"),
    ("content", "TEXT"),
    ("reply", "TEXT"),  # the candidate's row as JSON (`row`), NULL when not kept
)
_TRAINED_NAMES = "timestamp_ns, conversation_id, trained_at_ns, destination, job_id, " + ", ".join(
    name for name, _ in TRAINED_COLUMNS
)
TRAINED_SELECT = f"SELECT {_TRAINED_NAMES} FROM trained"
TRAINED_INSERT = (
    f"INSERT OR IGNORE INTO trained ({_TRAINED_NAMES})"
    f" VALUES ({', '.join('?' for _ in range(5 + len(TRAINED_COLUMNS)))})"
)
# What changes of an entry after it is written (never its reply, job or destination).
TRAINED_UPDATE = (
    "UPDATE trained SET divergence_before = ?, divergence_after = ?, adapter = ?, state = ?,"
    " superseded_by_ns = ?, reason = ?, retraction_delivered = ?, comes_back = ?,"
    " checked_by_job = ? WHERE timestamp_ns = ?"
)


def trained_values(e: TrainedEntry) -> tuple[Any, ...]:
    return (
        e.timestamp_ns,
        e.conversation_id,
        e.trained_at_ns,
        e.destination,
        e.job_id,
        *_changing(e),
        e.content,
        None if e.candidate is None else json.dumps(row(_untrained(e.candidate))),
    )


def trained_update(e: TrainedEntry) -> tuple[Any, ...]:
    return (*_changing(e), e.timestamp_ns)


def _changing(e: TrainedEntry) -> tuple[Any, ...]:
    comes_back = None if e.comes_back is None else int(e.comes_back)
    return (
        e.divergence_before, e.divergence_after, e.adapter, e.state.value, e.superseded_by_ns,
        e.reason, int(e.retraction_delivered), comes_back, e.checked_by_job,
    )  # fmt: skip


def _untrained(c: Candidate) -> Candidate:
    """A candidate as a ledger entry keeps it: out of its job (the row of a SENT one names
    its job, which the entry holds already)."""
    if c.status != Status.SENT and not c.job_id:
        return c
    return dataclasses.replace(c, status=Status.APPROVED, job_id="", sent_to="")


def trained(row: tuple[Any, ...]) -> TrainedEntry:
    (ts, cid, at, destination, job_id, before, after, adapter, state, superseded_by, reason,
     delivered, comes_back, checked_by, content, reply) = row  # fmt: skip
    return TrainedEntry(
        ts, cid, at, destination, job_id, before, after, adapter or "",
        state=KnowledgeState(state or KnowledgeState.LIVE.value),
        superseded_by_ns=superseded_by or 0,
        reason=reason or "",
        retraction_delivered=bool(delivered),
        comes_back=None if comes_back is None else bool(comes_back),
        checked_by_job=checked_by or "",
        content=content or "",
        candidate=None if reply is None else candidate(tuple(json.loads(reply))),
    )  # fmt: skip


# A training job as the Review keeps it; per-example results are the trainer's and are not
# kept (the ledger keeps the Review's own measurement of each reply).
# The jobs table (a new file creates it; an older one is rebuilt into it, store_migrations).
JOBS_TABLE = """jobs (
    destination TEXT NOT NULL,
    id TEXT NOT NULL,
    state INTEGER NOT NULL,
    examples INTEGER NOT NULL,
    step INTEGER NOT NULL,
    total_steps INTEGER NOT NULL,
    detail TEXT NOT NULL,
    adapter TEXT NOT NULL,
    adapter_path TEXT NOT NULL,
    figures BLOB NOT NULL,
    error TEXT NOT NULL,
    created_at_ns INTEGER NOT NULL,
    ended_at_ns INTEGER NOT NULL,
    follow_note TEXT NOT NULL,
    measured_at_ns INTEGER NOT NULL,
    PRIMARY KEY (destination, id)
)"""
JOB_COLUMNS = (
    "destination", "id", "state", "examples", "step", "total_steps", "detail", "adapter",
    "adapter_path", "figures", "error", "created_at_ns", "ended_at_ns", "follow_note",
    "measured_at_ns",
)  # fmt: skip


def job_values(j: TrainingJob) -> tuple[Any, ...]:
    return tuple(int(j.state) if name == "state" else getattr(j, name) for name in JOB_COLUMNS)


def job(row: tuple[Any, ...]) -> TrainingJob:
    values = dict(zip(JOB_COLUMNS, row, strict=True))
    values["state"] = JobState(values["state"])
    values["figures"] = bytes(values["figures"])
    return TrainingJob(**values)
