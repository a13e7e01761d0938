"""`ftreview send`, `export`, `trained`: approved replies leave for fine-tuning, and the
trained ledger says which did.

Invariant: `send` exits non-zero when any reply was not accepted, and names each with the
endpoint's reason; `export` writes the JSONL exactly as the Review returned it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ftreview.cli.context import (
    EXIT_FAILED,
    STATUSES,
    add_command,
    parse_id,
    print_json,
    review_client,
    show,
)
from ftreview.client import CandidateStatus
from ftreview.core.wire import timestamp_ns
from ftreview.report import send_json, trained_json, trained_table


def cmd_send(args: argparse.Namespace) -> int:
    ids = [parse_id(i) for i in args.ids]
    with review_client(args) as client:
        reply = client.send(ids)
    if args.json:
        print_json(send_json(reply))
    else:
        print(f"sent {len(reply.accepted)} (job {reply.job_id or '-'})")
        for failure in reply.failed:
            print(f"  not sent {timestamp_ns(failure.timestamp)}: {failure.reason}")
    return EXIT_FAILED if reply.failed else 0


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


def cmd_trained(args: argparse.Namespace) -> int:
    with review_client(args) as client:
        entries = client.list_trained()
    if args.json:
        print_json({"trained": [trained_json(e) for e in entries]})
    elif entries:
        show(trained_table(entries))
    else:
        print("nothing trained yet")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands, "send", cmd_send, "send the approved candidates to the fine-tuning endpoint"
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="only these (default: every approved)")

    p = add_command(commands, "export", cmd_export, "write training examples as JSONL")
    p.add_argument("--format", choices=["openai", "trl"], default="openai")
    p.add_argument("-o", "--output", metavar="FILE", help="default: stdout")
    p.add_argument("--status", action="append", choices=STATUSES, help="default: approved")
    p.add_argument("--mark-trained", action="store_true", help="record them in the trained ledger")
    p.add_argument("ids", nargs="*", metavar="ID")

    add_command(commands, "trained", cmd_trained, "list the trained ledger")
