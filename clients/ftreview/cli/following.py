"""`ftreview follow PATH...`: score conversations as an agent writes them.

Invariants:
- the file rules are `ftreview.follow.Follower`'s (only changed conversations are sent, a
  half-written file waits, what the Review could not take stays queued and is resent); it
  runs on a thread, and each of its Ingests is registered with the activity stream's
  tracker before it is sent, so its scoring is followed like `score`'s (one batch line);
- one line (or, with `--json`, one JSON object) per event, on stdout: ingested, scored,
  waiting, refused, review_down, review_back, stopped; "review down" and "back" are said once
  per outage, whichever side (an Ingest or the stream) noticed first;
- a run whose end was lost because the Review restarted is ingested again (the Review scores
  only what it has not scored), so a restart loses no reply; a run that ended while the
  stream was away (the snapshot lists running activities only) is looked up among the
  Review's recent activities and reported with its own figures, not sent again;
- Ctrl-C (SIGINT) or SIGTERM stops between two files, says "stopped", and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from pathlib import Path
from typing import Any

from ftreview.cli.context import UsageError, add_command, async_review_client, say
from ftreview.cli.progress import BatchProgress
from ftreview.cli.runs import ENDED, RunTracker, ScoringRun
from ftreview.client import AsyncReviewClient, new_request_id
from ftreview.errors import FtreviewError, Unavailable
from ftreview.follow import Event, Follower, FollowEvent
from ftreview.v1 import activity_pb2
from ftreview.v1 import conversation_pb2 as pb

RECONNECT_S = (0.2, 2.0)  # first and longest wait between two tries of the stream
# Recent activities asked for after the stream came back (a server keeps 200 ended ones).
LISTED = 200


class _Session:
    """What the loop thread keeps while following: the output, the runs, the outage."""

    def __init__(self, args: argparse.Namespace, client: AsyncReviewClient) -> None:
        self.args = args
        self.client = client
        self.shown = BatchProgress(enabled=not args.json and not args.quiet)
        self.tracker = RunTracker(self.shown, on_end=self.scored)
        self.down = False
        self.resending: set[asyncio.Task[None]] = set()

    def emit(self, event: str, text: str, **fields: Any) -> None:
        if self.args.json:
            print(json.dumps({"event": event, **fields}, ensure_ascii=False), flush=True)
        elif self.shown.live and self.shown.running:
            self.shown.note(text)  # above the live bar, which a print to stdout would tear
        else:
            print(text, flush=True)

    def outage(self, down: bool, detail: str = "") -> None:
        if down == self.down:
            return
        self.down = down
        if down:
            self.emit("review_down", f"review down: {detail}; changes are queued", detail=detail)
        else:
            self.emit("review_back", "review back: sending what was queued")

    def file_event(self, event: FollowEvent) -> None:
        path = str(event.path) if event.path else None
        if event.event == Event.REVIEW_DOWN:
            self.outage(True, event.detail)
        elif event.event == Event.REVIEW_BACK:
            self.outage(False)
        elif event.event == Event.INGESTED:
            self.outage(False)
            self.emit(
                "ingested",
                f"ingested  {path}: {event.conversation_id}",
                path=path,
                conversation_id=event.conversation_id,
                activity_id=event.detail,
            )
        elif event.event == Event.WAITING:
            text = f"waiting   {path}: does not parse yet ({event.detail}); tried again"
            self.emit("waiting", text, path=path, detail=event.detail)
        else:
            where = f"{path} ({event.conversation_id})" if event.conversation_id else path
            self.emit(
                "refused",
                f"refused   {where}: {event.detail}",
                path=path,
                conversation_id=event.conversation_id,
                detail=event.detail,
            )

    def scored(self, run: ScoringRun) -> None:
        if run.lost:
            task = asyncio.create_task(self.again(run))
            self.resending.add(task)
            task.add_done_callback(self.resending.discard)
            return
        cid = run.conversation_id or run.conversation.id
        noun = "candidate" if run.new_candidates == 1 else "candidates"
        error = f": {run.error}" if run.error else ""
        self.emit(
            "scored",
            f"{'scored' if run.state == 'succeeded' else run.state:<9} {cid}: "
            f"{run.new_candidates} new {noun}{error}",
            conversation_id=cid,
            activity_id=run.activity_id,
            state=run.state,
            new_candidates=run.new_candidates,
            error=run.error,
        )

    async def again(self, lost: ScoringRun) -> None:
        run = ScoringRun(lost.file, lost.conversation, new_request_id())
        self.emit(
            "resent",
            f"resent    {lost.conversation_id}: the Review restarted while scoring it",
            conversation_id=lost.conversation_id,
        )
        try:
            await self.ingest(run)
        except Unavailable as error:
            self.outage(True, str(error))

    async def ingest(self, run: ScoringRun) -> str:
        self.tracker.expect(run)
        reply = await self.client.ingest(run.conversation, request_id=run.request_id)
        run.activity_id, run.conversation_id = reply.activity_id, reply.conversation_id
        self.shown.grow(1)
        self.tracker.add(run)
        return reply.activity_id

    async def look_up_ended(self) -> None:
        """The runs that ended while the stream was away, from the Review's recent
        activities: only one the Review does not know (it restarted) is lost and sent
        again. Unanswered, every run unaccounted for counts as lost (sending one again
        costs a run that finds nothing new, never a reply)."""
        try:
            self.tracker.listed(await self.client.list_activities(limit=LISTED))
        except FtreviewError:
            pass

    async def watch(self, subscribed: asyncio.Event) -> None:
        """The activity stream, opened again whenever it breaks (the Review restarted)."""
        wait = RECONNECT_S[0]
        while True:
            running: set[str] = set()
            self.tracker.opening()
            try:
                async for event in self.client.watch_activities():
                    if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT:
                        if event.activity.state not in ENDED:
                            running.add(event.activity.id)
                        self.tracker.event(event)
                    elif event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                        if self.tracker.unaccounted(running):
                            await self.look_up_ended()
                        self.tracker.resync(running)
                        subscribed.set()
                        self.outage(False)
                        wait = RECONNECT_S[0]
                    elif event.HasField("activity"):
                        self.tracker.event(event)
            except FtreviewError as error:
                if not subscribed.is_set():
                    raise  # not running when we started: say so and exit 3
                # Unavailable, or the stream cut as the Review shut down: wait for it.
                self.outage(True, error.message)
            await asyncio.sleep(wait)  # a pause between tries, not a wait for a result
            wait = min(wait * 2, RECONNECT_S[1])


async def _follow(args: argparse.Namespace, paths: list[Path]) -> None:
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with async_review_client(args) as client:
        session = _Session(args, client)
        subscribed = asyncio.Event()
        watcher = asyncio.create_task(session.watch(subscribed))

        def ingest(conversation: pb.Conversation) -> str:
            """On the Follower's thread: the run is known to the tracker before it is sent."""
            run = ScoringRun("", conversation, new_request_id())
            return asyncio.run_coroutine_threadsafe(session.ingest(run), loop).result()

        def report(event: FollowEvent) -> None:
            loop.call_soon_threadsafe(session.file_event, event)

        try:
            await _subscribed(subscribed, watcher)
            with session.shown:
                say("following " + ", ".join(map(str, paths)) + "; Ctrl-C stops")
                follower = Follower(paths, ingest, report, settle=args.settle)
                await asyncio.to_thread(follower.run, stop)
                session.emit("stopped", "stopped")
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


async def _subscribed(subscribed: asyncio.Event, watcher: asyncio.Task[None]) -> None:
    waiter = asyncio.create_task(subscribed.wait())
    await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        waiter.cancel()
        watcher.result()  # the Review was not there: its error


def cmd_follow(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"{', '.join(missing)}: no such file or folder")
    asyncio.run(_follow(args, paths))
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands,
        "follow",
        cmd_follow,
        "score conversation files and folders as they change, until Ctrl-C",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="conversation files or folders")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--settle",
        type=float,
        default=10.0,
        metavar="S",
        help="report a file that stays unparseable and unchanged this long as refused",
    )
