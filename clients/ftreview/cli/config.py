"""`ftreview threshold`: show or change the candidate threshold the Review scores with.

Invariant: a change goes through the Review (which rewrites its config file keeping its
comments), never by editing the file here, so every client sees one value.
"""

from __future__ import annotations

import argparse

from ftreview.cli.context import UsageError, add_command, print_json, review_client
from ftreview.report import config_json


def cmd_threshold(args: argparse.Namespace) -> int:
    with review_client(args) as client:
        if args.value is None:
            config = client.get_config()
        elif args.value in ("up", "down"):
            config = client.set_threshold(steps=args.steps if args.value == "up" else -args.steps)
        else:
            try:
                value = float(args.value)
            except ValueError:
                raise UsageError(
                    f"threshold {args.value!r}: give a positive number, up or down"
                ) from None
            config = client.set_threshold(value)
    if args.json:
        print_json(config_json(config))
    else:
        print(f"threshold {config.threshold:g}  ({config.config_path})")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(commands, "threshold", cmd_threshold, "show or change the candidate threshold")
    p.add_argument("value", nargs="?", metavar="VALUE|up|down")
    p.add_argument("--steps", type=int, default=1, help="with up/down: how many x10 steps")
