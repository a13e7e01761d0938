"""The questions the review screen asks, each a modal screen that returns its answer.

Every prompt says what it will do and to how many replies before anything is stored, and
escape always leaves without changing anything. Answers are plain values (a bool, a reason,
a filter), so the screen that asked decides what to do with them.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ftreview.tui.highlight import highlight_tokens
from ftreview.tui.rows import RowFilter
from ftreview.tui.views import CandidateView, Status, TurnView

PROMPT_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 76; max-width: 100%; height: auto; max-height: 100%;
                   border: round $accent; background: $panel; padding: 0 1; }}
{name} Input {{ margin: 1 0 0 0; }}
{name} .hint {{ color: $text-muted; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y or enter says yes; n or escape says no."""

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("y,enter", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]
    DEFAULT_CSS = PROMPT_CSS.format(name="ConfirmScreen")

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question), id="question-text")
            yield Static("y / enter: yes    n / escape: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ReasonScreen(ModalScreen[str | None]):
    """Why a rejection: typed text and enter, or 1-9 for a quick reason; escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]  # noqa: RUF012
    DEFAULT_CSS = PROMPT_CSS.format(name="ReasonScreen")

    def __init__(self, what: str, reasons: tuple[str, ...]) -> None:
        super().__init__()
        self.what = what
        self.reasons = reasons[:9]

    def compose(self) -> ComposeResult:
        text = Text()
        text.append(f"Reject {self.what}. Why?\n", "bold")
        for number, reason in enumerate(self.reasons, start=1):
            text.append(f"  {number}  ", "bold")
            text.append(f"{reason}\n")
        with Vertical():
            yield Static(text)
            yield Input(placeholder="or type a reason; enter with none: no reason", id="reason")
            yield Static("1-9 pick · enter rejects · escape cancels", classes="hint")

    @on(Input.Changed)
    def quick_reason(self, event: Input.Changed) -> None:
        # A digit as the first key picks that reason (the input has the focus, so this is
        # where the key lands).
        value = event.value
        if len(value) == 1 and value in "123456789" and int(value) <= len(self.reasons):
            self.dismiss(self.reasons[int(value) - 1])

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextPrompt(ModalScreen[str | None]):
    """One line of text, with a hint that follows what is typed (e.g. how many it matches)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]  # noqa: RUF012
    DEFAULT_CSS = PROMPT_CSS.format(name="TextPrompt")

    def __init__(self, title: str, value: str, hint: Callable[[str], str]) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text, "bold"))
            yield Input(value=self.value, id="prompt-input")
            yield Static(self.hint(self.value), id="prompt-hint", classes="hint")

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        self.query_one("#prompt-hint", Static).update(self.hint(event.value))

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


def parse_filter(text: str, base: RowFilter) -> RowFilter:
    """`status:pending,approved conv:ID div:0.5..2` (any subset, any order) over `base`.

    Raises ValueError naming the word it could not read.
    """
    statuses: frozenset[Status] = frozenset()
    conversation = ""
    low: float | None = None
    high: float | None = None
    for word in text.split():
        name, _, value = word.partition(":")
        if name == "status":
            try:
                statuses = frozenset(Status(s) for s in value.split(",") if s)
            except ValueError:
                raise ValueError(
                    f"{word}: statuses are pending, approved, rejected, sent"
                ) from None
        elif name in ("conv", "conversation"):
            conversation = value
        elif name in ("div", "divergence"):
            first, dots, second = value.partition("..")
            if not dots:
                raise ValueError(f"{word}: a range is LOW..HIGH (either may be left out)")
            try:
                low = float(first) if first else None
                high = float(second) if second else None
            except ValueError:
                raise ValueError(f"{word}: LOW and HIGH are numbers") from None
        else:
            raise ValueError(f"{word}: expected status:, conv: or div:")
    return RowFilter(
        search=base.search,
        statuses=statuses,
        conversation_id=conversation,
        min_divergence=low,
        max_divergence=high,
        hide_below=base.hide_below,
    )


def filter_text(row_filter: RowFilter) -> str:
    """The filter part of a RowFilter as `parse_filter` reads it (to edit it again)."""
    words = []
    if row_filter.statuses:
        words.append("status:" + ",".join(sorted(s.value for s in row_filter.statuses)))
    if row_filter.conversation_id:
        words.append(f"conv:{row_filter.conversation_id}")
    if row_filter.min_divergence is not None or row_filter.max_divergence is not None:
        low = "" if row_filter.min_divergence is None else f"{row_filter.min_divergence:g}"
        high = "" if row_filter.max_divergence is None else f"{row_filter.max_divergence:g}"
        words.append(f"div:{low}..{high}")
    return " ".join(words)


