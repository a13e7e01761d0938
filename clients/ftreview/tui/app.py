"""`ftreview review`: the terminal review screen.

The screen is a client of the Review service like any other. It keeps these promises:

- what it shows is what the services said: the list comes from the Review's WatchCandidates
  stream (so a reply ingested from another terminal appears without a key press), the status
  line from the Activities streams of the Review and the Scorer, and a decision changes a row
  only once the Review has stored it;
- it never shows a bare "loading": before the first snapshot it says whom it is connecting
  to, and with no candidates it shows the last FinetuneScoringStats (why nothing was found);
- losing the Review (a restart) is a state, not a crash: the screen says it is reconnecting,
  keeps the last list visible, and replaces it with the fresh snapshot once back;
- keys act in the order they were pressed: decisions are awaited in the key handler, so
  "a a a" approves three consecutive pending replies, never the same one three times; only
  slow work (generating an alternate, sending) runs in the background.

Textual is imported here and in the modules beside this one, never by core, client or CLI
modules; the CLI imports `run_review` lazily.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from ftreview.errors import FtreviewError, Unavailable
from ftreview.tui.activities import ActivityBoard
from ftreview.tui.board import Board, StatsView, Status
from ftreview.tui.link import ConfigView, ServiceLink
from ftreview.tui.widgets import (
    CandidateTable,
    LegendScreen,
    ReplyPanel,
    describe_stats,
)

log = logging.getLogger(__name__)

RECONNECT_FIRST_DELAY_S = 0.25
RECONNECT_MAX_DELAY_S = 2.0
# The Review client merges the Review's and the Scorer's activity streams into one.
ACTIVITY_SOURCE = "services"


class ReviewApp(App[int]):
    """Review candidates: approve, reject, look at alternates, send, tune the threshold."""

    TITLE = "ftreview review"
    ENABLE_COMMAND_PALETTE = False

    CSS = """
    Screen { layout: vertical; }
    #summary { height: 1; background: $boost; padding: 0 1; }
    #main { height: 1fr; }
    #candidates { height: 2fr; min-height: 4; }
    ReplyPanel { height: 3fr; border-top: solid $accent; }
    #reply-title { height: auto; padding: 0 1; }
    #reply-scroll { height: 1fr; padding: 0 1; }
    #reply-body { height: auto; min-height: 3; }
    #empty { height: 1fr; padding: 1 2; }
    #activity { height: 1; background: $boost; padding: 0 1; }
    """

    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("j,down", "move(1)", "next", show=False),
        Binding("k,up", "move(-1)", "previous", show=False),
        Binding("a", "decide('approved')", "approve"),
        Binding("r", "decide('rejected')", "reject"),
        Binding("u", "undo", "undo"),
        Binding("g", "toggle_alternate", "alternate"),
        Binding("s", "send", "send"),
        Binding("plus", "threshold(1)", "threshold x10"),
        Binding("minus", "threshold(-1)", "threshold /10"),
        Binding("question_mark", "legend", "legend"),
        Binding("q", "quit_review", "quit"),
    ]

    def __init__(
        self,
        review_address: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__()
        self.review_address = review_address
        self._credentials = credentials
        self._token = token
        self.board = Board()
        self.activities = ActivityBoard()
        self.config: ConfigView | None = None
        self.last_stats: StatsView | None = None
        self.connection = f"connecting to the Review at {review_address}…"
        self.connected = False
        self.alternate_shown: set[int] = set()
        self.generating: set[int] = set()
        self.alternate_errors: dict[int, str] = {}
        self.sending = False
        self._link: ServiceLink | None = None

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        with Vertical(id="main"):
            table = CandidateTable(id="candidates", cursor_type="row", zebra_stripes=True)
            table.add_column("status", key="status", width=8)
            table.add_column("divergence", key="divergence", width=10)
            table.add_column("peak", key="peak", width=6)
            table.add_column("reply", key="reply")
            yield table
            yield ReplyPanel()
        yield Static(id="empty")
        yield Static(id="activity")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.run_worker(self._watch_candidates(), name="candidates", exit_on_error=False)
        self.run_worker(self._watch_activities(), name="activities", exit_on_error=False)

    # -- drawing ------------------------------------------------------------------------

    def redraw(self) -> None:
        self._draw_summary()
        empty = self.query_one("#empty", Static)
        main = self.query_one("#main")
        has_rows = bool(self.board.candidates)
        main.display = has_rows
        empty.display = not has_rows
        if has_rows:
            self.query_one(CandidateTable).show(self.board.ordered, self.board.selected_index())
            self._draw_reply()
        elif self.board.loaded:
            threshold = self.config.threshold if self.config else None
            empty.update(describe_stats(self.last_stats, threshold))
        else:
            empty.update(Text(self.connection))
        self._draw_activity()

    def _new_link(self) -> ServiceLink:
        return ServiceLink(
            self.review_address,
            credentials=self._credentials,
            token=self._token,
        )

    def _draw_summary(self) -> None:
        counts = self.board.counts()
        text = Text()
        text.append("ftreview review", "bold")
        text.append(f"  ·  {self.review_address}")
        if self.config is not None:
            text.append(f"  ·  threshold {self.config.threshold:g}")
        text.append(
            f"  ·  {counts[Status.PENDING]} pending, {counts[Status.APPROVED]} approved, "
            f"{counts[Status.REJECTED]} rejected"
        )
        if not self.connected:
            text.append(f"  ·  {self.connection}", "bold yellow")
        self.query_one("#summary", Static).update(text)

    def _draw_reply(self) -> None:
        candidate = self.board.current()
        timestamp = candidate.timestamp_ns if candidate else 0
        self.query_one(ReplyPanel).show(
            candidate,
            alternate=timestamp in self.alternate_shown,
            generating=timestamp in self.generating,
            alternate_error=self.alternate_errors.get(timestamp, ""),
        )

    def _draw_activity(self) -> None:
        self.query_one("#activity", Static).update(self.activities.describe())

    # -- streams ------------------------------------------------------------------------

    async def _watch_candidates(self) -> None:
        delay = RECONNECT_FIRST_DELAY_S
        ever_connected = False
        while True:
            link = self._new_link()
            try:
                overview = await link.overview()
                self.config = overview.config
                self.last_stats = overview.last_stats
                self._link = link
                self.board.begin_snapshot()
                async for event in link.watch_candidates():
                    if event.kind == "SNAPSHOT":
                        if event.candidate is not None:
                            self.board.add_to_snapshot(event.candidate)
                        continue
                    if event.kind == "SNAPSHOT_END":
                        self.board.end_snapshot()
                        self.connected = True
                        ever_connected = True
                        delay = RECONNECT_FIRST_DELAY_S
                    elif event.kind == "REMOVED" and event.candidate is not None:
                        self.board.remove(event.candidate.timestamp_ns)
                    elif event.kind == "STATS" and event.stats is not None:
                        self.last_stats = event.stats
                    elif event.candidate is not None:
                        self.board.upsert(event.candidate)
                    self.redraw()
                problem = "the Review ended the stream"
            except Unavailable as error:
                problem = str(error)
            except FtreviewError as error:
                log.warning("review stream failed: %s", error)
                problem = str(error)
            except Exception as error:  # a bug must not take the screen down: log it, retry
                log.exception("review stream failed")
                problem = f"{type(error).__name__}: {error}"
            finally:
                self._link = None
                await link.close()
            self.board.abandon_snapshot()
            self.connected = False
            verb = "reconnecting to" if ever_connected else "connecting to"
            if ever_connected:
                self.connection = f"{verb} the Review at {self.review_address}… ({problem})"
            else:
                self.connection = (
                    f"The Review service at {self.review_address} is not answering ({problem}). "
                    "Start it with `ftreview serve`; retrying…"
                )
            self.redraw()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY_S)

    async def _watch_activities(self) -> None:
        source = ACTIVITY_SOURCE
        delay = RECONNECT_FIRST_DELAY_S
        while True:
            link = self._new_link()
            try:
                async for event in link.watch_activities():
                    ending = self.activities.on_event(source, event)
                    if self.activities.connected.get(source):
                        delay = RECONNECT_FIRST_DELAY_S
                    if ending is not None:
                        self.notify(
                            ending.message(),
                            title=ending.activity.kind or "activity",
                            severity="error" if ending.failed else "information",
                            markup=False,
                        )
                    self._draw_activity()
            except FtreviewError as error:
                log.info("%s activity stream: %s", source, error)
            except Exception:
                log.exception("%s activity stream failed", source)
            finally:
                await link.close()
            self.activities.disconnected(source)
            self._draw_activity()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY_S)

    # -- keys ---------------------------------------------------------------------------

    def _require_link(self) -> ServiceLink | None:
        if self._link is None or not self.connected:
            self.notify(self.connection, severity="warning", markup=False)
            return None
        return self._link

    def action_move(self, delta: int) -> None:
        self.board.move(delta)
        self.redraw()

    async def action_decide(self, status_name: str) -> None:
        status = Status(status_name)
        candidate = self.board.current()
        link = self._require_link()
        if candidate is None or link is None:
            return
        try:
            stored = await link.decide(candidate.timestamp_ns, status)
        except FtreviewError as error:
            self.notify(f"{status_name[:-1]} failed: {error}", severity="error", markup=False)
            return
        self.board.record(candidate, status)
        self.board.upsert(stored)
        self.board.advance_to_next_pending()
        self.redraw()

    async def action_undo(self) -> None:
        link = self._require_link()
        if link is None:
            return
        decision = self.board.pop_decision()
        if decision is None:
            self.notify("Nothing to undo.", markup=False)
            return
        try:
            stored = await link.decide(
                decision.timestamp_ns, decision.previous, decision.previous_reason
            )
        except FtreviewError as error:
            self.board.push_back(decision)
            self.notify(f"undo failed: {error}", severity="error", markup=False)
            return
        self.board.upsert(stored)
        self.board.select(decision.timestamp_ns)
        self.notify(
            f"undone: {decision.made.value} → {decision.previous.value}", markup=False, timeout=3
        )
        self.redraw()

    def action_toggle_alternate(self) -> None:
        candidate = self.board.current()
        if candidate is None:
            return
        timestamp = candidate.timestamp_ns
        if timestamp in self.alternate_shown:
            self.alternate_shown.discard(timestamp)
        else:
            self.alternate_shown.add(timestamp)
            if not candidate.alternate and timestamp not in self.generating:
                link = self._require_link()
                if link is not None:
                    self.alternate_errors.pop(timestamp, None)
                    self.generating.add(timestamp)
                    self.run_worker(
                        self._generate_alternate(link, timestamp),
                        group="alternate",
                        exit_on_error=False,
                    )
        self.redraw()

    async def _generate_alternate(self, link: ServiceLink, timestamp: int) -> None:
        try:
            self.board.upsert(await link.generate_alternate(timestamp))
        except FtreviewError as error:
            self.alternate_errors[timestamp] = str(error)
            self.notify(f"alternate failed: {error}", severity="error", markup=False)
        finally:
            self.generating.discard(timestamp)
            self.redraw()

    def action_send(self) -> None:
        if self.sending:
            self.notify("A send is already running.", markup=False)
            return
        if self.board.counts()[Status.APPROVED] == 0:
            self.notify("Nothing approved to send: approve replies with a.", markup=False)
            return
        link = self._require_link()
        if link is None:
            return
        self.sending = True
        self.run_worker(self._send(link), group="send", exit_on_error=False)

    async def _send(self, link: ServiceLink) -> None:
        try:
            outcome = await link.send()
        except FtreviewError as error:
            self.notify(f"send failed: {error}", severity="error", markup=False, timeout=10)
            return
        finally:
            self.sending = False
        message = f"sent {outcome.accepted} to fine-tuning"
        if outcome.job_id:
            message += f" (job {outcome.job_id})"
        if outcome.failed:
            reasons = "; ".join(sorted({reason for _, reason in outcome.failed}))
            message += f"; {len(outcome.failed)} not accepted: {reasons}"
        self.notify(message, severity="warning" if outcome.failed else "information", markup=False)

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
        self.notify(f"threshold {self.config.threshold:g}{where}", markup=False, timeout=3)
        self.redraw()

    def action_legend(self) -> None:
        if not isinstance(self.screen, LegendScreen):
            self.push_screen(LegendScreen())

    def action_quit_review(self) -> None:
        self.exit(0)


def _configure_log(home: str | None) -> None:
    """The screen owns the terminal, so the log (with tracebacks) goes to a file in home."""
    if not home:
        return
    path = Path(home).expanduser() / "logs" / "review-screen.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ftreview.tui")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


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
    _configure_log(home)
    app = ReviewApp(review_addr, credentials=credentials, token=token)
    app.run()
    return app.return_code or 0
