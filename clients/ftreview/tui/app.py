"""`ftreview review`: the terminal review screen.

The screen is a client of the Review service like any other. It keeps these promises:

- what it shows is what the services said: the list comes from the Review's WatchCandidates
  stream (so a reply ingested from another terminal appears without a key press), the status
  line from the Activities streams of the Review and the Scorer, the header's threshold from
  GetConfig (asked again every few seconds and after every scoring run, so a change made in
  another terminal shows), and a decision changes a row only once the Review has stored it;
- it never shows a bare "loading": before the first snapshot it says whom it is connecting
  to, and with no candidates it says why, for the cause at hand; once no reply is pending
  (and no filter is set) the list gives way to the end-of-queue summary
  (`ftreview.tui.progress`), and the progress line above the list always says how far
  the queue is and how it is sorted;
- losing the Review (a restart) is a state, not a crash: the screen says in plain words that
  it is reconnecting, keeps the last list visible, and replaces it with the fresh snapshot;
- keys act in the order they were pressed: decisions are awaited in the key handler, so
  "a a a" approves three consecutive pending rows, never the same one three times; only
  slow work (generating an alternate, sending) runs in the background; `w` keeps the
  alternate on while the cursor moves and generates it ahead (`ftreview.tui.alternates`);
- every key the legend lists fits the footer's priorities: at 80 columns `? legend` and
  `q quit` come first, and the footer shows only the keys that fit (`? legend` lists the
  others, `c context` among them), so its last key is never cut.

Textual is imported here and in the modules beside this one, never by core, client or CLI
modules; the CLI imports `run_review` lazily. The queue keys (decisions, marks, filters,
send) live in `ftreview.tui.queue_keys`, the stream workers in `ftreview.tui.streams`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import grpc
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from ftreview.errors import FtreviewError
from ftreview.tui.activities import ActivityBoard
from ftreview.tui.alternates import Alternates
from ftreview.tui.board import Board
from ftreview.tui.detail import DetailPane, DetailRequest
from ftreview.tui.guidelines import read_guidelines
from ftreview.tui.history import HISTORY_LIMIT, HistoryScreen
from ftreview.tui.link import ServiceLink, plain_problem
from ftreview.tui.logfile import configure_log
from ftreview.tui.notices import Notices
from ftreview.tui.progress import progress_line, queue_done_text
from ftreview.tui.prompts import ConversationScreen
from ftreview.tui.streams import Streams
from ftreview.tui.views import Status
from ftreview.tui.widgets import CandidateTable, LegendScreen, describe_stats

log = logging.getLogger(__name__)


DOUBLE_KEY_S = 1.0
"""`g g`: the second g within this many seconds goes to the first row."""
WIDE_HEADER_COLUMNS = 120


class ReviewApp(Streams):
    """Review candidates: approve, reject, look at context and alternates, send, tune."""

    TITLE = "ftreview review"
    ENABLE_COMMAND_PALETTE = False

    CSS = """
    Screen { layout: vertical; }
    #summary { height: 1; background: $boost; padding: 0 1; }
    #note { height: 1; padding: 0 1; color: $text-muted; }
    #progress { height: 1; padding: 0 1; }
    #main { height: 1fr; }
    #candidates { height: 1fr; min-height: 4; }
    DetailPane { height: 1fr; min-height: 5; }
    #empty { height: 1fr; padding: 1 2; }
    #activity { height: 1; background: $boost; padding: 0 1; }
    """

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        # Shown in the footer, most needed first: a narrow terminal cuts from the right.
        Binding("question_mark", "legend", "legend"),
        Binding("q", "quit_review", "quit"),
        Binding("a", "approve", "approve"),
        Binding("r", "reject", "reject"),
        Binding("space", "mark", "mark"),
        Binding("slash", "search", "search"),
        Binding("c", "conversation", "context", show=False),
        Binding("w", "toggle_alternate", "alternate"),
        Binding("s", "send", "send"),
        # In the legend only.
        Binding("j,down", "move(1)", "next", show=False),
        Binding("k,up", "move(-1)", "previous", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("home", "first", "first row", show=False),
        Binding("end,G", "last", "last row", show=False),
        Binding("g", "g_prefix", "g g: first row", show=False),
        Binding("J", "scroll_detail(3)", "scroll reply down", show=False),
        Binding("K", "scroll_detail(-3)", "scroll reply up", show=False),
        Binding("A", "approve_with_note", "approve with a note", show=False),
        Binding("u", "undo", "undo", show=False),
        Binding("b", "reject_below", "reject below", show=False),
        Binding("f", "filter", "filter", show=False),
        Binding("escape", "clear", "clear marks and filters", show=False),
        Binding("h", "hide_below", "hide below threshold", show=False),
        Binding("n", "numbers", "token numbers", show=False),
        Binding("o", "sort", "sort", show=False),
        Binding("d", "history", "decision history", show=False),
        Binding("plus", "threshold(1)", "threshold x10", show=False),
        Binding("minus", "threshold(-1)", "threshold /10", show=False),
    ]

    def __init__(
        self,
        review_address: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        guidelines: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.review_address = review_address
        self.guidelines = guidelines
        self._credentials = credentials
        self._token = token
        self.board = Board()
        self.activities = ActivityBoard()
        self.connection = f"connecting to the Review at {review_address}…"
        self.connected = False
        self.alternates = Alternates()
        self.numbers = False
        self.notices = Notices()
        self._g_pressed_at = -DOUBLE_KEY_S
        self._link: ServiceLink | None = None

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        yield Static(id="note")
        yield Static(id="progress")
        with Vertical(id="main"):
            yield CandidateTable(id="candidates", cursor_type="row", zebra_stripes=True)
            yield DetailPane()
        yield Static(id="empty")
        yield Static(id="activity")
        yield Footer(compact=True)

    @property
    def base(self) -> Screen[Any]:
        """The review screen itself, whatever prompt or legend is in front of it (streams
        redraw it while one is)."""
        return self.screen_stack[0]

    def on_mount(self) -> None:
        self.redraw()
        self.run_worker(self._watch_candidates(), name="candidates", exit_on_error=False)
        self.run_worker(self._watch_activities(), name="activities", exit_on_error=False)
        self.run_worker(self._poll_config(), name="config", exit_on_error=False)
        self.set_interval(1.0, self._draw_activity)  # the batch's time left moves on its own

    def on_resize(self) -> None:
        self.redraw()

    # -- drawing ------------------------------------------------------------------------

    @property
    def drawable(self) -> bool:
        """False once the app is closing: Textual removes the widgets while the streams, the
        timers and a pending alternate may still deliver; nothing is drawn then."""
        return self.is_running and bool(self.screen_stack)

    def redraw(self) -> None:
        if not self.drawable:
            return
        self._draw_summary()
        empty = self.base.query_one("#empty", Static)
        main = self.base.query_one("#main")
        rows = self.board.rows
        counts = self.board.counts()
        cleared = (
            self.board.loaded
            and bool(self.board.candidates)
            and counts[Status.PENDING] == 0
            and not self.board.row_filter.describe()
        )
        has_rows = bool(rows) and not cleared
        main.display = has_rows
        empty.display = not has_rows
        threshold = self.config.threshold if self.config else None
        if rows:  # also behind the summary, so the list is current when it comes back
            marked = {row.key for row in self.marks.marked(rows)}
            self.base.query_one(CandidateTable).show(
                rows, self.board.selected_index(), marked=marked, threshold=threshold,
                conflicts=self.board.conflicts(),
            )  # fmt: skip
        if has_rows:
            self._generate_ahead()
            self._draw_detail()
        elif cleared:
            jobs = tuple(sorted({c.job_id for c in self.board.ordered if c.job_id}))
            empty.update(queue_done_text(counts, len(self.board.session_decided), jobs))
        elif self.board.candidates and self.board.row_filter.describe():
            empty.update(
                Text(
                    f"No candidate matches the filter ({self.board.row_filter.describe()}); "
                    f"{len(self.board.candidates)} are hidden. escape clears the filter."
                )
            )
        elif self.board.loaded:
            empty.update(describe_stats(self.last_stats, threshold))
        else:
            empty.update(Text(self.connection))
        self._draw_note(threshold)
        progress = self.base.query_one("#progress", Static)
        progress.display = bool(self.board.candidates)
        progress.update(
            progress_line(
                counts, len(self.board.session_decided), self.board.sort, self.size.width - 2
            )
        )
        self._draw_activity()

    def _draw_note(self, threshold: float | None) -> None:
        note = self.base.query_one("#note", Static)
        below = [
            c for c in self.board.ordered if threshold is not None and c.divergence < threshold
        ]
        note.display = bool(below)
        if below and threshold is not None:
            shown = "hidden (h shows them)" if self.board.row_filter.hide_below else "dim (h hides)"
            note.update(
                Text(
                    f"{len(below)} below the threshold {threshold:g}, {shown}: "
                    "the threshold applies to new scoring"
                )
            )

    def _new_link(self) -> ServiceLink:
        return ServiceLink(
            self.review_address,
            credentials=self._credentials,
            token=self._token,
        )

    def _draw_summary(self) -> None:
        counts = self.board.counts()
        wide = self.size.width >= WIDE_HEADER_COLUMNS
        text = Text()
        text.append("ftreview review" if wide else "ftreview", "bold")
        if wide:
            text.append(f" · {self.review_address}")
        if self.config is not None:
            text.append(f" · threshold {self.config.threshold:g}")
            if wide and self.config.model:
                text.append(f" · {self.config.model}")
        text.append(
            f" · {counts[Status.PENDING]} pending, {counts[Status.APPROVED]} approved, "
            f"{counts[Status.REJECTED]} rejected"
            if wide
            else f" · {counts[Status.PENDING]} pending {counts[Status.APPROVED]} appr "
            f"{counts[Status.REJECTED]} rej"
        )
        if counts[Status.SENT]:  # said only while a training job runs
            text.append(
                f", {counts[Status.SENT]} training" if wide else f" {counts[Status.SENT]} trn"
            )
        described = self.board.row_filter.describe()
        if described:
            text.append(f" · {described}", "bold cyan")
        if self.marks.keys:
            text.append(f" · {len(self.marks.keys)} marked", "bold magenta")
        if not self.connected:
            text.append(f" · {self.connection if wide else 'offline, retrying…'}", "bold yellow")
        self.base.query_one("#summary", Static).update(text)

    def _draw_detail(self) -> None:
        candidate = self.board.current()
        timestamp = candidate.timestamp_ns if candidate else 0
        self.base.query_one(DetailPane).show(
            DetailRequest(
                candidate,
                alternate=self.alternates.on,
                generating=timestamp in self.alternates.generating,
                alternate_error=self.alternates.errors.get(timestamp, ""),
                numbers=self.numbers,
                width=self.size.width,
                conflicts=self.board.conflicts().get(timestamp, ()),
            )
        )

    def action_move(self, delta: int) -> None:
        self.board.move(delta)
        self.redraw()

    def action_page(self, direction: int) -> None:
        table = self.base.query_one(CandidateTable)
        self.board.move(direction * max(1, table.size.height - 2))
        self.redraw()

    def action_first(self) -> None:
        self.board.move_to(0)
        self.redraw()

    def action_last(self) -> None:
        self.board.move_to(-1)
        self.redraw()

    def action_g_prefix(self) -> None:
        now = time.monotonic()
        if now - self._g_pressed_at <= DOUBLE_KEY_S:
            self._g_pressed_at = -DOUBLE_KEY_S
            self.action_first()
        else:
            self._g_pressed_at = now

    def action_scroll_detail(self, lines: int) -> None:
        self.base.query_one(DetailPane).scroll_reply(lines)

    def action_numbers(self) -> None:
        self.numbers = not self.numbers
        self.redraw()

    def action_hide_below(self) -> None:
        current = self.board.row_filter
        hiding = current.hide_below is None and self.config is not None
        hide = self.config.threshold if hiding and self.config is not None else None
        self.board.set_filter(dataclasses.replace(current, hide_below=hide))
        self.redraw()

    async def action_conversation(self) -> None:
        candidate = self.board.current()
        link = self._require_link()
        if candidate is None or link is None:
            return
        try:
            turns = await link.conversation(candidate.conversation_id)
        except FtreviewError as error:
            self.notify(f"conversation unavailable: {plain_problem(error)}", severity="error")
            return
        self.push_screen(ConversationScreen(turns, candidate))

    def action_toggle_alternate(self) -> None:
        self.alternates.toggle(self.board.selected)
        self.redraw()

    def _generate_ahead(self) -> None:
        """With `w` on: the alternates of the row under the cursor and the next rows."""
        if not self.alternates.on or self._link is None or not self.connected:
            return
        wanted = self.alternates.wanted(self.board.rows, self.board.selected_index())
        for timestamp in wanted:
            self.run_worker(
                self._generate_alternate(self._link, timestamp),
                group="alternate",
                exit_on_error=False,
            )

    async def _generate_alternate(self, link: ServiceLink, timestamp: int) -> None:
        try:
            self.board.upsert(await link.generate_alternate(timestamp))
        except FtreviewError as error:
            self.alternates.errors[timestamp] = str(error)
            if timestamp == self.board.selected:
                self.notify(f"alternate failed: {error}", severity="error", markup=False)
        finally:
            self.alternates.generating.discard(timestamp)
            self.redraw()

    async def action_threshold(self, steps: int) -> None:
        link = self._require_link()
        if link is None:
            return
        try:
            self.config = await link.set_threshold(steps)
        except FtreviewError as error:
            self.notify(f"threshold unchanged: {error}", severity="error", markup=False)
            return
        where = f" (saved to {self.config.config_path})" if self.config.config_path else ""
        self.notify(
            f"threshold {self.config.threshold:g}{where}; it applies to new scoring",
            markup=False,
            timeout=3,
        )
        self.redraw()

    def action_sort(self) -> None:
        self.notify(f"sorted by {self.board.cycle_sort()}", markup=False, timeout=2)
        self.redraw()

    async def action_history(self) -> None:
        link = self._require_link()
        if link is None:
            return
        try:
            decisions = await link.decisions(HISTORY_LIMIT)
        except FtreviewError as error:
            self.notify(f"history unavailable: {plain_problem(error)}", severity="error")
            return
        self.push_screen(HistoryScreen(decisions))

    def action_legend(self) -> None:
        if not isinstance(self.screen, LegendScreen):
            self.push_screen(LegendScreen(self.guidelines))

    def action_quit_review(self) -> None:
        self.exit(0)


def run_review(
    review_addr: str,
    home: str | None = None,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
) -> int:
    """Run the review screen until the user quits; the process exit code.

    Needs a terminal: the CLI prints a plain listing instead when there is none.
    `credentials` (TLS) and `token` (bearer) are used for the Review.
    """
    configure_log(home)
    app = ReviewApp(
        review_addr, credentials=credentials, token=token, guidelines=read_guidelines(home)
    )
    app.run()
    return app.return_code or 0
