"""`ftreview candidates`, `approve`, `reject`, `undo`, `alternate`: look at candidates and
decide on them.

Invariant: a decision command prints (or, with `--json`, lists) exactly the candidates the
Review changed, as it returned them, so a script never re-reads to learn the outcome.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ftreview.cli.context import STATUSES, add_command, parse_id, print_json, review_client, show
from ftreview.client import CandidateStatus, ReviewClient, status_name
from ftreview.core.wire import timestamp_ns
from ftreview.report import candidate_json, candidate_table, stats_text


def cmd_candidates(args: argparse.Namespace) -> int:
    statuses: list[CandidateStatus] = list(args.status or [])
    with review_client(args) as client:
        candidates = client.list_candidates(statuses, order=args.order)
        stats = None if candidates or args.json else client.get_stats()
    if args.json:
        print_json({"candidates": [candidate_json(c) for c in candidates]})
    elif candidates:
        show(candidate_table(candidates))
    elif stats is not None:
        print("no candidates\n" + stats_text(stats))
    return 0


def _decision(
    args: argparse.Namespace, verb: str, call: Callable[[ReviewClient, list[int]], list[Any]]
) -> int:
    ids = [parse_id(i) for i in args.ids]
    with review_client(args) as client:
        changed = call(client, ids)
    if args.json:
        print_json({"candidates": [candidate_json(c) for c in changed]})
    else:
        for c in changed:
            print(f"{timestamp_ns(c.timestamp)}  {verb}  ({status_name(c.status)})")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decision(args, "approved", lambda c, ids: c.approve(ids))


def cmd_reject(args: argparse.Namespace) -> int:
    return _decision(args, "rejected", lambda c, ids: c.reject(ids, reason=args.reason))


def cmd_undo(args: argparse.Namespace) -> int:
    return _decision(args, "back to pending", lambda c, ids: c.clear_decision(ids))


def cmd_alternate(args: argparse.Namespace) -> int:
    timestamp = parse_id(args.id)
    with review_client(args) as client:
        candidate = client.generate_alternate(timestamp, regenerate=args.regenerate)
    if args.json:
        print_json({"candidate": candidate_json(candidate)})
    else:
        print(f"reply:     {candidate.content}")
        print(f"alternate: {candidate.alternate}")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands, "candidates", cmd_candidates, "list the candidates, highest divergence first"
    )
    p.add_argument("--status", action="append", choices=STATUSES, help="only these (repeatable)")
    p.add_argument("--order", choices=["divergence", "time"], default="divergence")

    p = add_command(commands, "approve", cmd_approve, "approve candidates for fine-tuning")
    p.add_argument("ids", nargs="+", metavar="ID")
    p = add_command(commands, "reject", cmd_reject, "reject candidates")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--reason", default="")
    p = add_command(commands, "undo", cmd_undo, "put decided candidates back to pending")
    p.add_argument("ids", nargs="+", metavar="ID")

    p = add_command(
        commands, "alternate", cmd_alternate, "show what the model says without its memories"
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--regenerate", action="store_true")
