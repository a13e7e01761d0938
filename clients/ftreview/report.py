"""What the `ftreview` command prints: the stable `--json` shapes and the human tables
(rich `Table`s, drawn by the CLI).

Invariant: every `--json` shape is built here and only here, from explicit field lists (not
from a generic proto-to-dict dump), so that a field added to a proto cannot silently change
what scripts parse, and the README's description of the shapes has one source to match.
Reply ids are `timestamp_ns` integers everywhere (the id the CLI shows and accepts);
times are also given as RFC 3339 strings for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from ftreview.client import activity_state_name, reason_name, status_name
from ftreview.core.conversation import flatten
from ftreview.core.values import format_ns, is_set
from ftreview.core.wire import timestamp_ns
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2

JsonObject = dict[str, Any]


# ---- replies of a scored conversation ---------------------------------------------------


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


# ---- messages to JSON ---------------------------------------------------------------------


def stats_json(stats: scorer_pb2.FinetuneScoringStats) -> JsonObject:
    """FinetuneScoringStats, snake_case, every field present."""
    taken = timestamp_ns(stats.taken_at)
    return {
        "conversation_id": stats.conversation_id,
        "responses_seen": stats.responses_seen,
        "responses_scored": stats.responses_scored,
        "responses_above_threshold": stats.responses_above_threshold,
        "max_divergence": stats.max_divergence,
        "threshold": stats.threshold,
        "skipped_unset_timestamp": stats.skipped_unset_timestamp,
        "skipped_already_trained": stats.skipped_already_trained,
        "skipped_too_long": stats.skipped_too_long,
        "skipped_tokenization_mismatch": stats.skipped_tokenization_mismatch,
        "truncated": stats.truncated,
        "error": stats.error,
        "taken_at": format_ns(taken) if is_set(taken) else None,
        "taken_at_ns": taken,
    }


def overall_stats_json(reply: review_pb2.GetStatsResponse) -> JsonObject:
    """`stats --json`: the last run's FinetuneScoringStats fields at the top level, then
    the candidate counts, the current threshold and each conversation's last run."""
    shape = stats_json(reply.last)
    shape.update(
        {
            "current_threshold": reply.threshold,
            "pending": reply.pending,
            "approved": reply.approved,
            "rejected": reply.rejected,
            "trained": reply.trained,
            "conversations": [stats_json(s) for s in reply.conversations],
        }
    )
    return shape


def candidate_json(candidate: review_pb2.Candidate) -> JsonObject:
    ns = timestamp_ns(candidate.timestamp)
    decided = timestamp_ns(candidate.decided_at)
    return {
        "timestamp_ns": ns,
        "timestamp": format_ns(ns),
        "conversation_id": candidate.conversation_id,
        "status": status_name(candidate.status),
        "divergence": candidate.divergence,
        "peak": candidate.peak,
        "content": candidate.content,
        "alternate": candidate.alternate,
        "reject_reason": candidate.reject_reason,
        "scored_at": format_ns(timestamp_ns(candidate.scored_at)),
        "decided_at": format_ns(decided) if is_set(decided) else None,
    }


def config_json(config: review_pb2.Config) -> JsonObject:
    return {
        "threshold": config.threshold,
        "finetune_url": config.finetune_url,
        "finetune_timeout": config.finetune_timeout,
        "model": config.model,
        "config_path": config.config_path,
    }


def trained_json(entry: review_pb2.TrainedEntry) -> JsonObject:
    ns = timestamp_ns(entry.timestamp)
    return {
        "timestamp_ns": ns,
        "timestamp": format_ns(ns),
        "conversation_id": entry.conversation_id,
        "trained_at": format_ns(timestamp_ns(entry.trained_at)),
        "destination": entry.destination,
        "job_id": entry.job_id,
    }


def send_json(reply: review_pb2.SendResponse) -> JsonObject:
    return {
        "accepted": [timestamp_ns(t) for t in reply.accepted],
        "failed": [
            {"timestamp_ns": timestamp_ns(f.timestamp), "reason": f.reason} for f in reply.failed
        ],
        "job_id": reply.job_id,
        "activity_id": reply.activity_id,
    }


