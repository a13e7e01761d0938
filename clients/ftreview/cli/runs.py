"""Scoring runs followed on the Review's activity stream, for `score` and `follow`.

Invariants:
- the stream is subscribed to (its snapshot ended) before the first Ingest, and each Ingest
  names its activity (a request id), so not even a run that ends at once is missed: events
  that beat their Ingest's reply are kept until the run is known;
- the activity followed is the Review's: it ends once the result is stored, so what is read
  after it (the `score` table) is complete, and its typed result says how many new
  candidates the run added (`ActivityResult.new_candidates`): nothing is counted here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ftreview.cli.progress import BatchProgress
from ftreview.client import AsyncReviewClient, activity_state_name, new_request_id
from ftreview.errors import (
    AlreadyExists,
    FailedPrecondition,
    FtreviewError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from ftreview.v1 import activity_pb2, conversation_pb2

ENDED = (
    activity_pb2.ACTIVITY_STATE_SUCCEEDED,
    activity_pb2.ACTIVITY_STATE_FAILED,
    activity_pb2.ACTIVITY_STATE_CANCELLED,
)


@dataclass
class ScoringRun:
    """One conversation ingested, and how its scoring ended."""

    file: str
    conversation: conversation_pb2.Conversation
    request_id: str
    activity_id: str = ""
    conversation_id: str = ""
    activity: activity_pb2.Activity | None = None
    new_candidates: int = 0
    finished: bool = False
    lost: bool = False  # the Review restarted while it ran: its end was never seen
    # Why the Review (or reading the file) refused it; "" when it was taken.
    refused: str = ""

    @property
    def state(self) -> str:
        if self.refused:
            return "refused"
        if not self.activity_id:
            return "nothing_to_score"
        if self.lost:
            return "lost"
        return activity_state_name(self.activity.state) if self.activity else "running"

    @property
    def error(self) -> str:
        if self.refused:
            return self.refused
        if self.lost:
            return "the Review restarted before this run ended"
        return self.activity.error if self.activity else ""

    @property
    def failed(self) -> bool:
        return self.state in ("failed", "cancelled", "lost", "refused")


def load_files(paths: Sequence[str]) -> tuple[list[ScoringRun], list[ScoringRun]]:
    """The conversations of `paths`, one run each, and a refused run for each file that
    cannot be read (its reason says where). A batch scores every file it can."""
    from ftreview.conversations import ConversationFileError, load_conversations

    loaded: list[ScoringRun] = []
    refused: list[ScoringRun] = []
    for path in paths:
        try:
            conversations = load_conversations(path)
        except ConversationFileError as error:
            refused.append(_refused_file(path, str(error)))
        except OSError as error:
            refused.append(_refused_file(path, f"{path}: {error.strerror or error}"))
        else:
            loaded += [ScoringRun(path, c, new_request_id()) for c in conversations]
    return loaded, refused


def _refused_file(path: str, reason: str) -> ScoringRun:
    return ScoringRun(path, conversation_pb2.Conversation(), "", refused=reason, finished=True)


# A refusal of one conversation (bad input, a clash with another): the others go on. Any
# other error (the Review unreachable, a token refused) ends the batch.
_REFUSALS = (InvalidArgument, FailedPrecondition, AlreadyExists, NotFound, ResourceExhausted)


async def ingest_one(client: AsyncReviewClient, run: ScoringRun) -> None:
    """Ingest `run`; a refusal is kept on the run (`refused`), naming its file."""
    try:
        reply = await client.ingest(run.conversation, request_id=run.request_id)
    except _REFUSALS as error:
        run.refused = f"{run.file}: {error.message}"
        return
    run.activity_id, run.conversation_id = reply.activity_id, reply.conversation_id


class RunTracker:
    """The runs of one command, fed with the activity stream's events."""

    def __init__(
        self, shown: BatchProgress, on_end: Callable[[ScoringRun], None] = lambda run: None
    ) -> None:
        self._shown = shown
        self._on_end = on_end
        self._runs: dict[str, ScoringRun] = {}
        self._requested: set[str] = set()
        self._early: dict[str, activity_pb2.Activity] = {}
        # The runs added before the stream was last (re)opened: only those must be in its
        # snapshot. A run added while the snapshot was on its way shows up after it.
        self._before_open: set[str] = set()
        self.changed = asyncio.Event()

    def opening(self) -> None:
        """Just before the stream is (re)opened: what its snapshot must account for."""
        self._before_open = set(self._runs)

    def expect(self, run: ScoringRun) -> None:
        """Before its Ingest: the run's events are kept from now on."""
        self._requested.add(run.request_id)

    def add(self, run: ScoringRun) -> None:
        """After its Ingest (which set `activity_id`); the batch already counts it."""
        if not run.activity_id:
            self._finish(run, 0)
            return
        self._requested.add(run.activity_id)
        self._runs[run.activity_id] = run
        early = self._early.pop(run.activity_id, None)
        if early is not None:
            self._record(run, early)

    def event(self, event: activity_pb2.WatchActivitiesResponse) -> None:
        activity = event.activity
        run = self._runs.get(activity.id)
        if run is not None:
            self._record(run, activity)
        elif activity.id in self._requested:
            self._early[activity.id] = activity

    def unaccounted(self, running: set[str]) -> set[str]:
        """After the stream came back: the runs known before it opened that its snapshot
        (running activities only) does not list and whose end was not seen. Each ended
        while the stream was away, or was lost with a Review that restarted."""
        return {
            activity_id
            for activity_id in self._before_open
            if not self._runs[activity_id].finished and activity_id not in running
        }

    def listed(self, activities: list[activity_pb2.Activity]) -> None:
        """The server's recent activities (`ListActivities`): the end of a run that ended
        while the stream was away is recorded as if its event had come."""
        for activity in activities:
            run = self._runs.get(activity.id)
            if run is not None and activity.state in ENDED:
                self._record(run, activity)

    def resync(self, running: set[str]) -> None:
        """After the stream came back (the Review may have restarted) and what it did not
        list was looked up (`listed`): a run still unaccounted for is lost. A run whose
        Ingest answered while the snapshot was on its way is not in it (it began after the
        snapshot was taken); its events follow the snapshot."""
        for activity_id in self.unaccounted(running):
            run = self._runs[activity_id]
            run.lost = True
            self._finish(run, 0)

    @property
    def done(self) -> bool:
        return all(run.finished for run in self._runs.values())

    async def until_done(self) -> None:
        while not self.done:
            self.changed.clear()
            await self.changed.wait()

    def _record(self, run: ScoringRun, activity: activity_pb2.Activity) -> None:
        if run.finished or (run.activity is not None and run.activity.state in ENDED):
            return
        run.activity = activity
        if activity.state in ENDED:
            self._finish(run, activity.result.new_candidates)
        else:
            self._shown.progress(activity.id, activity.done, activity.total)

    def _finish(self, run: ScoringRun, found: int) -> None:
        if run.finished:
            return
        run.finished, run.new_candidates = True, found
        self._shown.finished(run.activity_id or run.request_id, run.failed, found)
        self._on_end(run)
        self.changed.set()


