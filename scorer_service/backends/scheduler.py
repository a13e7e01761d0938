"""One worker thread owns the model; concurrent scoring calls share its rounds.

Invariants:
- only the worker thread runs the model, so passes never interleave and an adapter switch
  (a call job) lands between two rounds, never inside one;
- score calls that are waiting when a round starts, or arrive within `window_s` of its first
  one, run in that round together (the engine batches their prompts across calls); a round
  never waits longer than `window_s` for company;
- every submitted job ends: with its result, with the exception its work raised, or with
  `WorkCancelled` once its stop signal is seen; a job cancelled before it starts never runs;
- the event loop only waits on futures: it never blocks on the model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from scorer_service.backends.base import ProgressCallback, RangeLogprobs, ScoreRequest, StopCheck

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Job:
    should_stop: StopCheck | None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def stopped(self) -> bool:
        """True once the caller went away or its stop signal fired."""
        if self.cancelled.is_set():
            return True
        if self.should_stop is not None and self.should_stop():
            self.cancelled.set()
            return True
        return False


@dataclass
class ScoreJob(_Job):
    requests: list[ScoreRequest] = field(default_factory=list)
    progress: ProgressCallback | None = None
    future: concurrent.futures.Future[list[RangeLogprobs]] = field(
        default_factory=concurrent.futures.Future
    )


@dataclass
class CallJob(_Job, Generic[T]):
    # Called on the worker thread with the job's stop check.
    fn: Callable[[StopCheck], T] | None = None
    future: concurrent.futures.Future[T] = field(default_factory=concurrent.futures.Future)


RoundRunner = Callable[[list[ScoreJob]], None]


class ModelWorker:
    """The thread that runs `run_round(jobs)` for score jobs and `fn(stop)` for call jobs.

    `run_round` must end every job's future it is given (result or exception).
    """

    def __init__(self, run_round: RoundRunner, window_s: float = 0.01) -> None:
        self._run_round = run_round
        self.window_s = window_s
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._held: deque[_Job | None] = deque()
        self._thread = threading.Thread(target=self._loop, name="ftreview-model", daemon=True)
        self._thread.start()

    async def score(
        self,
        requests: list[ScoreRequest],
        progress: ProgressCallback | None,
        should_stop: StopCheck | None,
    ) -> list[RangeLogprobs]:
        job = ScoreJob(should_stop, requests=requests, progress=progress)
        return await self._submit(job, job.future)

    async def call(self, fn: Callable[[StopCheck], T], should_stop: StopCheck | None = None) -> T:
        job: CallJob[T] = CallJob(should_stop, fn=fn)
        return await self._submit(job, job.future)

    async def _submit(self, job: _Job, future: concurrent.futures.Future[T]) -> T:
        self._queue.put(job)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # The work stops at its next chunk; nobody waits for its result any more.
            job.cancelled.set()
            raise

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _next(self, timeout: float | None) -> _Job | None:
        if self._held:
            return self._held.popleft()
        if timeout is None:
            return self._queue.get()
        return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()

    def _loop(self) -> None:
        while True:
            first = self._next(None)
            if first is None:
                return
            if isinstance(first, CallJob):
                self._run_call(first)
                continue
            assert isinstance(first, ScoreJob)
            jobs = [first]
            deadline = time.monotonic() + self.window_s
            while True:
                try:
                    item = self._next(deadline - time.monotonic())
                except queue.Empty:
                    break
                if isinstance(item, ScoreJob):
                    jobs.append(item)
                else:  # a call or the end: after this round
                    self._held.append(item)
                    break
            started = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if not started:
                continue
            try:
                self._run_round(started)
            except BaseException as exc:  # the round's own bug: no caller waits forever
                log.exception("a scoring round failed")
                for job in started:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _run_call(self, job: CallJob[Any]) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        assert job.fn is not None
        try:
            job.future.set_result(job.fn(job.stopped))
        except BaseException as exc:
            job.future.set_exception(exc)
