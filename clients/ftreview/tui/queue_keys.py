"""The review screen's queue keys: decisions, marks, bulk rejection, undo, search, send.

A base class of `ReviewApp`, kept apart so each module stays readable. The rules:

- a decision applies to a whole row (every identical reply in it) or, when rows are marked,
  to every marked row, in one call to the Review; nothing changes on screen until it answers;
- anything that touches more than one reply, or sends, asks first and says how many;
- approving a row whose replies conflict with other undecided ones (×) asks which value
  is current, listing the group's replies (the row under the cursor first): the chosen one
  is approved and the others rejected "superseded by <ID>", undone together by `u`;
  escape changes nothing; marked rows in a conflict group are approved one at a time;
- undo puts back what the last decision replaced; replies the Review no longer keeps (a
  rejection pushed out of its last-10 list, a reply sent since) are skipped, and the screen
  says so once, with the count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

from textual.app import App

from ftreview.errors import FtreviewError
from ftreview.tui.board import Board
from ftreview.tui.link import SendOutcome, ServiceLink
from ftreview.tui.prompts import (
    ConfirmScreen,
    CurrentValueScreen,
    ReasonScreen,
    TextPrompt,
    filter_text,
    parse_filter,
)
from ftreview.tui.rows import Marks, Row, RowFilter
from ftreview.tui.views import CandidateView, ConfigView, JobView, Status
from ftreview.v1 import scorer_pb2

BULK_CONFIRM_FROM = 2
"""A decision on this many replies or more asks first."""


def _count(n: int, noun: str = "reply") -> str:
    plural = noun[: -len("reply")] + "replies" if noun.endswith("reply") else f"{noun}s"
    return f"{n} {noun if n == 1 else plural}"


class QueueKeys(App[int]):
    board: Board
    connected: bool
    connection: str
    _link: ServiceLink | None

    def __init__(self) -> None:
        super().__init__()
        self.config: ConfigView | None = None
        self.last_stats: scorer_pb2.FinetuneScoringStats | None = None
        self.last_job: JobView | None = None
        self.marks = Marks()
        self.sending = False

    def redraw(self) -> None:
        """Redraw the list and the detail pane (the app fills this in: ReviewApp)."""
        raise NotImplementedError

    def _require_link(self) -> ServiceLink | None:
        if self._link is None or not self.connected:
            self.notify(self.connection, severity="warning", markup=False)
            return None
        return self._link

    def _targets(self) -> list[Row]:
        """The marked rows, or else the row under the cursor."""
        rows = self.board.rows
        marked = self.marks.marked(rows)
        if marked:
            return marked
        current = self.board.current_row()
        return [current] if current is not None else []

    # -- decisions ----------------------------------------------------------------------

    async def _decide(self, members: list[CandidateView], status: Status, reason: str = "") -> None:
        training = [m for m in members if m.in_training]
        members = [m for m in members if not m.in_training]
        if training and not members:
            jobs = ", ".join(sorted({m.job_id for m in training}))
            self.notify(
                f"{_count(len(training))} in training (job {jobs}): decided again only if the "
                "job does not learn it",
                severity="warning",
                markup=False,
            )
            return
        link = self._require_link()
        if link is None or not members:
            return
        try:
            stored = await link.decide([m.timestamp_ns for m in members], status, reason)
        except FtreviewError as error:
            verb = "approve" if status is Status.APPROVED else "reject"
            self.notify(f"{verb} failed: {error}", severity="error", markup=False)
            return
        index = self.board.selected_index()
        self.board.record(members, status)
        for candidate in stored:
            self.board.upsert(candidate)
        self.marks.clear()
        self.board.advance_to_next_pending(from_index=index)
        self.redraw()

    def _confirm_then(
        self,
        question: str,
        count: int,
        then: Callable[[], Coroutine[Any, Any, None]],
        *,
        always: bool = False,
    ) -> None:
        """Run `then` at once for one reply; after a yes for more (or `always`)."""
        if count < BULK_CONFIRM_FROM and not always:
            self.run_worker(then(), group="decide", exit_on_error=False)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(then(), group="decide", exit_on_error=False)

        self.push_screen(ConfirmScreen(question), answered)

    async def action_approve(self) -> None:
        rows = self._targets()
        members = [m for row in rows for m in row.members]
        if not members:
            return
        conflicts = self.board.conflicts()
        others = sorted({o for m in members for o in conflicts.get(m.timestamp_ns, ())})
        if others and len(rows) > 1:
            self.notify(
                "Some marked rows conflict with other replies (×): approve those one at a "
                "time, choosing which value is current.",
                severity="warning",
                markup=False,
            )
            return
        if others:
            self._ask_current(rows[0], others)
            return
        if len(members) < BULK_CONFIRM_FROM:
            await self._decide(members, Status.APPROVED)
            return
        self._confirm_then(
            f"Approve {_count(len(members))} ({_count(len(rows), 'row')})?",
            len(members),
            lambda: self._decide(members, Status.APPROVED),
        )

    def action_approve_with_note(self) -> None:
        """Approve the row (or the marked rows) with a note for the decision history; a
        row in a × group is approved as `a` does it, choosing which value is current."""
        rows = self._targets()
        members = [m for row in rows for m in row.members]
        conflicts = self.board.conflicts()
        if not members or any(conflicts.get(m.timestamp_ns) for m in members):
            self.run_worker(self.action_approve(), group="decide", exit_on_error=False)
            return

        def noted(note: str | None) -> None:
            if note is not None:
                self.run_worker(
                    self._decide(members, Status.APPROVED, note),
                    group="decide",
                    exit_on_error=False,
                )

        title = f"Approve {_count(len(members))}: why? (kept in the history)"
        self.push_screen(TextPrompt(title, "", lambda _: "enter approves, escape cancels"), noted)

    def _ask_current(self, row: Row, others: list[int]) -> None:
        """Which of a conflict group is current: the row first, then the others' replies
        (identical ones together), in the board's order."""
        options: dict[str, list[CandidateView]] = {row.lead.content: list(row.members)}
        for candidate in self.board.ordered:
            if candidate.timestamp_ns in others and candidate.timestamp_ns not in row:
                options.setdefault(candidate.content, []).append(candidate)
        groups = list(options.values())
        change = next((c.change for g in groups for c in g if c.change), "")

        def chosen(index: int | None) -> None:
            if index is None:
                return
            winners = groups[index]
            losers = [c for i, g in enumerate(groups) if i != index for c in g]
            self.run_worker(self._supersede(winners, losers), group="decide", exit_on_error=False)

        self.push_screen(CurrentValueScreen([g[0].content for g in groups], change), chosen)

    async def _supersede(self, winners: list[CandidateView], losers: list[CandidateView]) -> None:
        """Approve `winners`, reject `losers` "superseded by <ID>"; one decision to undo."""
        link = self._require_link()
        if link is None:
            return
        index = self.board.selected_index()
        reason = f"superseded by {winners[0].timestamp_ns}"
        stored: list[CandidateView] = []
        try:
            stored += await link.decide([w.timestamp_ns for w in winners], Status.APPROVED)
            stored += await link.decide([c.timestamp_ns for c in losers], Status.REJECTED, reason)
        except FtreviewError as error:
            self.notify(f"approve failed: {error}", severity="error", markup=False)
        done = {c.timestamp_ns for c in stored}
        self.board.record([c for c in winners + losers if c.timestamp_ns in done], Status.APPROVED)
        for candidate in stored:
            self.board.upsert(candidate)
        self.marks.clear()
        self.board.advance_to_next_pending(from_index=index)
        if losers and all(c.timestamp_ns in done for c in losers):
            self.notify(
                f"approved; {_count(len(losers))} rejected as {reason}", markup=False, timeout=4
            )
        self.redraw()

    def action_reject(self) -> None:
        rows = self._targets()
        members = [m for row in rows for m in row.members]
        if not members:
            return
        reasons = self.config.quick_reasons if self.config else ConfigView(0).quick_reasons

        def reasoned(reason: str | None) -> None:
            if reason is not None:
                self.run_worker(
                    self._decide(members, Status.REJECTED, reason),
                    group="decide",
                    exit_on_error=False,
                )

        self.push_screen(ReasonScreen(_count(len(members)), reasons), reasoned)

    def action_mark(self) -> None:
        row = self.board.current_row()
        if row is None:
            return
        self.marks.toggle(row)
        self.board.move(1)
        self.redraw()

    def action_reject_below(self) -> None:
        current = self.board.current()
        start = f"{current.divergence:.3g}" if current is not None else ""

        def hint(value: str) -> str:
            try:
                below = self.board.pending_below(float(value))
            except ValueError:
                return "a number (nats/token): pending replies below it are rejected"
            return f"rejects {_count(len(below), 'pending reply')} below {value}"

        def chosen(value: str | None) -> None:
            if value is None:
                return
            try:
                bound = float(value)
            except ValueError:
                self.notify(f"not a number: {value!r}", severity="error", markup=False)
                return
            below = self.board.pending_below(bound)
            if not below:
                self.notify(f"no pending reply below {bound:g}", markup=False)
                return
            self._confirm_then(
                f"Reject {_count(len(below), 'pending reply')} below {bound:g}? "
                "The Review keeps only the latest 10 rejections.",
                len(below),
                lambda: self._decide(below, Status.REJECTED, f"below {bound:g}"),
                always=True,
            )

        self.push_screen(TextPrompt("Reject every pending reply below", start, hint), chosen)

    async def action_undo(self) -> None:
        link = self._require_link()
        if link is None:
            return
        forgotten, self.board.forgotten = self.board.forgotten, 0
        if forgotten:
            self.notify(
                f"{_count(forgotten)} can no longer be undone (sent, or rejected and no longer "
                "kept: the Review keeps the latest 10 rejections); undo skips them.",
                severity="warning",
                markup=False,
                timeout=6,
            )
        decision = self.board.pop_decision()
        if decision is None:
            if not forgotten:
                self.notify("Nothing to undo.", markup=False, timeout=3)
            return
        restored: list[CandidateView] = []
        try:
            for previous in {p.status for p in decision.priors}:
                priors = [p for p in decision.priors if p.status is previous]
                for reason in {p.reason for p in priors}:
                    wanted = [p.timestamp_ns for p in priors if p.reason == reason]
                    restored += await link.decide(wanted, previous, reason)
        except FtreviewError as error:
            self.board.push_back(decision)
            self.notify(f"undo failed: {error}", severity="error", markup=False)
            return
        for candidate in restored:
            self.board.upsert(candidate)
        self.board.select(decision.priors[0].timestamp_ns)
        previous_names = "/".join(sorted({p.status.value for p in decision.priors}))
        self.notify(
            f"undone: {_count(len(restored))} {decision.made.value} → {previous_names}",
            markup=False,
            timeout=3,
        )
        self.redraw()

    # -- search and filters -------------------------------------------------------------

    def action_search(self) -> None:
        def hint(value: str) -> str:
            matches = sum(1 for c in self.board.ordered if value.casefold() in c.content.casefold())
            return f"{_count(matches)} contain it · enter applies · empty clears"

        def chosen(value: str | None) -> None:
            if value is not None:
                self.board.set_filter(dataclasses.replace(self.board.row_filter, search=value))
                self.redraw()

        self.push_screen(
            TextPrompt("Search the replies", self.board.row_filter.search, hint), chosen
        )

    def action_filter(self) -> None:
        def hint(value: str) -> str:
            try:
                wanted = parse_filter(value, self.board.row_filter)
            except ValueError as error:
                return str(error)
            shown = sum(1 for c in self.board.ordered if wanted.admits(c))
            return f"status:pending,approved conv:ID div:0.5..2 · shows {_count(shown)}"

        def chosen(value: str | None) -> None:
            if value is None:
                return
            try:
                self.board.set_filter(parse_filter(value, self.board.row_filter))
            except ValueError as error:
                self.notify(f"filter unchanged: {error}", severity="error", markup=False)
            self.redraw()

        self.push_screen(TextPrompt("Filter", filter_text(self.board.row_filter), hint), chosen)

    def action_clear(self) -> None:
        if self.marks.keys:
            self.marks.clear()
        else:
            self.board.set_filter(RowFilter(hide_below=self.board.row_filter.hide_below))
        self.redraw()

    # -- sending ------------------------------------------------------------------------

    def action_send(self) -> None:
        if self.sending:
            self.notify("A send is already running.", markup=False)
            return
        approved = self.board.counts()[Status.APPROVED]
        if approved == 0:
            self.notify("Nothing approved to send: approve replies with a.", markup=False)
            return
        link = self._require_link()
        if link is None:
            return
        where = (
            self.config.finetune_url if self.config and self.config.finetune_url else "the endpoint"
        )

        def answered(yes: bool | None) -> None:
            if yes and not self.sending:
                self.sending = True
                self.run_worker(self._send(link), group="send", exit_on_error=False)

        self.push_screen(
            ConfirmScreen(f"Send {_count(approved, 'approved reply')} to {where}?"), answered
        )

    async def _send(self, link: ServiceLink) -> None:
        try:
            outcome: SendOutcome = await link.send()
        except FtreviewError as error:
            self.notify(f"send failed: {error}", severity="error", markup=False, timeout=10)
            return
        finally:
            self.sending = False
        message = f"sent {outcome.accepted} to fine-tuning"
        if outcome.job_id:
            message += f" (job {outcome.job_id}: in training until it ends)"
        if outcome.failed:
            reasons = "; ".join(sorted({reason for _, reason in outcome.failed}))
            message += f"; {len(outcome.failed)} not accepted: {reasons} (kept on each reply)"
        self.notify(
            message,
            severity="warning" if outcome.failed else "information",
            markup=False,
            timeout=8,
        )