async def until(event: asyncio.Event, watcher: asyncio.Task[None], timeout_s: float) -> None:
    """Waits for `event`; the watcher failing (its server went away) or the deadline ends
    the wait with that error."""
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait(
        {waiter, watcher}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
    )
    if waiter not in done:
        waiter.cancel()
        if watcher in done:
            watcher.result()  # raises the stream's error
            raise FtreviewError("the activity stream ended before scoring did")
        raise FtreviewError(f"scoring did not end within {timeout_s:g} s (--timeout)")


async def ingest_and_follow(
    client: AsyncReviewClient, runs: list[ScoringRun], shown: BatchProgress, timeout_s: float
) -> None:
    """Ingests every run's conversation and follows the batch to its end."""
    tracker = RunTracker(shown)
    subscribed = asyncio.Event()
    finished = asyncio.Event()

    async def follow() -> None:
        async for event in client.watch_activities():
            if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                subscribed.set()
            elif event.HasField("activity"):
                tracker.event(event)

    async def all_finished() -> None:
        await tracker.until_done()
        finished.set()

    watcher = asyncio.create_task(follow())
    waiting: asyncio.Task[None] | None = None
    try:
        await until(subscribed, watcher, timeout_s)
        shown.grow(len(runs))
        for run in runs:
            tracker.expect(run)
            await ingest_one(client, run)
            tracker.add(run)
        waiting = asyncio.create_task(all_finished())
        await until(finished, watcher, timeout_s)
    finally:
        for task in (watcher, waiting):
            if task is not None:
                task.cancel()
        await asyncio.gather(watcher, *([waiting] if waiting else []), return_exceptions=True)
