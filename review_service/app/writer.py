"""Group commit: every change to the Review goes through one writer, and concurrent changes
share one transaction and one fsync.

Invariants:
- acknowledged means durable: a change's caller is answered (and its events published, and
  the view that readers see replaced) only after the transaction holding it committed with
  synchronous=FULL. Batching only decides how many changes share that transaction;
- changes are planned one after another on a staged copy of the view, in arrival order, so
  each plan sees the effect of the ones queued before it (exactly as if they ran one at a
  time); a plan that refuses (a domain error) changes nothing and does not hold up the rest;
- if a shared transaction fails, none of it is stored; the changes are then planned and
  committed again one at a time, so one bad change fails alone;
- a caller that goes away does not cancel its change: once queued it commits, so the view,
  the store and the events never disagree;
- reads that need the store and the view of the same moment (`read`) run between batches.

One thread owns the store (commits and reads run in order, off the event loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from review_service.app.feed import CandidateEvent, CandidateFeed
from review_service.app.view import View
from review_service.domain.ports import CandidateStore, StoreChange

log = logging.getLogger("review_service")

T = TypeVar("T")
R = TypeVar("R")
# A plan reads the staged view and says what to write, what to publish, what to answer.
Plan = Callable[[View], tuple[StoreChange | None, list[CandidateEvent], T]]

# Enough to drain 50 concurrent clients in one transaction; bounds one transaction's size.
MAX_BATCH = 256


@dataclass
class _Write(Generic[T]):
    plan: Plan[T]
    future: asyncio.Future[T]


@dataclass
class _Read(Generic[T]):
    work: Callable[[View], Any]
    future: asyncio.Future[T]


class Writer:
    def __init__(self, store: CandidateStore, view: View, feed: CandidateFeed) -> None:
        # Call only through `in_store_thread`: the connection belongs to that thread.
        self.store = store
        self.view = view
        self._feed = feed
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="review-store")
        self._queue: asyncio.Queue[_Write[Any] | _Read[Any] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # Transactions committed and changes in them: what the group commit saves.
        self.transactions = 0
        self.changes = 0

    async def in_store_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, *args)

    def _enqueue(self, item: _Write[Any] | _Read[Any]) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        self._queue.put_nowait(item)

    async def mutate(self, plan: Plan[T]) -> T:
        """Plan on the latest staged view, commit, then answer. Not cancelled with its
        caller: a queued change runs to its end."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Write(plan, future))
        return await asyncio.shield(future)

    async def read(self, fetch: Callable[[], R], then: Callable[[R, View], T]) -> T:
        """`fetch` from the store, then `then(result, view)`, with no commit in between."""

        async def work(view: View) -> T:
            return then(await self.in_store_thread(fetch), view)

        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Read(work, future))
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Finish what is queued, then close the store."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        await self.in_store_thread(self.store.close)
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            writes: list[_Write[Any]] = []
            while True:
                if item is None:
                    await self._flush_guarded(writes)
                    return
                if isinstance(item, _Read):
                    await self._flush_guarded(writes)
                    writes = []
                    await _settle(item.future, item.work(self.view))
                else:
                    writes.append(item)
                if len(writes) >= MAX_BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            await self._flush_guarded(writes)

    async def _flush_guarded(self, writes: list[_Write[Any]]) -> None:
        """A bug in a plan or a publish fails its batch's callers, never the writer (which
        every later change waits on)."""
        try:
            await self._flush(writes)
        except Exception as error:
            log.exception("the writer failed a batch of %d changes", len(writes))
            for item in writes:
                _fail(item.future, error)

    async def _flush(self, writes: list[_Write[Any]]) -> None:
        if not writes:
            return
        staged = self.view.copy()
        done: list[tuple[_Write[Any], list[CandidateEvent], Any]] = []
        changes: list[StoreChange] = []
        for item in writes:
            try:
                change, events, result = item.plan(staged)
            except Exception as error:
                _fail(item.future, error)
                continue
            if change is not None and not change.is_empty():
                staged.apply(change)
                changes.append(change)
            done.append((item, events, result))
        if changes:
            try:
                await self.in_store_thread(self.store.commit, changes)
            except Exception as error:
                if len(writes) > 1:
                    log.warning("a shared transaction failed (%s); committing one at a time", error)
                    for item, _, _ in done:
                        await self._flush([item])
                    return
                log.exception("a change could not be stored")
                _fail(writes[0].future, error)
                return
            self.transactions += 1
            self.changes += len(changes)
        self.view = staged
        for item, events, result in done:
            for event in events:
                self._feed.publish(event)
            if not item.future.done():
                item.future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


async def _settle(future: asyncio.Future[Any], work: Any) -> None:
    try:
        result = await work
    except Exception as error:
        _fail(future, error)
    else:
        if not future.done():
            future.set_result(result)
