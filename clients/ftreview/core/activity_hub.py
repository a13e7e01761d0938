"""Activities: long work with an id, progress and an end, streamed to any number of watchers.

Every service runs its long work (scoring, alternates, sending, training) through an
`ActivityHub` and serves its `WatchActivities` stream. The invariants it keeps:

- a slow watcher never blocks the work or other watchers (`ftreview.core.fanout`): progress
  events waiting for a watcher are coalesced to the latest value per activity;
- start and end events are never dropped or reordered for an activity
  (started < progress... < ended);
- a caller can watch an activity by id before it starts (clients name it with a request id).

It depends only on asyncio and the generated messages, so any server can host one.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from ftreview.core.errors import AlreadyExists
from ftreview.core.fanout import Fanout
from ftreview.core.wire import to_timestamp
from ftreview.v1 import activity_pb2 as pb

_Kind = pb.ActivityEventKind
_ENDED_STATES = (
    pb.ACTIVITY_STATE_SUCCEEDED,
    pb.ACTIVITY_STATE_FAILED,
    pb.ACTIVITY_STATE_CANCELLED,
)


class DuplicateActivity(AlreadyExists):
    """An activity with that id exists already (request ids must be unique)."""


class Activity:
    """Handle of one running activity. Progress may be reported from any thread."""

    def __init__(self, hub: ActivityHub, message: pb.Activity) -> None:
        self._hub = hub
        self.message = message

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def ended(self) -> bool:
        return self.message.state in _ENDED_STATES

    def progress(self, done: int, total: int | None = None, detail: str | None = None) -> None:
        self._hub._call_in_loop(self._progress, done, total, detail)

    def _progress(self, done: int, total: int | None, detail: str | None) -> None:
        if self.ended:
            return
        self.message.done = max(0, done)
        if total is not None:
            self.message.total = max(0, total)
        if detail is not None:
            self.message.detail = detail
        self._hub._publish(_Kind.ACTIVITY_EVENT_KIND_PROGRESS, self.message)

    def succeed(self, detail: str | None = None, **result: Any) -> None:
        """Ends it; `result` sets fields of its `ActivityResult` (what it produced, typed, for
        clients to read instead of the detail), e.g. `new_candidates=3`."""
        self._end(pb.ACTIVITY_STATE_SUCCEEDED, "", detail, pb.ActivityResult(**result))

    def fail(self, error: str, **result: Any) -> None:
        self._end(pb.ACTIVITY_STATE_FAILED, error or "failed", None, pb.ActivityResult(**result))

    def cancel(self, reason: str = "cancelled") -> None:
        self._end(pb.ACTIVITY_STATE_CANCELLED, reason, None, pb.ActivityResult())

    def _end(
        self, state: pb.ActivityState, error: str, detail: str | None, result: pb.ActivityResult
    ) -> None:
        self._hub._call_in_loop(self._end_in_loop, state, error, detail, result)

    def _end_in_loop(
        self, state: pb.ActivityState, error: str, detail: str | None, result: pb.ActivityResult
    ) -> None:
        if self.ended:
            return
        self.message.state = state
        self.message.error = error
        self.message.result.MergeFrom(result)
        if detail is not None:
            self.message.detail = detail
        if state == pb.ACTIVITY_STATE_SUCCEEDED and self.message.total:
            self.message.done = self.message.total
        self.message.ended_at.CopyFrom(to_timestamp(time.time_ns()))
        self._hub._publish(_Kind.ACTIVITY_EVENT_KIND_ENDED, self.message)
        self._hub._forget_old()


class ActivityHub:
    """Creates activities and fans their events out to watchers. Use from one event loop."""

    def __init__(self, keep_finished: int = 200) -> None:
        self._activities: OrderedDict[str, Activity] = OrderedDict()
        self._fanout: Fanout[pb.WatchActivitiesResponse] = Fanout()
        self._keep_finished = keep_finished
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def start(
        self, kind: str, label: str, total: int = 0, activity_id: str = "", **result: Any
    ) -> Activity:
        """A running activity. `result` sets what is known of its outcome from the start (a
        training job's `job_id`), so a watcher can tell whose activity it is by a field."""
        self._bind_loop()
        activity_id = activity_id or uuid.uuid4().hex
        if activity_id in self._activities:
            raise DuplicateActivity(f"activity {activity_id!r} exists already")
        message = pb.Activity(
            id=activity_id,
            kind=kind,
            label=label,
            total=total,
            state=pb.ACTIVITY_STATE_RUNNING,
            result=pb.ActivityResult(**result),
        )
        message.started_at.CopyFrom(to_timestamp(time.time_ns()))
        activity = Activity(self, message)
        self._activities[activity_id] = activity
        self._forget_old()
        self._publish(_Kind.ACTIVITY_EVENT_KIND_STARTED, message)
        return activity

    def get(self, activity_id: str) -> pb.Activity | None:
        activity = self._activities.get(activity_id)
        return None if activity is None else activity.message

    def list(self, limit: int = 50) -> builtins.list[pb.Activity]:
        copies: list[pb.Activity] = []
        for activity in reversed(self._activities.values()):
            if len(copies) == limit:
                break
            copy = pb.Activity()
            copy.CopyFrom(activity.message)
            copies.append(copy)
        return copies

    def running(self) -> builtins.list[pb.Activity]:
        return [a.message for a in self._activities.values() if not a.ended]

    async def watch(self, activity_id: str = "") -> AsyncIterator[pb.WatchActivitiesResponse]:
        """Snapshot, SNAPSHOT_END, then live events. Watching one id ends after its end."""
        self._bind_loop()
        accept = None if not activity_id else (lambda e: e.activity.id == activity_id)
        with self._fanout.watch(accept) as watch:
            # The snapshot is built now, in the step that registered the watch, from
            # copies: an activity that ends while the snapshot is being sent must not
            # look ended to the check below (its ENDED event is queued and still owed).
            if activity_id:
                known = self._activities.get(activity_id)
                live = [known.message] if known is not None else []
            else:
                live = self.running()
            snapshot = []
            for message in live:
                event = pb.WatchActivitiesResponse(kind=_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT)
                event.activity.CopyFrom(message)
                snapshot.append(event)
            for event in snapshot:
                yield event
            yield pb.WatchActivitiesResponse(kind=_Kind.ACTIVITY_EVENT_KIND_SNAPSHOT_END)
            if activity_id and snapshot and snapshot[0].activity.state in _ENDED_STATES:
                return
            # Events published while the snapshot was sent are queued already; at worst
            # they repeat a value the snapshot showed.
            async for event in watch:
                yield event
                if activity_id and event.kind == _Kind.ACTIVITY_EVENT_KIND_ENDED:
                    return

    @property
    def watcher_count(self) -> int:
        return self._fanout.watcher_count

    # -- internals -----------------------------------------------------------------------

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()

    def _call_in_loop(self, fn: object, *args: object) -> None:
        assert callable(fn)
        if self._loop is None or threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _publish(self, kind: pb.ActivityEventKind, message: pb.Activity) -> None:
        if not self._fanout.watcher_count:
            return
        event = pb.WatchActivitiesResponse(kind=kind)
        event.activity.CopyFrom(message)
        # Progress waiting for a watcher is replaced by newer progress of the same activity;
        # start and end events are never coalesced.
        key = ("progress", message.id) if kind == _Kind.ACTIVITY_EVENT_KIND_PROGRESS else None
        self._fanout.publish(event, key)

    def _forget_old(self) -> None:
        finished = [k for k, a in self._activities.items() if a.ended]
        for key in finished[: max(0, len(finished) - self._keep_finished)]:
            del self._activities[key]
