"""The detail pane: the selected reply in its context, and what it leaned on.

From top to bottom: one title line with the reply's own numbers; the question it answered;
the reply, each character on the colour of its strongest token, the parts that contradict
or go beyond its memories on their own colour and listed below it; the memories of its prompt,
largest attribution first, the top one marked (beside the reply on a wide terminal, below it
on a narrow one); and why the last send did not train it (the endpoint's refusal, or the
training job that did not learn it), above the question; what approving it would change
(the trained fact it supersedes, the candidates it conflicts with, what differs), under
that. What the model says without memories (the alternate) sits beside the reply when the
terminal is wide enough for two readable columns, each column with its own numbers; on a
narrow one it takes the reply's place. The pane draws what it is given and keeps no state,
like every widget here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ftreview.tui.changes import change_lines
from ftreview.tui.highlight import (
    GROUNDING_FLAGS,
    grounding_lines,
    highlight_tokens,
    mark_grounding,
)
from ftreview.tui.views import CandidateView, MemoryView, Status

MEMORIES_BESIDE_COLUMNS = 120
"""From this width the memories sit beside the reply."""
ALTERNATE_BESIDE_COLUMNS = 140
"""From this width the alternate sits beside the reply instead of replacing it."""


@dataclass(frozen=True)
class DetailRequest:
    """Everything the pane needs to draw one candidate."""

    candidate: CandidateView | None
    alternate: bool = False
    generating: bool = False
    alternate_error: str = ""
    numbers: bool = False
    width: int = 80
    conflicts: tuple[int, ...] = ()
    """The undecided candidates it conflicts with (`Board.conflicts`)."""


def memories_text(memories: tuple[MemoryView, ...]) -> Text:
    text = Text()
    text.append("memories in the prompt", "bold")
    if not memories:
        text.append("\n  none recorded for this reply", "dim")
        return text
    text.append(" · leaned on most first (nats/token)\n", "dim")
    for rank, memory in enumerate(memories):
        top = rank == 0
        text.append("★ " if top else "  ", "bold yellow" if top else "")
        text.append(f"{memory.attribution:>6.3f}  ", "bold" if top else "")
        flat = " ".join(memory.content.split())
        text.append(flat, "bold" if top else "")
        if top:
            text.append("  ← leaned on most", "yellow")
        text.append("\n")
    return text


def _words(text: str) -> str:
    count = len(text.split())
    return f"{count} word{'s' if count != 1 else ''}"


def reply_heading(candidate: CandidateView) -> Text:
    heading = Text()
    heading.append("reply", "bold")
    if candidate.grounding in GROUNDING_FLAGS:
        # First, so a narrow terminal cuts the numbers, not the flag.
        mark, meaning, style = GROUNDING_FLAGS[candidate.grounding]
        heading.append(" ")
        heading.append(f"{mark} {meaning}", style)
    heading.append(
        f" · divergence {candidate.divergence:.3f} nats/token · peak {candidate.peak:.2f}"
        f" · {candidate.status_label} · {candidate.conversation_id}"
    )
    if candidate.status is Status.REJECTED and candidate.reject_reason:
        heading.append(f" · rejected: {candidate.reject_reason}")
    return heading


def send_note(candidate: CandidateView) -> str:
    """Above the question: the training job a reply is in, or why the last send did not
    train it ("" when neither)."""
    if candidate.in_training:
        return (
            f"in training job {candidate.job_id}: it leaves the list once the job learnt it, "
            "or comes back approved if it did not"
        )
    if candidate.send_error:
        return f"not trained yet: {candidate.send_error}"
    return ""


def alternate_heading(candidate: CandidateView) -> Text:
    heading = Text()
    heading.append("alternate (without memories)", "bold")
    if candidate.alternate:
        heading.append(f" · {_words(candidate.alternate)}, {len(candidate.alternate)} chars")
    return heading


class DetailPane(Vertical):
    """The selected candidate: question, reply, memories, alternate, refusal."""

    DEFAULT_CSS = """
    DetailPane { border-top: solid $accent; }
    DetailPane #reply-title { height: 1; padding: 0 1; }
    DetailPane #detail-body { height: 1fr; }
    DetailPane #reply-scroll { width: 1fr; height: 1fr; padding: 0 1; }
    DetailPane #alternate-scroll { width: 1fr; height: 1fr; padding: 0 1;
                                   border-left: vkey $accent; }
    DetailPane #memories-side { width: 42%; max-width: 70; height: 1fr; padding: 0 1;
                                border-left: vkey $accent; }
    DetailPane #question { color: $text-muted; }
    DetailPane #send-error { color: $error; }
    DetailPane #send-error.training { color: $accent; }
    DetailPane #changes { color: $warning; }
    DetailPane #reply-body { min-height: 1; }
    DetailPane #memories-below { margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="reply-title")
        with Horizontal(id="detail-body"):
            # Never focused: the list keeps the keys (paging, Home/End), J/K scroll the pane.
            with VerticalScroll(id="reply-scroll", can_focus=False):
                yield Static(id="send-error")
                yield Static(id="changes")
                yield Static(id="question")
                yield Static(id="reply-body")
                yield Static(id="memories-below")
            with VerticalScroll(id="alternate-scroll", can_focus=False):
                yield Static(id="alternate-title")
                yield Static(id="alternate-body")
            with VerticalScroll(id="memories-side"):
                yield Static(id="memories")

    def scroll_reply(self, lines: int) -> None:
        self.query_one("#reply-scroll", VerticalScroll).scroll_relative(y=lines, animate=False)

    def show(self, request: DetailRequest) -> None:
        candidate = request.candidate
        title = self.query_one("#reply-title", Static)
        body = self.query_one("#reply-body", Static)
        question = self.query_one("#question", Static)
        refusal = self.query_one("#send-error", Static)
        changes = self.query_one("#changes", Static)
        beside = request.width >= ALTERNATE_BESIDE_COLUMNS and request.alternate
        side_memories = request.width >= MEMORIES_BESIDE_COLUMNS and not beside
        alternate_column = self.query_one("#alternate-scroll")
        alternate_column.display = beside
        self.query_one("#memories-side").display = side_memories
        below = self.query_one("#memories-below", Static)
        below.display = not side_memories
        if candidate is None:
            for widget in (title, body, question, refusal, changes, below):
                widget.update("")
            body.loading = False
            return

        refusal.display = bool(candidate.send_error) or candidate.in_training
        refusal.set_class(candidate.in_training, "training")
        refusal.update(Text(send_note(candidate)))
        lines = change_lines(candidate, request.conflicts)
        changes.display = bool(lines)
        changes.update(Text("\n".join(lines)))
        question.display = True
        question.update(
            Text.assemble(("asked ", "bold"), candidate.question)
            if candidate.question
            else Text("(no user turn before this reply)", "dim")
        )
        memories = memories_text(candidate.memories)
        self.query_one("#memories", Static).update(memories)
        below.update(memories)

        reply = highlight_tokens(candidate.tokens, candidate.content, numbers=request.numbers)
        if not request.numbers:
            mark_grounding(reply, candidate.grounding_spans)
        reply.append_text(grounding_lines(candidate.content, candidate.grounding_spans))
        if beside:
            title.update(reply_heading(candidate))
            body.loading = False
            body.update(reply)
            self._show_alternate(self.query_one("#alternate-body", Static), candidate, request)
            self.query_one("#alternate-title", Static).update(alternate_heading(candidate))
        elif request.alternate:
            title.update(alternate_heading(candidate))
            self._show_alternate(body, candidate, request)
        else:
            title.update(reply_heading(candidate))
            body.loading = False
            body.update(reply)

    @staticmethod
    def _show_alternate(target: Static, candidate: CandidateView, request: DetailRequest) -> None:
        if candidate.alternate:
            target.loading = False
            target.update(Text(candidate.alternate))
        elif request.generating:
            target.update("generating the alternate…")
            target.loading = True
        else:
            target.loading = False
            reason = request.alternate_error or "none stored yet"
            target.update(Text(f"No alternate: {reason}. Press w twice to try again."))