def activity_json(activity: activity_pb2.Activity) -> JsonObject:
    ended = timestamp_ns(activity.ended_at)
    return {
        "id": activity.id,
        "kind": activity.kind,
        "label": activity.label,
        "state": activity_state_name(activity.state),
        "done": activity.done,
        "total": activity.total,
        "detail": activity.detail,
        "error": activity.error,
        "started_at": format_ns(timestamp_ns(activity.started_at)),
        "ended_at": format_ns(ended) if is_set(ended) else None,
    }


# ---- human output -------------------------------------------------------------------------


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """Left-aligned columns without borders; every cell on one line, the last column
    (free text) cut with an ellipsis when the terminal is too narrow for it."""
    shown = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for i, header in enumerate(headers):
        last = i == len(headers) - 1
        shown.add_column(header, no_wrap=True, overflow="ellipsis" if last else "fold")
    for row in rows:
        shown.add_row(*row)
    return shown


def reply_table(rows: Sequence[ReplyRow]) -> Table:
    return table(
        ["ID", "DIVERGENCE", "PEAK", "CANDIDATE", "REPLY"],
        [
            [
                str(r.timestamp_ns),
                number(r.divergence),
                number(r.peak),
                r.status if r.candidate else f"no: {r.reason.replace('_', ' ')}",
                one_line(r.content, 60),
            ]
            for r in rows
        ],
    )


def candidate_table(candidates: Sequence[review_pb2.Candidate]) -> Table:
    return table(
        ["ID", "STATUS", "DIVERGENCE", "PEAK", "REPLY"],
        [
            [
                str(timestamp_ns(c.timestamp)),
                status_name(c.status),
                number(c.divergence),
                number(c.peak),
                one_line(c.content, 70),
            ]
            for c in candidates
        ],
    )


def trained_table(entries: Sequence[review_pb2.TrainedEntry]) -> Table:
    return table(
        ["ID", "TRAINED AT", "JOB", "DESTINATION"],
        [
            [
                str(timestamp_ns(e.timestamp)),
                format_ns(timestamp_ns(e.trained_at)),
                e.job_id or "-",
                e.destination,
            ]
            for e in entries
        ],
    )


def stats_text(reply: review_pb2.GetStatsResponse) -> str:
    """The last run explained, so an empty candidate list says why."""
    last = reply.last
    lines = [
        f"candidates: {reply.pending} pending, {reply.approved} approved, "
        f"{reply.rejected} rejected; {reply.trained} trained",
        f"threshold:  {reply.threshold:g}",
    ]
    if not is_set(timestamp_ns(last.taken_at)) and not last.responses_seen:
        lines.append("last run:   none yet (score a conversation: ftreview score FILE)")
        return "\n".join(lines)
    skipped = {
        "unset timestamp": last.skipped_unset_timestamp,
        "already trained": last.skipped_already_trained,
        "too long": last.skipped_too_long,
        "tokenization mismatch": last.skipped_tokenization_mismatch,
    }
    skipped_text = ", ".join(f"{n} {why}" for why, n in skipped.items() if n) or "none"
    comparison = ">" if last.max_divergence > last.threshold else "<="
    lines += [
        f"last run:   {last.conversation_id or '-'} at {format_ns(timestamp_ns(last.taken_at))}",
        f"  replies seen {last.responses_seen}, scored {last.responses_scored}, "
        f"above threshold {last.responses_above_threshold}",
        f"  max divergence {last.max_divergence:.4g} {comparison} threshold {last.threshold:g}",
        f"  skipped: {skipped_text}",
    ]
    if last.truncated:
        lines.append(f"  context cut to fit: {last.truncated}")
    if last.error:
        lines.append(f"  error: {last.error}")
    return "\n".join(lines)


def progress_line(activity: activity_pb2.Activity, width: int = 24) -> str:
    """`label [#####.....] 3/7 detail`; an unknown total shows the count alone."""
    label = one_line(activity.label or activity.id, 40)
    if activity.total:
        filled = min(width, int(width * activity.done / activity.total))
        bar = "[" + "#" * filled + "." * (width - filled) + "]"
        count = f"{activity.done}/{activity.total}"
    else:
        bar = "[" + "." * width + "]"
        count = str(activity.done) if activity.done else ""
    parts = [label, bar, count, one_line(activity.detail, 40)]
    return " ".join(p for p in parts if p)
