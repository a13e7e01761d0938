"""`ftreview send`, `export`: approved replies leave for fine-tuning (`ftreview trained`,
the ledger that says which did, is `knowledge`'s).

Invariants:
- `send` exits non-zero when any reply was not accepted (naming each with the endpoint's
  reason), when the training job it started failed, or when a job did not learn a reply
  (named with the trainer's reason: it is approved again, for the next send); unless
  `--no-wait` it follows the job to its end (see `training.follow_jobs`) and prints each
  trained reply's divergence before -> after; on a terminal it asks first (`--yes` skips
  the question; never asked in a pipe);
- `export` writes the JSONL exactly as the Review returned it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftreview.cli.context import (
    EXIT_FAILED,
    STATUSES,
    add_command,
    ask_yes,
    async_review_client,
    parse_id,
    print_json,
    review_client,
    say,
)
from ftreview.cli.progress import ActivityProgress
from ftreview.cli.runs import until
from ftreview.cli.training import follow_jobs
from ftreview.client import CandidateStatus, job_state_name
from ftreview.core.wire import timestamp_ns
from ftreview.report import (
    job_figures,
    job_json,
    number,
    one_line,
    optional,
    send_json,
    trained_json,
)
from ftreview.v1 import activity_pb2, review_pb2


def cmd_send(args: argparse.Namespace) -> int:
    ids = [parse_id(i) for i in args.ids]
    with review_client(args) as client:
        approved = {
            timestamp_ns(c.timestamp): c.content for c in client.list_candidates(["approved"])
        }
        if sys.stdin.isatty() and not args.yes and not args.json:
            count = len(ids) or len(approved)
            url = client.get_config().finetune_url or "(no learn.finetune_url set)"
            if not ask_yes(f"send {count} approved repl{'y' if count == 1 else 'ies'} to {url}?"):
                say("nothing sent")
                return 0
    outcome = asyncio.run(send_and_follow(args, ids))
    reply = outcome.reply
    jobs = [j for j in outcome.jobs if j.id in outcome.job_ids]
    trained = [e for e in outcome.trained if e.job_id in outcome.job_ids]
    returned = outcome.returned
    if args.json:
        shape = send_json(reply)
        if not args.no_wait:
            shape["jobs"] = [job_json(j) for j in jobs]
            shape["trained"] = [trained_json(e) for e in trained]
            shape["returned"] = [
                {"timestamp_ns": timestamp_ns(c.timestamp), "reason": c.send_error}
                for c in returned
            ]
        print_json(shape)
    else:
        print(f"sent {len(reply.accepted)} (job {reply.job_id or '-'})")
        for failure in reply.failed:
            print(f"  not sent {timestamp_ns(failure.timestamp)}: {failure.reason}")
        for job in jobs:
            print(f"job {job.id}: {job_state_name(job.state)}; {job_figures(job)}")
            if job.error:
                print(f"  error: {job.error}")
        for entry in trained:
            ns = timestamp_ns(entry.timestamp)
            before, after = (
                optional(entry, "divergence_before"),
                optional(entry, "divergence_after"),
            )
            change = (
                f"{number(before)} → {number(after) if after is not None else '(not re-scored)'}"
            )
            print(f"  {ns}  divergence {change}  {one_line(approved.get(ns, ''), 60)}")
        for candidate in returned:
            print(f"  not learnt {timestamp_ns(candidate.timestamp)}: {candidate.send_error}")
    training_failed = [j for j in jobs if j.state == review_pb2.TRAINING_JOB_STATE_FAILED]
    for job in training_failed:
        say(f"ftreview: training job {job.id} failed: {job.error or 'no reason given'}")
    unlearnt = len(returned) if not training_failed else 0
    if unlearnt:
        say(
            f"ftreview: {unlearnt} repl{'y was' if unlearnt == 1 else 'ies were'} not learnt: "
            "approved again, the next send sends them"
        )
    return EXIT_FAILED if reply.failed or training_failed or returned else 0


@dataclass
class _Sent:
    reply: review_pb2.SendResponse
    job_ids: list[str] = field(default_factory=list)
    jobs: list[review_pb2.TrainingJob] = field(default_factory=list)
    trained: list[review_pb2.TrainedEntry] = field(default_factory=list)
    # Accepted, then not learnt by their job: approved again, with the reason.
    returned: list[review_pb2.Candidate] = field(default_factory=list)


async def send_and_follow(args: argparse.Namespace, ids: list[int]) -> _Sent:
    """Sends; unless --no-wait, follows the jobs the endpoint started (the activity stream
    is subscribed to before the Send) and reads their figures once they end."""
    async with async_review_client(args) as client:
        if args.no_wait:
            return _Sent(await client.send(ids))
        events: asyncio.Queue[activity_pb2.Activity | None] = asyncio.Queue()
        subscribed = asyncio.Event()

        async def watch() -> None:
            try:
                async for event in client.watch_activities():
                    if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                        subscribed.set()
                    elif event.kind != activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT:
                        events.put_nowait(event.activity)
            finally:
                events.put_nowait(None)

        watcher = asyncio.create_task(watch())
        try:
            await until(subscribed, watcher, args.timeout)
            sent = _Sent(await client.send(ids))
            sent.job_ids = [j for j in sent.reply.job_id.split(",") if j]
            if sent.job_ids:
                with ActivityProgress(enabled=not args.json) as shown:
                    await follow_jobs(events, sent.job_ids, shown, args.timeout)
                sent.jobs = await client.list_jobs()
                sent.trained = await client.list_trained()
                accepted = {timestamp_ns(t) for t in sent.reply.accepted}
                sent.returned = [
                    c for c in await client.list_candidates(["approved"])
                    if timestamp_ns(c.timestamp) in accepted
                ]  # fmt: skip
            return sent
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


def cmd_export(args: argparse.Namespace) -> int:
    ids = [parse_id(i) for i in args.ids]
    statuses: list[CandidateStatus] = list(args.status or [])
    with review_client(args) as client:
        reply = client.export(
            args.format, statuses=statuses, timestamps_ns=ids, mark_trained=args.mark_trained
        )
    to_file = bool(args.output and args.output != "-")
    if to_file:
        Path(args.output).write_text(reply.jsonl, encoding="utf-8")
    summary: dict[str, Any] = {
        "count": reply.count,
        "format": args.format,
        "timestamps_ns": [timestamp_ns(t) for t in reply.timestamps],
        "marked_trained": args.mark_trained,
        "output": args.output if to_file else None,
    }
    if args.json:
        if not to_file:
            summary["jsonl"] = reply.jsonl
        print_json(summary)
    elif not to_file:
        sys.stdout.write(reply.jsonl)
    else:
        trained = " and marked them trained" if args.mark_trained else ""
        print(f"wrote {reply.count} {args.format} examples to {args.output}{trained}")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands,
        "send",
        cmd_send,
        "send the approved candidates to the fine-tuning endpoint and follow the training",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="only these (default: every approved)")
    p.add_argument("--no-wait", action="store_true", help="return once the endpoint answered")
    p.add_argument("--yes", action="store_true", help="do not ask (only asked on a terminal)")
    p.add_argument(
        "--timeout", type=float, default=3600.0, metavar="S", help="how long to follow training"
    )

    p = add_command(commands, "export", cmd_export, "write training examples as JSONL")
    p.add_argument("--format", choices=["openai", "trl"], default="openai")
    p.add_argument("-o", "--output", metavar="FILE", help="default: stdout")
    p.add_argument("--status", action="append", choices=STATUSES, help="default: approved")
    p.add_argument("--mark-trained", action="store_true", help="record them in the trained ledger")
    p.add_argument("ids", nargs="*", metavar="ID")
