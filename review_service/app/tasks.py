"""Background work of the Review: activities a client can watch, and the tasks behind them.

Invariants: a request id names at most one activity (a reused one is refused, so a client
that watches by request id never follows someone else's work); every task spawned here is
cancelled and awaited on close, so nothing runs after the store is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ftreview.core.activity_hub import Activity, ActivityHub, DuplicateActivity

from review_service.domain.errors import AlreadyExists


class Background:
    def __init__(self, hub: ActivityHub) -> None:
        self.hub = hub
        self._tasks: set[asyncio.Task[None]] = set()

    def start_activity(
        self, kind: str, label: str, request_id: str, total: int = 0, **result: Any
    ) -> Activity:
        try:
            return self.hub.start(kind, label, total=total, activity_id=request_id, **result)
        except DuplicateActivity as error:
            raise AlreadyExists(f"request id {request_id!r} was used already") from error

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
