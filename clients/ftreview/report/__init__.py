"""What the `ftreview` command prints: the stable `--json` shapes and the human tables
(rich `Table`s, drawn by the CLI).

Invariant: every `--json` shape is built in this package and only here (`shapes`, and
`replies` for the rows of `score`), from explicit field lists (not from a generic
proto-to-dict dump), so that a field added to a proto cannot silently change what scripts
parse, and the README's description of the shapes has one source to match. Reply ids are
`timestamp_ns` integers everywhere (the id the CLI shows and accepts); times are also given
as RFC 3339 strings for people.
"""

from __future__ import annotations

from ftreview.report.replies import (
    Reply,
    ReplyRow,
    RunSummary,
    assistant_replies,
    reply_row_json,
    reply_rows,
)
from ftreview.report.shapes import (
    JsonObject,
    activity_json,
    ask_json,
    candidate_json,
    config_json,
    job_json,
    optional,
    overall_stats_json,
    send_json,
    stats_json,
    stats_totals_json,
    trained_json,
)
from ftreview.report.tables import (
    candidate_status,
    candidate_table,
    change_notes,
    grounding_notes,
    job_figures,
    jobs_table,
    number,
    one_line,
    progress_line,
    reply_table,
    score_summary_table,
    score_total_text,
    send_notes,
    stats_table,
    stats_text,
    stats_totals_text,
    table,
    trained_table,
)

__all__ = [
    "JsonObject",
    "Reply",
    "ReplyRow",
    "RunSummary",
    "activity_json",
    "ask_json",
    "assistant_replies",
    "candidate_json",
    "candidate_status",
    "candidate_table",
    "change_notes",
    "config_json",
    "grounding_notes",
    "job_figures",
    "job_json",
    "jobs_table",
    "number",
    "one_line",
    "optional",
    "overall_stats_json",
    "progress_line",
    "reply_row_json",
    "reply_rows",
    "reply_table",
    "score_summary_table",
    "score_total_text",
    "send_json",
    "send_notes",
    "stats_json",
    "stats_table",
    "stats_text",
    "stats_totals_json",
    "stats_totals_text",
    "table",
    "trained_json",
    "trained_table",
]
