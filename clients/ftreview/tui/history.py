"""The history view (`d`): the Review's decision history, newest first, as ListDecisions
returned it when the key was pressed (the `HISTORY_LIMIT` most recent; `ftreview decisions`
lists them all).

One line a decision: when (UTC, month-day and minute), who, what the reply became, why, and the
reply cut with an ellipsis to the screen's width. It is a copy, not a live view: pressing
`d` again asks the Review again. Escape (or d, q) goes back to the queue unchanged.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ftreview.core.values import format_ns
from ftreview.tui.prompts import reply_line
from ftreview.tui.views import DecisionView

HISTORY_LIMIT = 200
STATUS_STYLE = {"approved": "green", "rejected": "red", "pending": "yellow"}
WIDE_COLUMNS = 120
"""From this width the reason column holds a whole "superseded by <ID>"."""


def _columns(width: int) -> tuple[tuple[int, str], ...]:
    """when, reviewer, status, reason: the reply takes what is left of the width."""
    reason = 33 if width >= WIDE_COLUMNS else 22
    return ((11, "when (UTC)"), (10, "reviewer"), (8, "status"), (reason, "reason"))


def history_text(decisions: list[DecisionView], width: int) -> Text:
    """The view's text for `width` columns (the border and padding taken off)."""
    text = Text()
    text.append(f"decision history · {len(decisions)} newest first", "bold")
    text.append(" · j/k scroll · escape returns\n\n", "dim")
    if not decisions:
        text.append("No decisions yet: approve (a) or reject (r) a reply.", "dim")
        return text
    columns = _columns(width)
    reason_width = columns[-1][0]
    reply_width = max(10, width - sum(w + 1 for w, _ in columns))
    for column_width, name in columns:
        text.append(f"{name:<{column_width}} ", "bold")
    text.append("reply\n", "bold")
    for d in decisions:
        when = format_ns(d.decided_at_ns)[5:16].replace("T", " ")
        status = "undone" if d.status == "pending" else d.status
        text.append(f"{when:<11} ")
        text.append(f"{reply_line(d.reviewer or '-', 10):<10} ")
        text.append(f"{status:<8} ", STATUS_STYLE.get(d.status, ""))
        text.append(f"{reply_line(d.reason or '-', reason_width):<{reason_width}} ")
        text.append(f"{reply_line(d.content, reply_width)}\n")
    return text


class HistoryScreen(ModalScreen[None]):
    """The decision history, scrollable; escape, d or q returns to the queue."""

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape,d,q", "close", "back"),
        Binding("j,down", "scroll(1)", "down", show=False),
        Binding("k,up", "scroll(-1)", "up", show=False),
        Binding("pagedown,space", "scroll(10)", "page down", show=False),
        Binding("pageup", "scroll(-10)", "page up", show=False),
    ]
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    #history { width: 100%; height: 100%; border: round $accent; background: $panel;
               padding: 0 1; }
    """

    def __init__(self, decisions: list[DecisionView]) -> None:
        super().__init__()
        self.decisions = decisions

    def compose(self) -> ComposeResult:
        width = max(40, self.app.size.width - 4)  # the border and the padding
        with VerticalScroll(id="history"):
            yield Static(history_text(self.decisions, width), id="history-text")

    def action_scroll(self, lines: int) -> None:
        self.query_one("#history", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
