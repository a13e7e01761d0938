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
from ftreview.cli.progress import BatchProgress
from ftreview.cli.runs import ScoringRun, ingest_and_follow, ingest_one, load_files
from ftreview.client import ReviewClient
from ftreview.report import (
    RunSummary,
    assistant_replies,
    overall_stats_json,
    reply_row_json,
    reply_rows,
    reply_table,
    score_summary_table,
    score_total_text,
    stats_json,
    stats_table,
    stats_text,
    stats_totals_text,
)
from ftreview.v1 import review_pb2, scorer_pb2


def score_files(args: argparse.Namespace, *, show_progress: bool = True) -> list[ScoringRun]:
    """Ingests `args.files` and, unless `args.no_wait`, follows their scoring to the end."""
    runs, unreadable = load_files(args.files)
    if not runs:
        if len(unreadable) == 1:
            raise UsageError(unreadable[0].refused)
        raise UsageError("no conversations in " + ", ".join(args.files))

    async def go() -> None:
        async with async_review_client(args) as client:
            if args.no_wait:
                for run in runs:
                    await ingest_one(client, run)
                return
            with BatchProgress(enabled=show_progress and not args.quiet) as shown:
                await ingest_and_follow(client, runs, shown, args.timeout)

    asyncio.run(go())
    return unreadable + runs


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
        ["pending", "approved", "rejected", "sent"], conversation_id=conversation_id
    )
    replies = assistant_replies(run.conversation)
    rows = reply_rows(conversation_id, replies, stats.replies, candidates, run.failed)
    return rows, _run_stats(stats, conversation_id)


def _no_wait_report(args: argparse.Namespace, runs: list[ScoringRun]) -> int:
    if args.json:
        shape = [
            {"file": r.file, "conversation_id": r.conversation_id,
             "activity_id": r.activity_id, "state": r.state, "error": r.error}
            for r in runs
        ]  # fmt: skip
        print_json({"runs": shape})
    else:
        for r in runs:
            if not r.refused:
                print(f"{r.file}: {r.conversation_id} ingested, scoring as {r.activity_id}")
    return _failures(runs)


def cmd_score(args: argparse.Namespace) -> int:
    runs = score_files(args, show_progress=not args.json)
    if args.no_wait:
        return _no_wait_report(args, runs)
    with review_client(args) as client:
        results = [(run, *_report(client, run)) if not run.refused else (run, [], None)
                   for run in runs]  # fmt: skip
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
        summaries = [
            RunSummary(
                run.file,
                run.conversation_id,
                len(rows),
                sum(row.candidate for row in rows),
                stats.max_divergence if stats is not None and stats.responses_scored else None,
                run.state,
            )
            for run, rows, stats in results
        ]
        if len(results) == 1:
            run, rows, _ = results[0]
            print(f"{run.file}: conversation {run.conversation_id} ({run.state})")
            if rows:
                show(reply_table(rows))
            else:
                print("  no assistant replies")
        else:
            show(score_summary_table(summaries))
        print(score_total_text(summaries))
    return _failures(runs)


def _failures(runs: list[ScoringRun]) -> int:
    """Names every run that failed or was refused, one line each, then how many of all."""
    failed = [r for r in runs if r.failed]
    for run in failed:
        if run.refused:
            say(f"ftreview: refused {run.refused}")
        else:
            say(f"ftreview: scoring {run.file} ({run.conversation_id}) {run.state}: {run.error}")
    if failed and len(runs) > 1:
        say(f"ftreview: {len(failed)} of {len(runs)} conversations not scored; the others are")
    return EXIT_FAILED if failed else 0


def cmd_stats(args: argparse.Namespace) -> int:
    with review_client(args) as client:
        stats = client.get_stats(args.conversation or "")
    if args.json:
        print_json(overall_stats_json(stats))
        return 0
    print(stats_text(stats))
    if stats.conversations:
        print()
        show(stats_table(stats.conversations))
        print(stats_totals_text(stats.conversations))
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
    p = add_command(
        commands,
        "stats",
        cmd_stats,
        "what scoring found in every conversation, and why the last run found what it did",
    )
    p.add_argument("--conversation", metavar="ID")
