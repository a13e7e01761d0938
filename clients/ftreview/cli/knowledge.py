"""`ftreview forget` and `ftreview trained`: take a trained fact back, and the ledger with
what each fact is worth now.

Invariants:
- the reply is named as every command names one (the integer ID of `ftreview trained`),
  and the reviewer as approve and reject get it (`--reviewer`, FTREVIEW_REVIEWER, login);
- one line says what happened: retracted and the trainer told (with the consolidation
  job it queued), or why the trainer was not told (the retraction stands; the next send
  tells it). A reply that is not in the ledger is the usual one-line "not found" error;
- `--json` prints the Review's answer: `timestamp_ns`, `job_id`, `delivery_error`, and
  the entry as `ftreview trained --json` shows it;
- `trained` shows each fact's state and whether it still comes back (yes / no, with the
  job that checked; — when never checked) in a table readable at 80 columns (the reply
  gives way), the reason of every fact that is not live below it; `--json` adds `state`,
  `superseded_by`, `reason`, `retraction_delivered`, `comes_back`, `checked_by_job` and
  `content` to the keys it had, renaming none; `--state` keeps the facts in one state.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.table import Table

from ftreview.cli.context import add_command, parse_id, print_json, review_client, show
from ftreview.cli.decisions import reviewer
from ftreview.client import knowledge_state_name
from ftreview.client.names import KNOWLEDGE_STATE_BY_NAME
from ftreview.core.wire import timestamp_ns
from ftreview.report import number, one_line, optional, table, trained_json
from ftreview.report.shapes import JsonObject
from ftreview.v1 import review_pb2


def forget_line(ts: int, answer: review_pb2.ForgetResponse, was_live: bool = True) -> str:
    """`forgot 1772…007 (retracted; trainer told, consolidation job ft-12)`; for a fact
    that was not live (`was_live` False), what it is and why."""
    entry = answer.entry
    if not was_live:
        state = knowledge_state_name(entry.state)
        return f"{ts} was {state} already, nothing changed: {one_line(entry.reason, 160)}"
    if answer.delivery_error:
        told = f"the trainer was not told: {answer.delivery_error}; the next send tells it"
    elif answer.job_id:
        told = f"trainer told, consolidation job {answer.job_id}"
    elif not entry.retraction_delivered:
        told = "the trainer is not told yet: the next send tells it"
    elif "could not remove" in entry.reason or "cannot be told" in entry.reason:
        told = entry.reason.rsplit("; ", 1)[-1]
    else:
        told = "trainer told"
    return f"forgot {ts} (retracted; {told})"


def trained_entry_json(entry: review_pb2.TrainedEntry) -> JsonObject:
    """`trained_json`'s keys, and what the fact is worth now."""
    shape = trained_json(entry)
    superseded_by = timestamp_ns(entry.superseded_by) if entry.HasField("superseded_by") else 0
    shape.update(
        state=knowledge_state_name(entry.state),
        superseded_by=superseded_by or None,
        reason=entry.reason,
        retraction_delivered=entry.retraction_delivered,
        comes_back=entry.comes_back if entry.HasField("comes_back") else None,
        checked_by_job=entry.checked_by_job,
        content=entry.content,
    )
    return shape


def before_after(before: float | None, after: float | None) -> str:
    if before is None and after is None:
        return "-"
    return f"{number(before)} → {number(after) if after is not None else '(not yet)'}"


def comes_back(entry: review_pb2.TrainedEntry) -> str:
    """`yes · job-2`, `no · ft-12`, or `—` when no job checked it."""
    if not entry.HasField("comes_back"):
        return "—"
    said = "yes" if entry.comes_back else "no"
    return f"{said} · {entry.checked_by_job}" if entry.checked_by_job else said


def ledger_table(entries: Sequence[review_pb2.TrainedEntry]) -> Table:
    return table(
        ["ID", "STATE", "COMES BACK", "DIVERGENCE", "REPLY"],
        [
            [
                str(timestamp_ns(e.timestamp)),
                knowledge_state_name(e.state),
                comes_back(e),
                before_after(optional(e, "divergence_before"), optional(e, "divergence_after")),
                one_line(e.content, 200) or "-",
            ]
            for e in entries
        ],
    )


def cmd_trained(args: argparse.Namespace) -> int:
    with review_client(args) as client:
        entries = client.list_trained()
    if args.state:
        entries = [e for e in entries if knowledge_state_name(e.state) in args.state]
    if args.json:
        print_json({"trained": [trained_entry_json(e) for e in entries]})
    elif entries:
        show(ledger_table(entries))
        for e in entries:
            if e.reason:
                told = "" if e.retraction_delivered else " (not told yet: the next send tells it)"
                print(f"{timestamp_ns(e.timestamp)} {one_line(e.reason, 160)}{told}")
    else:
        print("nothing trained yet" if not args.state else "no trained fact in that state")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    ts = parse_id(args.id)
    with review_client(args) as client:
        before = [e for e in client.list_trained() if timestamp_ns(e.timestamp) == ts]
        answer = client.forget(ts, reason=args.reason, reviewer=reviewer(args))
    was_live = not before or before[0].state in (
        review_pb2.KNOWLEDGE_STATE_LIVE,
        review_pb2.KNOWLEDGE_STATE_UNSPECIFIED,
    )
    if args.json:
        print_json(
            {
                "timestamp_ns": ts,
                "job_id": answer.job_id,
                "delivery_error": answer.delivery_error,
                "entry": trained_entry_json(answer.entry),
            }
        )
    else:
        print(forget_line(ts, answer, was_live))
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands,
        "forget",
        cmd_forget,
        "take a trained fact back: retract it, and tell the fine-tuning endpoint",
    )
    p.add_argument("id", metavar="ID", help="the trained reply (ID of `ftreview trained`)")
    p.add_argument("--reason", default="", metavar="TEXT", help="why, kept with the entry")
    p.add_argument(
        "--reviewer", metavar="NAME", help="who forgets it (default: FTREVIEW_REVIEWER or login)"
    )

    p = add_command(commands, "trained", cmd_trained, "list the trained ledger")
    p.add_argument(
        "--state", action="append", choices=sorted(KNOWLEDGE_STATE_BY_NAME), help="only these"
    )
