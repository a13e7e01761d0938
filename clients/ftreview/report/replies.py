"""The rows of `ftreview score`: every assistant reply of a file, with the latest score the
Review keeps for it, or why it is not a candidate.

Invariant: one row per assistant reply of the file, in file order, never one per score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ftreview.client import reason_name, status_name
from ftreview.core.conversation import flatten
from ftreview.core.values import format_ns, is_set
from ftreview.core.wire import timestamp_ns
from ftreview.report.shapes import JsonObject
from ftreview.v1 import conversation_pb2, review_pb2, scorer_pb2


@dataclass(frozen=True)
class Reply:
    """An assistant reply as it appears in a conversation file."""

    timestamp_ns: int
    content: str
    node_path: str


def assistant_replies(conversation: conversation_pb2.Conversation) -> list[Reply]:
    """Every non-memory assistant leaf, in conversation order (what the Scorer scores)."""
    return [
        Reply(m.timestamp_ns, m.content, m.node_path) for m in flatten(conversation) if m.is_reply
    ]


@dataclass(frozen=True)
class ReplyRow:
    """One line of the `score` table: a reply, its scores, and whether it is a candidate.

    `divergence` and `peak` are None only when the Review service holds no score for the
    reply (its scoring failed, or it was never scored); `reason` is empty for candidates.
    """

    conversation_id: str
    timestamp_ns: int
    content: str
    divergence: float | None
    peak: float | None
    candidate: bool
    status: str
    reason: str


def reply_rows(
    conversation_id: str,
    replies: Sequence[Reply],
    scores: Iterable[scorer_pb2.ReplyScore],
    candidates: Iterable[review_pb2.Candidate],
    failed: bool,
) -> list[ReplyRow]:
    """The table rows of one ingested conversation: each reply of the file, in order, with
    the latest score the Review service keeps for it (`GetStats(conversation_id).replies`).

    A reply is matched by its timestamp, or, when that is unset, by its node path (and
    content). `candidate` is true for a reply the Review lists for review (pending,
    approved or rejected: additive sync keeps it even when a later pass scored it lower)
    or one its latest score calls a candidate; `reason` is the Scorer's
    (`below_threshold`, `unset_timestamp`, `already_trained`, `too_long`,
    `tokenization_mismatch`, `not_requested`), or, for a reply the Review holds no score
    for, `scoring_failed` when this run failed and `not_scored` otherwise.
    """
    by_ns: dict[int, scorer_pb2.ReplyScore] = {}
    by_path: dict[tuple[str, str], scorer_pb2.ReplyScore] = {}
    for score in scores:
        ns = timestamp_ns(score.timestamp)
        if is_set(ns):
            by_ns[ns] = score
        else:
            by_path[(score.node_path, score.content)] = score
    listed = {timestamp_ns(c.timestamp): c for c in candidates}
    rows: list[ReplyRow] = []
    for reply in replies:
        ns = reply.timestamp_ns
        found = by_ns.get(ns) if is_set(ns) else by_path.get((reply.node_path, reply.content))
        held = listed.get(ns) if is_set(ns) else None
        divergence: float | None = None
        peak: float | None = None
        if found is not None and found.scored:
            divergence, peak = found.divergence, found.peak
        elif held is not None:
            divergence, peak = held.divergence, held.peak
        candidate = held is not None or (found is not None and found.candidate)
        # A candidate the Review no longer lists was rejected and left the capped list.
        status = status_name(held.status) if held is not None else "rejected"
        if candidate:
            reason = ""
        elif found is not None:
            reason = reason_name(found.reason) or "not_scored"
        else:
            reason = "scoring_failed" if failed else "not_scored"
        rows.append(
            ReplyRow(
                conversation_id,
                ns,
                reply.content,
                divergence,
                peak,
                candidate,
                status if candidate else "",
                reason,
            )
        )
    return rows


def reply_row_json(row: ReplyRow, file: str) -> JsonObject:
    shape: JsonObject = {
        "file": file,
        "conversation_id": row.conversation_id,
        "timestamp_ns": row.timestamp_ns,
        "timestamp": format_ns(row.timestamp_ns),
        "content": row.content,
        "divergence": row.divergence,
        "peak": row.peak,
        "candidate": row.candidate,
    }
    if row.candidate:
        shape["status"] = row.status
    else:
        shape["reason"] = row.reason
    return shape


@dataclass(frozen=True)
class RunSummary:
    """One row of `score`'s summary over many files."""

    file: str
    conversation_id: str
    replies: int
    candidates: int
    max_divergence: float | None  # None when nothing was scored
    state: str
