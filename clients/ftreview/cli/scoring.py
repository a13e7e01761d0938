"""`ftreview score` and `ftreview stats`: ingest conversations, follow their scoring, and
say what every reply scored or why it is not a candidate.

Invariant: progress comes from the Review's activity stream, subscribed to (its snapshot
ended) before the first Ingest, and each Ingest names its activity, so not even a scoring
run that ends at once can be missed. The activity followed is the Review's: it ends once
the result is stored, so the table read afterwards is complete.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftreview.cli.context import (
    EXIT_FAILED,
    UsageError,
    add_command,
    async_review_client,
    print_json,
    review_client,
    say,
    show,
)
from ftreview.cli.progress import ActivityProgress
from ftreview.client import AsyncReviewClient, ReviewClient, activity_state_name, new_request_id
from ftreview.errors import FtreviewError
from ftreview.report import (
    assistant_replies,
    overall_stats_json,
    reply_row_json,
    reply_rows,
    reply_table,
    stats_json,
    stats_text,
)
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2

_ENDED = (
    activity_pb2.ACTIVITY_STATE_SUCCEEDED,
    activity_pb2.ACTIVITY_STATE_FAILED,
    activity_pb2.ACTIVITY_STATE_CANCELLED,
)


@dataclass
class ScoringRun:
    """One conversation ingested by `score`, and how its scoring ended."""

    file: str
    conversation: conversation_pb2.Conversation
    request_id: str
    activity_id: str = ""
    conversation_id: str = ""
    activity: activity_pb2.Activity | None = None

    @property
    def state(self) -> str:
        if not self.activity_id:
            return "nothing_to_score"
        return activity_state_name(self.activity.state) if self.activity else "running"

    @property
    def error(self) -> str:
        return self.activity.error if self.activity else ""


def _load_files(paths: Sequence[str]) -> list[tuple[str, conversation_pb2.Conversation]]:
    from ftreview.conversations import ConversationFileError, load_conversations

    loaded: list[tuple[str, conversation_pb2.Conversation]] = []
    for path in paths:
        try:
            loaded.extend((path, c) for c in load_conversations(path))
        except ConversationFileError as error:
            raise UsageError(str(error)) from error
        except OSError as error:
            raise UsageError(f"{path}: {error.strerror or error}") from error
    return loaded


async def _ingest(client: AsyncReviewClient, run: ScoringRun) -> None:
    reply = await client.ingest(run.conversation, request_id=run.request_id)
    run.activity_id, run.conversation_id = reply.activity_id, reply.conversation_id


async def _ingest_and_follow(
    client: AsyncReviewClient, runs: list[ScoringRun], shown: ActivityProgress, timeout_s: float
) -> None:
    """Ingests every conversation and follows its scoring to the end."""
    by_id: dict[str, ScoringRun] = {}
    early: dict[str, activity_pb2.Activity] = {}  # events that beat their Ingest reply
    subscribed = asyncio.Event()
    all_ended = asyncio.Event()

    def settle() -> None:
        if all(r.activity is not None and r.activity.state in _ENDED for r in by_id.values()):
            all_ended.set()

    def record(run: ScoringRun, activity: activity_pb2.Activity, kind: int) -> None:
        run.activity = activity
        if activity.state in _ENDED:
            shown.ended(activity)
            settle()
        elif kind == activity_pb2.ACTIVITY_EVENT_KIND_STARTED:
            shown.started(activity)
        else:
            shown.update(activity)

    async def follow() -> None:
        async for event in client.watch_activities():
            if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                subscribed.set()
                continue
            run = by_id.get(event.activity.id)
            if run is not None:
                record(run, event.activity, event.kind)
            elif event.activity.id in requested:
                early[event.activity.id] = event.activity

    requested = {run.request_id for run in runs}
    watcher = asyncio.create_task(follow())
    try:
        await _until(subscribed, watcher, timeout_s)
        for run in runs:
            await _ingest(client, run)
            if run.activity_id:
                requested.add(run.activity_id)
                by_id[run.activity_id] = run
                if run.activity_id in early:
                    activity = early.pop(run.activity_id)
                    shown.started(activity)
                    record(run, activity, activity_pb2.ACTIVITY_EVENT_KIND_PROGRESS)
        if by_id:
            settle()
            await _until(all_ended, watcher, timeout_s)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _until(event: asyncio.Event, watcher: asyncio.Task[None], timeout_s: float) -> None:
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


def score_files(args: argparse.Namespace, *, show_progress: bool = True) -> list[ScoringRun]:
    """Ingests `args.files` and, unless `args.no_wait`, follows their scoring to the end."""
    loaded = _load_files(args.files)
    if not loaded:
        raise UsageError("no conversations in " + ", ".join(args.files))
    runs = [ScoringRun(file, conv, new_request_id()) for file, conv in loaded]

    async def go() -> None:
        async with async_review_client(args) as client:
            if args.no_wait:
                for run in runs:
                    await _ingest(client, run)
                return
            with ActivityProgress(enabled=show_progress and not args.quiet) as shown:
                await _ingest_and_follow(client, runs, shown, args.timeout)

    asyncio.run(go())
    return runs


def _run_stats(
    reply: review_pb2.GetStatsResponse, conversation_id: str
) -> scorer_pb2.FinetuneScoringStats | None:
    for stats in reply.conversations:
        if stats.conversation_id == conversation_id:
            return stats
    return reply.last if reply.last.conversation_id == conversation_id else None


def _report(client: ReviewClient, run: ScoringRun) -> tuple[list[Any], Any]:
    """A run's rows, from the latest score of every reply the Review keeps
    (`GetStats(conversation_id).replies`) and the candidates it lists, and its stats."""
    conversation_id = run.conversation_id or run.conversation.id
    stats = client.get_stats(conversation_id)
    candidates = client.list_candidates(
        ["pending", "approved", "rejected"], conversation_id=conversation_id
    )
    failed = run.state in ("failed", "cancelled")
    replies = assistant_replies(run.conversation)
    rows = reply_rows(conversation_id, replies, stats.replies, candidates, failed)
    return rows, _run_stats(stats, conversation_id)


def _no_wait_report(args: argparse.Namespace, runs: list[ScoringRun]) -> int:
    if args.json:
        shape = [
            {"file": r.file, "conversation_id": r.conversation_id,
             "activity_id": r.activity_id, "state": r.state}
            for r in runs
        ]  # fmt: skip
        print_json({"runs": shape})
    else:
        for r in runs:
            print(f"{r.file}: {r.conversation_id} ingested, scoring as {r.activity_id}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    runs = score_files(args, show_progress=not args.json)
    if args.no_wait:
        return _no_wait_report(args, runs)
    with review_client(args) as client:
        results = [(run, *_report(client, run)) for run in runs]
    if args.json:
        print_json(
            {
                "replies": [
                    reply_row_json(row, run.file) for run, rows, _ in results for row in rows
                ],
                "runs": [
                    {
                        "file": run.file,
                        "conversation_id": run.conversation_id,
                        "activity_id": run.activity_id,
                        "state": run.state,
                        "error": run.error,
                        "stats": stats_json(stats) if stats is not None else None,
                    }
                    for run, _, stats in results
                ],
            }
        )
    else:
        for run, rows, stats in results:
            print(f"{run.file}: conversation {run.conversation_id} ({run.state})")
            if rows:
                show(reply_table(rows))
            else:
                print("  no assistant replies")
            if stats is not None:
                print(
                    f"  {stats.responses_seen} seen, {stats.responses_scored} scored,"
                    f" {stats.responses_above_threshold} above threshold {stats.threshold:g};"
                    f" max divergence {stats.max_divergence:.4g}"
                )
            print()
    failed = [r for r in runs if r.state in ("failed", "cancelled")]
    for run in failed:
        say(f"ftreview: scoring {run.file} ({run.conversation_id}) {run.state}: {run.error}")
    return EXIT_FAILED if failed else 0


def cmd_stats(args: argparse.Namespace) -> int:
    with review_client(args) as client:
        stats = client.get_stats(args.conversation or "")
    if args.json:
        print_json(overall_stats_json(stats))
    else:
        print(stats_text(stats))
    return 0


def add_scoring_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=float, default=1800.0, metavar="S", help="how long to wait for scoring"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands, "score", cmd_score, "ingest conversation files and show how each reply scored"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--no-wait", action="store_true", help="return after ingest")
    add_scoring_flags(p)
    p = add_command(commands, "stats", cmd_stats, "what the last scoring run found, and why")
    p.add_argument("--conversation", metavar="ID")
