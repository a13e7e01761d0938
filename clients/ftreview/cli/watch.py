"""`ftreview watch`: activities and candidate changes as they happen, one line (or one JSON
object) each.

Invariant: "watching" is said on stderr only once both streams of the Review (candidates
and activities) have ended their snapshots, so whatever happens after it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ftreview.cli.context import add_command, async_review_client, say
from ftreview.client import AsyncReviewClient, status_name
from ftreview.core.wire import timestamp_ns
from ftreview.report import activity_json, candidate_json, progress_line, stats_json
from ftreview.v1 import activity_pb2, review_pb2

_CANDIDATE_EVENTS = {
    review_pb2.CANDIDATE_EVENT_KIND_ADDED: "added",
    review_pb2.CANDIDATE_EVENT_KIND_UPDATED: "updated",
    review_pb2.CANDIDATE_EVENT_KIND_STATUS_CHANGED: "status_changed",
    review_pb2.CANDIDATE_EVENT_KIND_REMOVED: "removed",
    review_pb2.CANDIDATE_EVENT_KIND_STATS: "stats",
}
_ACTIVITY_EVENTS = {
    activity_pb2.ACTIVITY_EVENT_KIND_STARTED: "started",
    activity_pb2.ACTIVITY_EVENT_KIND_PROGRESS: "progress",
    activity_pb2.ACTIVITY_EVENT_KIND_ENDED: "ended",
}


def cmd_watch(args: argparse.Namespace) -> int:
    def emit(shape: dict[str, Any], text: str) -> None:
        print(json.dumps(shape, ensure_ascii=False) if args.json else text, flush=True)

    async def candidates(client: AsyncReviewClient, ready: asyncio.Event) -> None:
        async for event in client.watch_candidates():
            if event.kind == review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT_END:
                ready.set()
            kind = _CANDIDATE_EVENTS.get(event.kind)
            if kind == "stats":
                s = event.stats
                emit(
                    {"type": "stats", "stats": stats_json(s)},
                    f"stats      {s.conversation_id}: {s.responses_seen} seen,"
                    f" {s.responses_above_threshold} above {s.threshold:g},"
                    f" max {s.max_divergence:.4g}" + (f", error: {s.error}" if s.error else ""),
                )
            elif kind is not None:
                c = event.candidate
                emit(
                    {"type": "candidate", "event": kind, "candidate": candidate_json(c)},
                    f"candidate  {kind:<14} {timestamp_ns(c.timestamp)} "
                    f"{status_name(c.status):<8} {c.divergence:.4g}",
                )

    async def activities(client: AsyncReviewClient, ready: asyncio.Event) -> None:
        async for event in client.watch_activities():
            if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                ready.set()
            kind = _ACTIVITY_EVENTS.get(event.kind)
            if kind is None:
                continue
            a = event.activity
            emit(
                {"type": "activity", "event": kind, "activity": activity_json(a)},
                f"activity   {kind:<14} {a.kind:<9} {progress_line(a)}"
                + (f" error: {a.error}" if a.error else ""),
            )

    async def both_ready(events: list[asyncio.Event]) -> None:
        for event in events:
            await event.wait()

    async def go() -> None:
        async with async_review_client(args) as client:
            ready = [asyncio.Event(), asyncio.Event()]
            tasks = [
                asyncio.create_task(candidates(client, ready[0])),
                asyncio.create_task(activities(client, ready[1])),
            ]
            announced = asyncio.create_task(both_ready(ready))
            await asyncio.wait([announced, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if announced.done():
                say("watching; Ctrl-C stops")
            else:
                announced.cancel()
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(
        commands, "watch", cmd_watch, "print activities and candidate changes as they happen"
    )
