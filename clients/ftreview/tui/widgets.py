"""The list, the legend and the empty screen. Each draws a view it is given, keeping no state.

Keeping the state in the board (`ftreview.tui.board`) and the activity board means a widget
can be redrawn at any time from scratch, so an event arriving from a stream and a key press
can never leave two widgets disagreeing about which reply is selected or what its status is.
`KEYS_HELP` is the one list of keys: the legend prints it and the README quotes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ftreview.tui.changes import CONFLICT_MARK, SUPERSEDES_MARK, change_mark
from ftreview.tui.highlight import GROUNDING_FLAGS, legend_scale
from ftreview.tui.prompts import reply_line
from ftreview.tui.rows import Row
from ftreview.tui.views import CandidateView, Status
from ftreview.v1 import scorer_pb2

# Reply -> the candidates it conflicts with (`Board.conflicts`).
Conflicts = Mapping[int, tuple[int, ...]]
# What the table last drew: rows, selection, marked rows, threshold, conflicts.
_Drawn = tuple[list[Row], int | None, set[tuple[str, Status]], float | None, Conflicts]

STATUS_STYLE = {
    Status.PENDING: Style(color="yellow"),
    Status.APPROVED: Style(color="green", bold=True),
    Status.REJECTED: Style(color="red"),
    Status.SENT: Style(color="blue"),
}
BELOW_THRESHOLD = Style(dim=True)
CHANGE_STYLE = Style(color="magenta", bold=True)

KEYS_HELP: tuple[tuple[str, str], ...] = (
    ("j k ↓ ↑", "next / previous row"),
    ("PgDn PgUp", "a page down / up"),
    ("g g  Home", "first row"),
    ("G  End", "last row"),
    (
        "a",
        "approve the row (all its identical replies), or the marked rows; in a × group,"
        " choose which value is current (the others are rejected as superseded)",
    ),
    ("A", "approve with a note, kept in the decision history"),
    ("r", "reject, with a reason: type one, or 1-9 for a quick reason"),
    ("space", "mark / unmark the row for a bulk approve or reject"),
    ("b", "reject every pending reply below a divergence (asks, with the count)"),
    ("u", "undo the last decision"),
    ("o", "sort: divergence, time (newest first), conversation (pending always first)"),
    ("d", "the decision history, newest first (escape returns)"),
    ("/", "search the replies' text"),
    ("f", "filter by status, conversation, divergence range"),
    ("escape", "clear the marks, then the search and filters"),
    ("h", "hide / show replies below the current threshold (dim otherwise)"),
    ("c", "the whole conversation, the reply highlighted"),
    ("w", "what the model says without memories (beside the reply when wide)"),
    ("n", "per-token numbers in the reply on / off"),
    ("J K", "scroll the reply pane down / up"),
    ("s", "send the approved replies to fine-tuning (asks first)"),
    ("+ -", "threshold x10 / /10 (saved; applies to new scoring)"),
    ("?", "this legend"),
    ("q", "quit"),
)

FIXED_COLUMNS = (("mark", 1), ("status", 8), ("divergence", 10), ("peak", 6), ("count", 4))


def reply_cell(candidate: CandidateView, width: int, style: Style, change: str = "") -> Text:
    """The reply's first line, after the grounding mark (≠, +) when it is flagged and the
    change mark (» supersedes a trained fact, × conflicts with another candidate)."""
    if candidate.grounding not in GROUNDING_FLAGS and not change:
        return Text(reply_line(candidate.content, width), style)
    cell = Text()
    if candidate.grounding in GROUNDING_FLAGS:
        mark, _, flag = GROUNDING_FLAGS[candidate.grounding]
        cell.append(mark, flag)
    cell.append(change, CHANGE_STYLE)
    if cell.plain:
        cell.append(" ")
    cell.append(reply_line(candidate.content, width - len(cell.plain)), style)
    return cell


class CandidateTable(DataTable[Text | str]):
    """The candidate rows. The app owns the cursor (a reply's identity), so no focus here."""

    can_focus = False

    _last: _Drawn | None = None

    def on_resize(self) -> None:
        # The reply column's width follows the table's: draw the same rows again.
        if self._last is not None:
            rows, selected, marked, threshold, conflicts = self._last
            self.show(rows, selected, marked=marked, threshold=threshold, conflicts=conflicts)

    def on_mount(self) -> None:
        for key, width in FIXED_COLUMNS:
            label = {"mark": "✓", "count": "×"}.get(key, key)
            self.add_column(label, key=key, width=width)
        self.add_column("reply", key="reply")

    def reply_width(self) -> int:
        # Each column is padded by one cell on each side.
        fixed = sum(width + 2 for _, width in FIXED_COLUMNS) + 2
        # The table spans the screen; its own size is 0 until it is first shown.
        return max(16, max(self.size.width, self.app.size.width) - fixed - 1)

    def show(
        self,
        rows: list[Row],
        selected_index: int | None,
        *,
        marked: set[tuple[str, Status]],
        threshold: float | None,
        conflicts: Conflicts | None = None,
    ) -> None:
        """`conflicts`: reply -> the candidates it conflicts with (`Board.conflicts`)."""
        conflicts = conflicts or {}
        self._last = (rows, selected_index, marked, threshold, conflicts)
        self.clear()
        width = self.reply_width()
        for row in rows:
            lead = row.lead
            dim = threshold is not None and lead.divergence < threshold
            style = BELOW_THRESHOLD if dim else Style()
            count = f"×{len(row.members)}" if len(row.members) > 1 else ""
            # "training" fits the column; the detail pane's title names the job.
            status = "training" if lead.in_training else lead.status.value
            self.add_row(
                Text("●" if row.key in marked else "", "bold magenta"),
                Text(status, STATUS_STYLE[lead.status] + style),
                Text(f"{lead.divergence:.3f}", style),
                Text(f"{lead.peak:.2f}", style),
                Text(count, style + Style(bold=True)),
                reply_cell(lead, width, style, change_mark(lead, _conflicts(row, conflicts))),
                key=str(lead.timestamp_ns),
            )
        if selected_index is not None:
            self.move_cursor(row=selected_index, scroll=True)


def _conflicts(row: Row, conflicts: Conflicts) -> tuple[int, ...]:
    return tuple(ts for member in row.members for ts in conflicts.get(member.timestamp_ns, ()))


def describe_stats(stats: scorer_pb2.FinetuneScoringStats | None, threshold: float | None) -> Text:
    """The empty screen: why there is nothing to review, said for the cause at hand."""
    text = Text()
    text.append("No candidates to review.\n\n", "bold")
    if stats is None:
        text.append("No scoring run recorded yet. Ingest a conversation with\n")
        text.append("  ftreview score FILE\n", "bold")
        text.append("and its candidates appear here as soon as they are scored.\n")
        if threshold is not None:
            text.append(f"\nthreshold  {threshold:g} nats/token\n")
        return text
    shown_threshold = threshold if threshold is not None else stats.threshold
    text.append("Last scoring run")
    if stats.conversation_id:
        text.append(f" (conversation {stats.conversation_id})")
    text.append(":\n")
    rows = [
        ("replies seen", str(stats.responses_seen)),
        ("replies scored", str(stats.responses_scored)),
        ("above threshold", str(stats.responses_above_threshold)),
        (
            "max divergence",
            f"{stats.max_divergence:.4g} nats/token vs threshold {shown_threshold:g}",
        ),
    ]
    skipped = [
        (stats.skipped_unset_timestamp, "no timestamp (cannot be tracked)"),
        (stats.skipped_already_trained, "already trained"),
        (stats.skipped_too_long, "too long for the model"),
        (stats.skipped_tokenization_mismatch, "tokenized differently without memories"),
    ]
    reasons = [f"{count} {why}" for count, why in skipped if count]
    rows.append(("skipped", ", ".join(reasons) if reasons else "none"))
    if stats.truncated:
        rows.append(("truncated", f"{stats.truncated} scored with part of their context cut"))
    for name, value in rows:
        text.append(f"  {name:<16} {value}\n")
    if stats.error:
        text.append(f"  {'error':<16} ", "bold red")
        text.append(f"{stats.error}\n", "red")
    else:
        text.append(f"\n{why_nothing(stats, shown_threshold)}\n")
    return text


def why_nothing(stats: scorer_pb2.FinetuneScoringStats, threshold: float) -> str:
    """The cause of an empty list, in one sentence a reviewer can act on."""
    if stats.responses_seen == 0:
        return "The conversation has no assistant replies: there is nothing to review."
    if stats.skipped_unset_timestamp >= stats.responses_seen:
        return (
            "No reply has a timestamp, and a reply's timestamp is its identity: add "
            '"timestamp" to the assistant turns and score the file again.'
        )
    if stats.max_divergence == 0:
        return (
            "Every divergence is exactly 0: the conversation has no memories, so there is "
            'nothing to learn. Mark the recalled memories with "memory": true.'
        )
    if stats.max_divergence < 0:
        return (
            "No reply leaned on its memories (every divergence is below 0), "
            "so no threshold would make one a candidate."
        )
    if stats.max_divergence <= threshold:
        presses = max(1, math.ceil(math.log10(threshold / stats.max_divergence)))
        return (
            f"The strongest reply is {threshold / stats.max_divergence:.3g}x below the threshold "
            f"({stats.max_divergence:.3g} vs {threshold:g}). Press - {presses} time"
            f"{'s' if presses > 1 else ''} to lower it; it applies to replies scored from then on."
        )
    return "Every reply above the threshold was decided, sent, or already trained."


class LegendScreen(ModalScreen[None]):
    """Keys and colours, scrollable. Any of escape, ? or q closes it."""

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape,question_mark,q", "close", "close"),
        Binding("j,down", "scroll(1)", "down", show=False),
        Binding("k,up", "scroll(-1)", "up", show=False),
    ]

    DEFAULT_CSS = """
    LegendScreen { align: center middle; }
    #legend-scroll { width: 90; max-width: 100%; height: auto; max-height: 100%;
                     border: round $accent; background: $panel; }
    #legend { height: auto; padding: 0 1; }
    """

    def __init__(self, guidelines: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.guidelines = guidelines

    def compose(self) -> ComposeResult:
        text = Text()
        if self.guidelines:
            text.append("Guidelines (learn.guidelines)\n", "bold")
            for guideline in self.guidelines:
                text.append(f"  • {guideline}\n")
            text.append("\n")
        text.append("Keys\n", "bold")
        for key, meaning in KEYS_HELP:
            text.append(f"  {key:<10}", "bold")
            text.append(f" {meaning}\n")
        text.append(
            "\nToken colours: log p(token | memories) - log p(token | no memories)\n", "bold"
        )
        text.append(legend_scale())
        text.append("\nMarks before a reply\n", "bold")
        text.append(f"  {SUPERSEDES_MARK}  ", CHANGE_STYLE)
        text.append("  approving it replaces a trained fact (the pane says which, what differs)\n")
        text.append(f"  {CONFLICT_MARK}  ", CHANGE_STYLE)
        text.append(
            "  another undecided reply says otherwise: approving both trains a contradiction\n"
        )
        text.append("\nescape, ? or q closes this legend; j/k scroll it.", "dim")
        with VerticalScroll(id="legend-scroll"):
            yield Static(text, id="legend")

    def action_scroll(self, lines: int) -> None:
        self.query_one("#legend-scroll", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
