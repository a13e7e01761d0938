"""`ftreview jobs` and `ftreview ask`: what training did, and whether the model now knows
without being told.

Invariants:
- both only read. `jobs` lists the jobs as the Review keeps them (newest first), with the
  figures the trainer measured and nothing made up where it measured nothing (`null`,
  `-`); `ask` answers greedily without memories on the model the Scorer serves now and names
  the adapter that answered ("the base model" when none);
- `follow_jobs` (for `send`) reads the activity stream subscribed before the Send, so a job
  that ends before Send returns is still seen: the job's "train" activity to its end, then,
  when it succeeded and the Review re-scores, its "verify" activity (started before train
  ends) to its end. Both are known by their kind and the job in their typed result
  (`ActivityResult.job_ids`), never by the form of their id.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from ftreview.cli.context import UsageError, add_command, print_json, review_client, show
from ftreview.cli.progress import ActivityProgress
from ftreview.cli.runs import ENDED
from ftreview.client import activity_state_name
from ftreview.errors import FtreviewError
from ftreview.report import ask_json, job_json, jobs_table
from ftreview.v1 import activity_pb2


def cmd_jobs(args: argparse.Namespace) -> int:
    with review_client(args) as client:
        jobs = client.list_jobs()
    if args.json:
        print_json({"jobs": [job_json(j) for j in jobs]})
    elif jobs:
        show(jobs_table(jobs))
    else:
        print("no training jobs yet (approve candidates, then `ftreview send`)")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    if not args.question.strip():
        raise UsageError("ask what? (the question is empty)")
    if args.max_tokens is not None and args.max_tokens <= 0:
        raise UsageError("--max-tokens must be positive")
    with review_client(args) as client:
        reply = client.ask(
            args.question,
            conversation_id=args.conversation or "",
            max_new_tokens=args.max_tokens or 0,
        )
    if args.json:
        print_json(ask_json(args.question, args.conversation or "", reply))
    else:
        print(reply.answer)
        print(f"(answered without memories by {_who(reply.adapter)})")
    return 0


async def follow_jobs(
    events: asyncio.Queue[activity_pb2.Activity | None],
    job_ids: Sequence[str],
    shown: ActivityProgress,
    timeout_s: float,
) -> dict[str, str]:
    """Shows each job's training and re-scoring as they run; each job's last activity state
    ("succeeded", "failed", ...). `events` carries every activity event since before the
    Send; None means the stream ended. Returns each activity's end state, by activity id."""
    jobs = set(job_ids)
    waiting = {("train", job) for job in jobs}
    seen: set[str] = set()
    states: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while waiting:
        try:
            activity = await asyncio.wait_for(events.get(), deadline - loop.time())
        except TimeoutError:
            raise FtreviewError(
                f"training did not end within {timeout_s:g} s (--timeout); "
                "`ftreview jobs` shows it later"
            ) from None
        if activity is None:
            raise FtreviewError("the activity stream ended before training did")
        job = _job_of(activity)
        if job not in jobs:
            continue
        step = (activity.kind, job)
        if activity.id not in seen:
            seen.add(activity.id)
            shown.started(activity)
            if activity.kind == "verify":
                waiting.add(step)
        if activity.state in ENDED:
            shown.ended(activity)
            waiting.discard(step)
            states[activity.id] = activity_state_name(activity.state)
        else:
            shown.update(activity)
    return states


def _job_of(activity: activity_pb2.Activity) -> str | None:
    """The training job a "train" or "verify" activity is about; None for any other."""
    if activity.kind in ("train", "verify") and activity.result.job_ids:
        return activity.result.job_ids[0]
    return None


def _who(adapter: str) -> str:
    return f"adapter {adapter}" if adapter else "the base model"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(commands, "jobs", cmd_jobs, "list the training jobs and what they achieved")
    p = add_command(
        commands,
        "ask",
        cmd_ask,
        "ask the current model a question without memories (does it know now?)",
    )
    p.add_argument("question", metavar="QUESTION")
    p.add_argument(
        "--conversation",
        metavar="ID",
        help="ask inside this stored conversation, its memories removed",
    )
    p.add_argument("--max-tokens", type=int, metavar="N", help="longest answer (tokens)")
