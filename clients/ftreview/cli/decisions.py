"""`ftreview candidates`, `approve`, `reject`, `undo`, `alternate`: look at candidates and
decide on them, one by one or in bulk.

Invariants:
- a decision command prints (or, with `--json`, lists) exactly the candidates the Review
  changed, as it returned them, so a script never re-reads to learn the outcome;
- a bulk decision (`--all`, `--below X`) picks the pending candidates on the Review's side
  (server-side filters), lists them before it asks, and goes ahead only after a "yes":
  `--yes`, or the answer to the question on a terminal; without a terminal and without
  `--yes` it changes nothing;
- every decision names its reviewer (`--reviewer`, else `FTREVIEW_REVIEWER`, else the
  login name), and the Review keeps it in the decision history (`ftreview decisions`);
- rejected candidates that leave the list (the Review keeps the 10 most recent rejections)
  are said once per command, with how many; their decisions stay in the history;
- a candidate that would replace a trained fact or that other undecided candidates say
  otherwise to is marked in the list (» supersedes, × conflicts; conflicting rows next to
  each other, a line each under the table); approving one that conflicts is refused (exit
  2, one line naming the others and what differs) unless `--yes`, and with it the others
  are rejected "superseded by <ID>" (`ftreview.cli.conflicts`; a bulk approval in a
  terminal lists the marked rows before it asks).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from ftreview.cli.conflicts import losers_of, reject_losers
from ftreview.cli.context import (
    STATUSES,
    UsageError,
    add_command,
    ask_yes,
    output_width,
    parse_id,
    print_json,
    review_client,
    say,
    show,
)
from ftreview.client import CandidateStatus, ReviewClient, grounding_name, status_name
from ftreview.client.names import GROUNDING_BY_NAME
from ftreview.core.wire import timestamp_ns
from ftreview.report import (
    candidate_json,
    candidate_table,
    change_notes,
    grounding_notes,
    send_notes,
    stats_text,
)
from ftreview.report.shapes import decision_json
from ftreview.report.tables import decisions_table, fit

GROUNDINGS = list(GROUNDING_BY_NAME)

Decide = Callable[[ReviewClient, list[int]], list[Any]]


def cmd_candidates(args: argparse.Namespace) -> int:
    statuses: list[CandidateStatus] = list(args.status or [])
    filtered = bool(
        args.search
        or args.conversation
        or args.min is not None
        or args.max is not None
        or args.grounding
    )
    with review_client(args) as client:
        candidates = client.list_candidates(
            statuses,
            order="time" if args.order == "conversation" else args.order,
            conversation_id=args.conversation or "",
            search=args.search or "",
            min_divergence=args.min,
            max_divergence=args.max,
        )
        stats = None if candidates or args.json or filtered else client.get_stats()
    if args.order == "conversation":
        # By conversation, each in reply order (as the review screen's `o` sorts them).
        candidates.sort(key=lambda c: (c.conversation_id, timestamp_ns(c.timestamp)))
    if args.grounding:
        # Client-side: the Review computes grounding as it answers (it is not stored), and the
        # list is already short; a server-side filter would compute the same for each row.
        candidates = [c for c in candidates if grounding_name(c.grounding) in args.grounding]
    if args.json:
        print_json({"candidates": [candidate_json(c) for c in candidates]})
    elif candidates:
        width = output_width()
        show(candidate_table(candidates, width))
        notes = grounding_notes(candidates) + change_notes(candidates, width)
        for line in notes + send_notes(candidates):
            print(line)
    elif stats is not None:
        print("no candidates\n" + stats_text(stats))
    else:
        print("no candidates match")
    return 0


def confirm(question: str, args: argparse.Namespace) -> bool:
    """True after `--yes`, or a "y" typed at the terminal; without a terminal (and without
    `--yes`) a UsageError that says to add --yes."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: asked without a terminal; add --yes")
    if ask_yes(question):
        return True
    say("nothing changed")
    return False


def _bulk_ids(client: ReviewClient, args: argparse.Namespace, verb: str) -> list[int] | None:
    """The pending candidates a bulk decision names, after the confirmation; None when
    the command names ids instead."""
    below: float | None = getattr(args, "below", None)
    if not args.all and below is None:
        if not args.ids:
            raise UsageError(f"name the candidates to {verb}: ID..., --all or --below X")
        if args.conversation:
            raise UsageError("--conversation goes with --all or --below")
        return None
    if args.ids:
        raise UsageError("give ids, or --all/--below, not both")
    if args.all and below is not None:
        raise UsageError("give --all or --below, not both")
    found = client.list_candidates(
        ["pending"], conversation_id=args.conversation or "", max_divergence=below
    )
    where = f" of conversation {args.conversation}" if args.conversation else ""
    which = f" below {below:g}" if below is not None else ""
    noun = "candidate" if len(found) == 1 else "candidates"
    if not found:
        say(f"no pending candidates{which}{where}")
        return []
    if not args.yes and sys.stdin.isatty():  # what a "yes" would change, before the question
        err = Console(file=sys.stderr, width=output_width(), soft_wrap=False)
        err.print(fit(candidate_table(found, 0), err.width))
        for line in change_notes(found, err.width):
            say(line)
    if not confirm(f"{verb} {len(found)} pending {noun}{which}{where}?", args):
        return []
    return [timestamp_ns(c.timestamp) for c in found]