class ConversationScreen(ModalScreen[None]):
    """The whole conversation, memories marked, the reviewed reply highlighted; scrollable."""

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape,c,q", "close", "close"),
        Binding("j,down", "scroll(1)", "down", show=False),
        Binding("k,up", "scroll(-1)", "up", show=False),
        Binding("pagedown,space", "scroll(10)", "page down", show=False),
        Binding("pageup", "scroll(-10)", "page up", show=False),
    ]
    DEFAULT_CSS = """
    ConversationScreen { align: center middle; }
    #conversation { width: 100%; height: 100%; border: round $accent; background: $panel;
                    padding: 0 1; }
    """

    def __init__(self, turns: list[TurnView], reply: CandidateView) -> None:
        super().__init__()
        self.turns = turns
        self.reply = reply

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="conversation"):
            yield Static(self.render_turns(), id="conversation-text")

    def render_turns(self) -> Text:
        text = Text()
        text.append(f"conversation {self.reply.conversation_id}", "bold")
        text.append(" · j/k, PgUp/PgDn scroll · escape or c closes\n\n", "dim")
        for turn in self.turns:
            reviewed = turn.timestamp_ns == self.reply.timestamp_ns and turn.role == "assistant"
            label = f"{turn.role}{' (memory)' if turn.memory else ''}"
            if reviewed:
                text.append(f"▶ {label}: the reply under review\n", "bold reverse")
                text.append(highlight_tokens(self.reply.tokens, turn.content))
            else:
                text.append(f"{label}\n", "bold magenta" if turn.memory else "bold")
                text.append(turn.content, "italic" if turn.memory else "")
            text.append("\n\n")
        return text

    def on_mount(self) -> None:
        self.call_after_refresh(self._scroll_to_reply)

    def _scroll_to_reply(self) -> None:
        lines = self.render_turns().plain.split("\n")
        for number, line in enumerate(lines):
            if line.startswith("▶"):
                self.query_one("#conversation", VerticalScroll).scroll_to(
                    y=max(0, number - 2), animate=False
                )
                return

    def action_scroll(self, lines: int) -> None:
        self.query_one("#conversation", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)


class CurrentValueScreen(ModalScreen[int | None]):
    """Which reply of a conflict group says the current value: j/k or 1-9 pick, enter
    approves it (the others are rejected as superseded by it), escape cancels. Answers the
    index of the chosen option, the first being the row under the cursor."""

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape", "cancel", "cancel"),
        Binding("j,down", "move(1)", "next", show=False),
        Binding("k,up", "move(-1)", "previous", show=False),
        Binding("enter", "choose", "approve"),
        *(Binding(str(n), f"pick({n - 1})", show=False) for n in range(1, 10)),
    ]
    DEFAULT_CSS = PROMPT_CSS.format(name="CurrentValueScreen")

    def __init__(self, options: list[str], change: str = "") -> None:
        super().__init__()
        self.options = options
        self.change = change
        self.index = 0

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.render_options(), id="current-value")
            yield Static(
                "j/k or 1-9 pick · enter approves it, rejects the others · escape cancels",
                classes="hint",
            )

    def render_options(self) -> Text:
        text = Text()
        text.append("These replies say different things. Which is current?\n", "bold")
        if self.change:
            text.append(f"{self.change}\n", "dim")
        for number, option in enumerate(self.options, start=1):
            chosen = number - 1 == self.index
            text.append("▶ " if chosen else "  ", "bold")
            text.append(f"{number}  ", "bold")
            text.append(f"{reply_line(option, 64)}\n", "reverse" if chosen else "")
        text.append("approving it rejects the others: superseded by it", "dim")
        return text

    def action_move(self, delta: int) -> None:
        self.index = max(0, min(len(self.options) - 1, self.index + delta))
        self.query_one("#current-value", Static).update(self.render_options())

    def action_pick(self, index: int) -> None:
        if index < len(self.options):
            self.dismiss(index)

    def action_choose(self) -> None:
        self.dismiss(self.index)

    def action_cancel(self) -> None:
        self.dismiss(None)


def reply_line(content: str, width: int = 70) -> str:
    """A reply on one line of at most `width` terminal cells: whitespace folded, cut with an
    ellipsis. Cells, not characters: a CJK character or an emoji takes two, so a reply in
    Chinese cut by its characters overran the column and lost its ellipsis."""
    flat = " ".join(content.split())
    if cell_len(flat) <= width:
        return flat
    # set_cell_size pads a wide character it cannot split with a space: the cut stays exact.
    return set_cell_size(flat, max(1, width - 1)).rstrip() + "…"
