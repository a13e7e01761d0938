"""The review screen's stream workers: candidates, activities, and the config poll.

A base class of `ReviewApp` (after `QueueKeys`), kept apart so each module stays readable.
Each worker runs for the screen's life: it opens a fresh link, follows its stream, and on any
failure says so in plain words (`plain_problem`, never gRPC's text), waits a growing delay,
and opens a new one. A failure is logged, never raised into the screen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rich.text import Text
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Static

from ftreview.errors import FtreviewError
from ftreview.tui.activities import ActivityBoard, Notice
from ftreview.tui.link import ServiceLink, plain_problem
from ftreview.tui.notices import Notices
from ftreview.tui.queue_keys import QueueKeys

log = logging.getLogger(__name__)

RECONNECT_FIRST_DELAY_S = 0.25
RECONNECT_MAX_DELAY_S = 2.0
CONFIG_POLL_S = 2.0
"""How often the header asks for the config (another terminal may change the threshold)."""
# The Review client merges the Review's and the Scorer's activity streams into one.
ACTIVITY_SOURCE = "services"


class Streams(QueueKeys):
    activities: ActivityBoard
    notices: Notices
    review_address: str

    # Hooks the app fills in (ReviewApp); this mixin only drives the streams.
    def _new_link(self) -> ServiceLink:
        """A fresh connection to the Review."""
        raise NotImplementedError

    @property
    def drawable(self) -> bool:
        """Whether the review screen is up (hook: ReviewApp)."""
        raise NotImplementedError

    @property
    def base(self) -> Screen[Any]:
        """The review screen (hook: ReviewApp)."""
        raise NotImplementedError

    # -- the activity line ----------------------------------------------------------------

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A notice takes the activity line for a few seconds (`ftreview.tui.notices`)
        instead of a toast over the candidate and its memories. It is also logged."""
        text = Text.from_markup(message).plain if markup else message
        log.log(logging.WARNING if severity == "error" else logging.INFO, "notice: %s", text)
        shown = self.notices.show(str(severity), title, text, time.monotonic(), timeout)
        self._draw_activity()
        self.set_timer(shown + 0.05, self._draw_activity)

    def _draw_activity(self) -> None:
        if not self.drawable:
            return
        notice = self.notices.line(time.monotonic())
        if notice is not None:
            shown = notice
        else:
            line = self.activities.describe()
            if self.last_job is not None and self.activities.idle:
                line = f"{line}  ·  {self.last_job.describe()}"
            shown = Text(line)
        shown.no_wrap, shown.overflow = True, "ellipsis"
        self.base.query_one("#activity", Static).update(shown)

    # -- moving and looking -------------------------------------------------------------

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
                        self.run_worker(self._refresh_config(link), group="config")
                    elif event.candidate is not None:
                        self.board.upsert(event.candidate)
                    self.redraw()
                problem = "it ended the stream (restarting?)"
            except FtreviewError as error:
                log.warning("review stream failed: %s", error)
                problem = plain_problem(error)
            except Exception as error:  # a bug must not take the screen down: log it, retry
                log.exception("review stream failed")
                problem = plain_problem(error)
            finally:
                self._link = None
                await link.close()
            self.board.abandon_snapshot()
            self.connected = False
            if ever_connected:
                self.connection = (
                    f"lost the Review at {self.review_address}: {problem}; reconnecting…"
                )
            else:
                self.connection = (
                    f"Cannot reach the Review at {self.review_address}: {problem}. "
                    "Start it with `ftreview serve`; retrying…"
                )
            self.redraw()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY_S)

    async def _refresh_config(self, link: ServiceLink) -> None:
        try:
            config = await link.config()
            job = await link.last_job()
        except FtreviewError as error:
            log.info("config refresh failed: %s", error)
            return
        if config != self.config or job != self.last_job:
            self.config, self.last_job = config, job
            self.redraw()

    async def _poll_config(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            link = self._link
            if link is not None and self.connected:
                await self._refresh_config(link)

    async def _watch_activities(self) -> None:
        source = ACTIVITY_SOURCE
        delay = RECONNECT_FIRST_DELAY_S
        while True:
            link = self._new_link()
            try:
                async for event in link.watch_activities():
                    self._announce(self.activities.on_event(source, event))
                    if self.activities.connected.get(source):
                        delay = RECONNECT_FIRST_DELAY_S
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

    def _announce(self, notice: Notice | None) -> None:
        """Tell the user once, in a notification that expires."""
        if notice is None:
            return
        self.notify(
            notice.message,
            title=notice.title,
            severity="error" if notice.failed else "information",
            markup=False,
            timeout=8 if notice.failed else 4,
        )
        self._draw_activity()
