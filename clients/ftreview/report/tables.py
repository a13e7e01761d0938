"""The human output of the `ftreview` command: rich tables and one-line texts.

Invariant: every cell is one line (free text shortened with an ellipsis), so a table in a
pipe keeps one row per line and a terminal never wraps a row.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from ftreview.client import job_state_name, status_name
from ftreview.core.values import format_ns, is_set
from ftreview.core.wire import timestamp_ns
from ftreview.report.replies import ReplyRow, RunSummary
from ftreview.report.shapes import optional, skipped
from ftreview.v1 import activity_pb2, review_pb2, scorer_pb2

# Below this width the candidate table leaves out the question: the reply matters more.
QUESTION_WIDTH = 110


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """Left-aligned columns without borders; every cell on one line. Only the last column
    (free text) gives way on a narrow terminal, cut with an ellipsis: the others (IDs,
    states, numbers) are never narrower than their widest cell, so an ID is always whole
    and can be pasted back."""
    shown = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for i, header in enumerate(headers):
        if i == len(headers) - 1:
            # All that is left of the line (`fit` makes the table that wide when it has to).
            shown.add_column(header, no_wrap=True, overflow="ellipsis", ratio=1)
            continue
        widest = max((cell_len(str(row[i])) for row in rows if i < len(row)), default=0)
        shown.add_column(header, no_wrap=True, width=max(widest, cell_len(header)))
    for row in rows:
        shown.add_row(*row)
    return shown


def fit(renderable: Table, width: int) -> Table:
    """`renderable` for a line of `width` cells: a table wider than that takes the whole
    line, so that only its last column gives way (rich would otherwise squeeze or drop any
    column, an ID among them)."""
    natural = Measurement.get(Console(width=10_000), Console(width=10_000).options, renderable)
    renderable.expand = natural.maximum > width
    return renderable


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


def candidate_status(candidate: review_pb2.Candidate) -> str:
    """`pending`, `approved`, `rejected`, or `training · ft-3` for a reply in a training job."""
    if candidate.status == review_pb2.CANDIDATE_STATUS_SENT:
        return f"training · {candidate.job_id}" if candidate.job_id else "training"
    return status_name(candidate.status)


# A flagged row's mark, after its status (the table's STATUS column).
GROUNDING_MARKS = {
    review_pb2.GROUNDING_CONTRADICTS_MEMORY: "≠",
    review_pb2.GROUNDING_BEYOND_MEMORIES: "+",
}


def grounding_notes(candidates: Sequence[review_pb2.Candidate]) -> list[str]:
    """What the marks of flagged rows mean, one line; empty when no row is flagged."""
    kinds = {c.grounding for c in candidates}
    parts = []
    if review_pb2.GROUNDING_CONTRADICTS_MEMORY in kinds:
        parts.append("≠ contradicts its memory")
    if review_pb2.GROUNDING_BEYOND_MEMORIES in kinds:
        parts.append("+ says more than its memories")
    return [f"{', '.join(parts)} (--grounding NAME lists them, --json says where)"] if parts else []


def change_mark(candidate: review_pb2.Candidate) -> str:
    """» when the reply supersedes a live trained fact, × when it conflicts with another
    undecided candidate (both when both)."""
    mark = "»" if candidate.HasField("supersedes") else ""
    return mark + ("×" if candidate.conflicts_with else "")


def grouped(candidates: Sequence[review_pb2.Candidate]) -> list[review_pb2.Candidate]:
    """`candidates` in their order, except that the listed candidates a row conflicts with
    (directly or through another) follow the group's first row."""
    at = {timestamp_ns(c.timestamp): i for i, c in enumerate(candidates)}
    group = list(range(len(candidates)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, c in enumerate(candidates):
        for other in c.conflicts_with:
            j = at.get(timestamp_ns(other))
            if j is not None:
                a, b = sorted((root(i), root(j)))
                group[b] = a
    return [candidates[i] for i in sorted(range(len(candidates)), key=lambda i: (root(i), i))]


def change_notes(candidates: Sequence[review_pb2.Candidate], width: int) -> list[str]:
    """Under the table, at most `width` characters a line: for each row that supersedes a
    trained fact, that fact and what differs; for each conflict between listed rows, one
    line (not one per side). Empty when no row is marked."""
    lines = []
    said: set[frozenset[int]] = set()
    for c in grouped(candidates):
        mine = timestamp_ns(c.timestamp)
        if c.HasField("supersedes"):
            line = f"» {mine} supersedes {timestamp_ns(c.supersedes)}: {c.change}"
            lines.append(one_line(line, width))
        others = [timestamp_ns(t) for t in c.conflicts_with]
        if not others or all(frozenset((mine, o)) in said for o in others):
            continue
        said.update(frozenset((mine, o)) for o in others)
        what = "" if c.HasField("supersedes") else f": {c.change}"
        ids = ", ".join(map(str, others))
        lines.append(one_line(f"× {mine} conflicts with {ids}{what}", width))
    return lines


def send_notes(candidates: Sequence[review_pb2.Candidate]) -> list[str]:
    """For the replies the last send did not train (refused, or a job did not learn them),
    one line each: the id and why. Empty when there are none."""
    noted = [c for c in candidates if c.send_error]
    if not noted:
        return []
    lines = ["not trained by the last send (the next send tries again):"]
    lines += [f"  {timestamp_ns(c.timestamp)}  {one_line(c.send_error, 160)}" for c in noted]
    return lines


def candidate_table(candidates: Sequence[review_pb2.Candidate], width: int = 0) -> Table:
    """ID, status (a reply in training names its job; ≠ or + after it when the reply
    contradicts or goes beyond its memories, » when it supersedes a trained fact, × when it
    conflicts with another candidate), numbers, the question the reply answered (when
    `width` leaves room for it) and the reply. Conflicting rows are next to each other
    (`grouped`)."""
    with_question = width >= QUESTION_WIDTH
    headers = ["ID", "STATUS", "DIVERGENCE", "PEAK"]
    headers += ["QUESTION", "REPLY"] if with_question else ["REPLY"]
    rows = []
    for c in grouped(candidates):
        mark = (GROUNDING_MARKS.get(c.grounding) or "") + change_mark(c)
        status = candidate_status(c)
        row = [str(timestamp_ns(c.timestamp)), f"{status} {mark}" if mark else status]
        row += [number(c.divergence), number(c.peak)]
        if with_question:
            row.append(one_line(c.question, 30) or "-")
        row.append(one_line(c.content, 70))
        rows.append(row)
    return table(headers, rows)


def _before_after(before: float | None, after: float | None) -> str:
    if before is None and after is None:
        return "-"
    return f"{number(before)} → {number(after) if after is not None else '(not yet)'}"


def trained_table(entries: Sequence[review_pb2.TrainedEntry]) -> Table:
    return table(
        ["ID", "TRAINED AT", "JOB", "ADAPTER", "DIVERGENCE BEFORE → AFTER", "DESTINATION"],
        [
            [
                str(timestamp_ns(e.timestamp)),
                format_ns(timestamp_ns(e.trained_at)),
                e.job_id or "-",
                e.adapter or "-",
                _before_after(optional(e, "divergence_before"), optional(e, "divergence_after")),
                e.destination,
            ]
            for e in entries
        ],
    )


def job_figures(job: review_pb2.TrainingJob) -> str:
    """A job's measured figures in one line, leaving out what the trainer did not report."""
    parts = []
    before, after = (
        optional(job, "trained_divergence_before"),
        optional(job, "trained_divergence_after"),
    )
    if before is not None or after is not None:
        parts.append(f"divergence {_before_after(before, after)}")
    learnt = optional(job, "learnt")
    if learnt is not None:
        parts.append(f"learnt {learnt} of {job.examples or len(job.per_example) or '?'}")
    recall = optional(job, "recall")
    if recall is not None:
        parts.append(f"recall {recall:.0%}")
    retention = optional(job, "general_retention")
    if retention is not None:
        parts.append(f"general answers kept {retention:.0%}")
    drift = optional(job, "drift")
    if drift is not None:
        parts.append(f"drift {drift:.3g}")
    change = optional(job, "generic_loglik_change")
    if change is not None:
        parts.append(f"generic log-likelihood {change:+.3g} nats/token")
    if job.epochs:
        parts.append(f"{job.epochs} epoch{'s' if job.epochs != 1 else ''}")
    return ", ".join(parts) or "-"


def decisions_table(decisions: Sequence[review_pb2.Decision]) -> Table:
    """Newest first: when, the reply's ID, what it became, who, why, and the reply."""
    return table(
        ["DECIDED", "ID", "STATUS", "REVIEWER", "REASON", "REPLY"],
        [
            [
                format_ns(timestamp_ns(d.decided_at)),
                str(timestamp_ns(d.timestamp)),
                status_name(d.status),
                d.reviewer or "-",
                one_line(d.reason, 40) or "-",
                one_line(d.content, 200),
            ]
            for d in decisions
        ],
    )


def jobs_table(jobs: Sequence[review_pb2.TrainingJob]) -> Table:
    return table(
        ["JOB", "STATE", "EXAMPLES", "CREATED", "ADAPTER", "FIGURES"],
        [
            [
                j.id,
                job_state_name(j.state),
                str(j.examples),
                format_ns(timestamp_ns(j.created_at)),
                j.adapter or "-",
                f"error: {one_line(j.error, 80)}" if j.error else job_figures(j),
            ]
            for j in jobs
        ],
    )


def stats_table(runs: Sequence[scorer_pb2.FinetuneScoringStats]) -> Table:
    """The last run of every conversation, one row each."""
    return table(
        ["CONVERSATION", "SEEN", "SCORED", "ABOVE THRESHOLD", "MAX DIVERGENCE", "SKIPPED",
         "ERROR"],
        [
            [
                s.conversation_id,
                str(s.responses_seen),
                str(s.responses_scored),
                str(s.responses_above_threshold),
                number(s.max_divergence) if s.responses_scored else "-",
                str(skipped(s)),
                one_line(s.error, 60) or "-",
            ]
            for s in runs
        ],
    )  # fmt: skip


def stats_text(reply: review_pb2.GetStatsResponse) -> str:
    """The last run explained, so an empty candidate list says why."""
    last = reply.last
    lines = [
        f"candidates: {reply.pending} pending, {reply.approved} approved, "
        f"{reply.rejected} rejected, {reply.training} in training; {reply.trained} trained",
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


def stats_totals_text(runs: Sequence[scorer_pb2.FinetuneScoringStats]) -> str:
    """`total: 12 conversations · 80 seen · 79 scored · 14 above threshold · max 2.71 · ...`"""
    if not runs:
        return "total: no conversation scored yet"
    seen = sum(s.responses_seen for s in runs)
    scored = sum(s.responses_scored for s in runs)
    above = sum(s.responses_above_threshold for s in runs)
    parts = [
        f"total: {len(runs)} conversation{'s' if len(runs) != 1 else ''}",
        f"{seen} seen",
        f"{scored} scored",
        f"{above} above threshold",
        f"max divergence {number(max(s.max_divergence for s in runs))}",
        f"{sum(skipped(s) for s in runs)} skipped",
    ]
    errors = sum(1 for s in runs if s.error)
    if errors:
        parts.append(f"{errors} with an error")
    return " · ".join(parts)


def score_summary_table(runs: Sequence[RunSummary]) -> Table:
    return table(
        ["FILE", "CONVERSATION", "REPLIES", "CANDIDATES", "MAX DIVERGENCE", "STATE"],
        [
            [
                r.file,
                r.conversation_id,
                str(r.replies),
                str(r.candidates),
                number(r.max_divergence),
                r.state.replace("_", " "),
            ]
            for r in runs
        ],
    )


def score_total_text(runs: Sequence[RunSummary]) -> str:
    """`total: 50 conversations · 212 replies · 41 candidates · max divergence 2.7`."""
    scored = [r.max_divergence for r in runs if r.max_divergence is not None]
    parts = [
        f"total: {len(runs)} conversation{'s' if len(runs) != 1 else ''}",
        f"{sum(r.replies for r in runs)} replies",
        f"{sum(r.candidates for r in runs)} candidates",
        f"max divergence {number(max(scored)) if scored else '-'}",
    ]
    failed = sum(1 for r in runs if r.state in ("failed", "cancelled", "lost"))
    if failed:
        parts.append(f"{failed} failed")
    return " · ".join(parts)
