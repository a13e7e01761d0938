"""The pieces of the review screen. Each draws a view it is given and keeps no state of its own.

Keeping the state in the board (`ftreview.tui.board`) and the activity board means a widget
can be redrawn at any time from scratch, so an event arriving from a stream and a key press
can never leave two widgets disagreeing about which reply is selected or what its status is.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ftreview.tui.board import CandidateView, StatsView, Status
from ftreview.tui.highlight import highlight_tokens, legend_scale

STATUS_STYLE = {
    Status.PENDING: Style(color="yellow"),
    Status.APPROVED: Style(color="green", bold=True),
    Status.REJECTED: Style(color="red"),
    Status.SENT: Style(color="blue"),
}

KEYS_HELP: tuple[tuple[str, str], ...] = (
    ("j / ↓", "next reply"),
    ("k / ↑", "previous reply"),
    ("a", "approve, then go to the next pending reply"),
    ("r", "reject, then go to the next pending reply"),
    ("u", "undo the last approve or reject"),
    ("g", "reply or its alternate (what the model says without memories)"),
    ("s", "send the approved replies to fine-tuning"),
    ("+ / -", "threshold x10 / /10 (saved in the config)"),
    ("?", "this legend"),
    ("q", "quit"),
)


def reply_line(content: str, width: int = 70) -> str:
    """A reply on one table row: first line, cut with an ellipsis."""
    flat = " ".join(content.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class CandidateTable(DataTable[Text | str]):
    """The candidate list. The app owns the cursor (a reply's identity), so no focus here."""

    can_focus = False

    def show(self, candidates: list[CandidateView], selected_index: int | None) -> None:
        self.clear()
        for candidate in candidates:
            self.add_row(
                Text(candidate.status.value, STATUS_STYLE[candidate.status]),
                f"{candidate.divergence:.3f}",
                f"{candidate.peak:.2f}",
                reply_line(candidate.content),
                key=str(candidate.timestamp_ns),
            )
        if selected_index is not None:
            self.move_cursor(row=selected_index, scroll=True)


class ReplyPanel(Vertical):
    """The selected reply, token by token on its divergence colour, or its alternate."""

    def compose(self) -> ComposeResult:
        yield Static(id="reply-title")
        with VerticalScroll(id="reply-scroll"):
            yield Static(id="reply-body")

    def show(
        self,
        candidate: CandidateView | None,
        *,
        alternate: bool,
        generating: bool,
        alternate_error: str,
    ) -> None:
        title = self.query_one("#reply-title", Static)
        body = self.query_one("#reply-body", Static)
        if candidate is None:
            title.update("")
            body.update("")
            body.loading = False
            return
        heading = Text()
        heading.append("alternate (without memories)" if alternate else "reply", "bold")
        heading.append(
            f"  ·  divergence {candidate.divergence:.3f} nats/token  ·  peak {candidate.peak:.2f}"
            f"  ·  {candidate.status.value}  ·  {candidate.conversation_id}"
        )
        if candidate.status is Status.REJECTED and candidate.reject_reason:
            heading.append(f"  ·  rejected: {candidate.reject_reason}")
        title.update(heading)
        if not alternate:
            body.loading = False
            body.update(highlight_tokens(candidate.tokens, candidate.content))
        elif candidate.alternate:
            body.loading = False
            body.update(Text(candidate.alternate))
        elif generating:
            body.update("generating the alternate…")
            body.loading = True
        else:
            body.loading = False
            reason = alternate_error or "none stored yet"
            body.update(Text(f"No alternate: {reason}. Press g twice to try again."))


def describe_stats(stats: StatsView | None, threshold: float | None) -> Text:
    """The empty screen: why the last scoring run produced no candidate."""
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
    if not stats.error and stats.responses_seen and stats.max_divergence <= shown_threshold:
        text.append(
            "\nNo reply leaned on its memories more than the threshold allows. "
            "Press - to lower the threshold ten times.\n"
        )
    return text


class LegendScreen(ModalScreen[None]):
    """Keys and colours. Any of escape, ? or q closes it."""

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape,question_mark,q", "close", "close"),
    ]

    DEFAULT_CSS = """
    LegendScreen { align: center middle; }
    #legend { width: 84; height: auto; border: round $accent; padding: 1 2; background: $panel; }
    """

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys\n", "bold")
        for key, meaning in KEYS_HELP:
            text.append(f"  {key:<7}", "bold")
            text.append(f" {meaning}\n")
        text.append(
            "\nToken colours: log p(token | memories) - log p(token | no memories)\n", "bold"
        )
        text.append(legend_scale())
        text.append("\nescape, ? or q closes this legend.", "dim")
        yield Static(text, id="legend")

    def action_close(self) -> None:
        self.dismiss(None)