def _decision(args: argparse.Namespace, verb: str, done: str, call: Decide) -> int:
    superseded: list[Any] = []
    with review_client(args) as client:
        bulk = _bulk_ids(client, args, verb) if hasattr(args, "all") else None
        ids = bulk if bulk is not None else [parse_id(i) for i in args.ids]
        if not ids:
            changed: list[Any] = []
            forgotten = 0
        else:
            losers = losers_of(client, ids, args) if verb == "approve" else {}
            kept_before = _rejected(client) if verb == "reject" else set()
            changed = call(client, ids)
            superseded = reject_losers(client, losers, reviewer(args))
            forgotten = len((kept_before | set(ids)) - _rejected(client)) if verb == "reject" else 0
    if args.json:
        print_json(
            {
                "candidates": [candidate_json(c) for c in changed],
                "count": len(changed),
                "forgotten": forgotten,
                "superseded": [candidate_json(c) for c in superseded],
            }
        )
    elif bulk:
        noun = "candidate" if len(changed) == 1 else "candidates"
        print(f"{done} {len(changed)} {noun}")
    else:
        for c in changed:
            print(f"{timestamp_ns(c.timestamp)}  {done}  ({status_name(c.status)})")
    if not args.json:
        for c in superseded:
            print(f"{timestamp_ns(c.timestamp)}  rejected  ({c.reject_reason})")
    if forgotten and not args.json:
        say(
            f"{forgotten} rejected candidate{'s' if forgotten != 1 else ''} left the list: "
            "the Review keeps the 10 most recent rejections (undo cannot bring them back)"
        )
    return 0


def _rejected(client: ReviewClient) -> set[int]:
    return {timestamp_ns(c.timestamp) for c in client.list_candidates(["rejected"])}


def reviewer(args: argparse.Namespace) -> str:
    """Who decides: `--reviewer`, else FTREVIEW_REVIEWER, else the login name."""
    named = getattr(args, "reviewer", None) or os.environ.get("FTREVIEW_REVIEWER", "")
    if named:
        return str(named)
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return ""


def cmd_approve(args: argparse.Namespace) -> int:
    who = reviewer(args)
    return _decision(
        args, "approve", "approved", lambda c, ids: c.approve(ids, reviewer=who, note=args.note)
    )


def cmd_reject(args: argparse.Namespace) -> int:
    who = reviewer(args)
    return _decision(
        args, "reject", "rejected", lambda c, ids: c.reject(ids, reason=args.reason, reviewer=who)
    )


def cmd_undo(args: argparse.Namespace) -> int:
    who = reviewer(args)
    return _decision(
        args, "undo", "back to pending", lambda c, ids: c.clear_decision(ids, reviewer=who)
    )


def cmd_decisions(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit <= 0:
        raise UsageError("--limit must be positive")
    with review_client(args) as client:
        history = client.list_decisions(limit=args.limit or 0)
    if args.json:
        print_json({"decisions": [decision_json(d) for d in history]})
    elif history:
        show(decisions_table(history))
    else:
        print("no decisions yet")
    return 0


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


def _bulk_flags(parser: argparse.ArgumentParser, below: bool) -> None:
    parser.add_argument("--all", action="store_true", help="every pending candidate")
    if below:
        parser.add_argument(
            "--below", type=float, metavar="X", help="every pending candidate with divergence < X"
        )
    parser.add_argument("--conversation", metavar="ID", help="with --all/--below: only this one")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask (needed without a terminal); approve: also reject the candidates "
        "it conflicts with, as superseded",
    )


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        commands, "candidates", cmd_candidates, "list the candidates, highest divergence first"
    )
    p.add_argument("--status", action="append", choices=STATUSES, help="only these (repeatable)")
    p.add_argument(
        "--order",
        choices=["divergence", "time", "conversation"],
        default="divergence",
        help="highest divergence first, newest first, or by conversation in reply order",
    )
    p.add_argument("--search", metavar="TEXT", help="only replies containing TEXT (any case)")
    p.add_argument("--conversation", metavar="ID", help="only this conversation's")
    p.add_argument("--min", type=float, metavar="X", help="only divergence >= X")
    p.add_argument("--max", type=float, metavar="X", help="only divergence < X")
    p.add_argument(
        "--grounding",
        action="append",
        choices=GROUNDINGS,
        help="only replies whose memory-driven words are this (repeatable)",
    )

    p = add_command(commands, "approve", cmd_approve, "approve candidates for fine-tuning")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--note", default="", help="why, kept in the decision history")
    _bulk_flags(p, below=False)
    p = add_command(commands, "reject", cmd_reject, "reject candidates")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--reason", default="")
    _bulk_flags(p, below=True)
    p = add_command(commands, "undo", cmd_undo, "put decided candidates back to pending")
    p.add_argument("ids", nargs="+", metavar="ID")
    for name in ("approve", "reject", "undo"):
        commands.choices[name].add_argument(
            "--reviewer", metavar="NAME", help="who decides (default: FTREVIEW_REVIEWER or login)"
        )
    p = add_command(
        commands, "decisions", cmd_decisions, "every decision made, with reason and reviewer"
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the N most recent")

    p = add_command(
        commands, "alternate", cmd_alternate, "show what the model says without its memories"
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--regenerate", action="store_true")
