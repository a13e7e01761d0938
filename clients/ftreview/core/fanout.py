"""Fan-out of events to any number of watchers, each at its own pace.

Invariants:
- a slow watcher never blocks the publisher or other watchers: each has its own pending
  map, and an event whose key is still waiting there replaces the waiting one (through
  `merge`, in its place in line), so a watcher's backlog is bounded by the number of keys,
  not the number of events; events published without a key are never coalesced, dropped
  or reordered;
- a watcher registered in a step sees every event published after that step: subscribing
  is synchronous, so a caller that takes a snapshot in the same step misses nothing;
- closing ends every watch after it delivered what was pending (a clean end of stream at
  shutdown, not a cut).

Use from one event loop. The activity hub and the Review's candidate feed both stand on it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from types import TracebackType
from typing import Generic, TypeVar

E = TypeVar("E")


def _replace(waiting: E, new: E) -> E:
    return new


class Watch(Generic[E]):
    """One watcher's queue. Iterate it for events; leave the `with` block to unsubscribe."""

    def __init__(
        self,
        fanout: Fanout[E],
        accept: Callable[[E], bool] | None,
        merge: Callable[[E, E], E],
    ) -> None:
        self._fanout = fanout
        self._accept = accept
        self._merge = merge
        self._pending: OrderedDict[Hashable, E] = OrderedDict()
        self._wake = asyncio.Event()
        self._unique = itertools.count()
        self.closed = False

    def offer(self, key: Hashable | None, event: E) -> None:
        if self._accept is not None and not self._accept(event):
            return
        if key is None:
            key = ("unique", next(self._unique))
        else:
            key = ("key", key)
            waiting = self._pending.get(key)
            if waiting is not None:
                event = self._merge(waiting, event)
        self._pending[key] = event  # an existing key keeps its place in line
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def __aiter__(self) -> AsyncIterator[E]:
        while True:
            if not self._pending:
                if self.closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            _, event = self._pending.popitem(last=False)
            yield event

    def __enter__(self) -> Watch[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._fanout._watches.discard(self)


class Fanout(Generic[E]):
    """Publishes events to every current watch; `merge(waiting, new)` coalesces a key."""

    def __init__(self, merge: Callable[[E, E], E] = _replace) -> None:
        self._merge = merge
        self._watches: set[Watch[E]] = set()
        self._closed = False

    @property
    def watcher_count(self) -> int:
        return len(self._watches)

    def watch(self, accept: Callable[[E], bool] | None = None) -> Watch[E]:
        """A new watch, registered now; `accept` filters what it is offered."""
        watch = Watch(self, accept, self._merge)
        if self._closed:
            watch.close()
        else:
            self._watches.add(watch)
        return watch

    def publish(self, event: E, key: Hashable | None = None) -> None:
        for watch in self._watches:
            watch.offer(key, event)

    def close(self) -> None:
        """End every watch once it has delivered what is pending; later watches end at once."""
        self._closed = True
        for watch in self._watches:
            watch.close()
