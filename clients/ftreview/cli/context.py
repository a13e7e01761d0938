"""What every `ftreview` command shares: its clients, its output streams, its usage errors.

Invariants:
- stdout carries data (tables, JSON), stderr carries notes and progress, so a pipe gets
  only what it asked for;
- TLS and the bearer token are resolved once per command (`--tls-ca`/`$FTREVIEW_TLS_CA`,
  `--token-file`/`$FTREVIEW_TOKEN`) and given to every client it makes, the review
  screen's too;
- a client talks to the Review only: its address is `--review`, else `$FTREVIEW_REVIEW_ADDR`,
  else the default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import grpc
from rich.console import Console, RenderableType
from rich.table import Table

from ftreview.auth import TLS_CA_ENV, TOKEN_ENV, resolve_channel_credentials, resolve_token
from ftreview.client import AsyncReviewClient, ReviewClient
from ftreview.core.defaults import DEFAULT_HOME, HOME_ENV
from ftreview.report.tables import fit

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

STATUSES = ("pending", "approved", "rejected", "sent")

# Off a terminal, tables keep one row per line however long it is (a log, `| grep`).
_PIPE_WIDTH = 240


class UsageError(Exception):
    """Bad arguments or input: exit 2 with the message."""


def print_json(value: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    json.dump(value, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def say(text: str) -> None:
    """A note for the person at the terminal (stderr: stdout stays data)."""
    print(text, file=sys.stderr)


def ask_yes(question: str) -> bool:
    """Asks at the terminal (stderr, stdin); only "y" or "yes" is a yes."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def output_width() -> int:
    """The width tables are drawn to: the terminal's, or `_PIPE_WIDTH` off a terminal."""
    if not sys.stdout.isatty():
        return _PIPE_WIDTH
    return Console(file=sys.stdout).width


def show(renderable: RenderableType) -> None:
    """A table (or any rich renderable) on stdout, as wide as the terminal, or unwrapped
    when stdout is not one."""
    width = None if sys.stdout.isatty() else _PIPE_WIDTH
    console = Console(file=sys.stdout, width=width, soft_wrap=False)
    if isinstance(renderable, Table):
        renderable = fit(renderable, console.width)
    console.print(renderable)


@dataclass(frozen=True)
class Connection:
    """How every client of one command connects: TLS credentials and the bearer token."""

    credentials: grpc.ChannelCredentials | None
    token: str | None


def connection(args: argparse.Namespace) -> Connection:
    found: Connection | None = getattr(args, "connection", None)
    if found is None:
        found = Connection(resolve_channel_credentials(args.tls_ca), resolve_token(args.token_file))
        args.connection = found
    return found


def review_client(args: argparse.Namespace) -> ReviewClient:
    c = connection(args)
    return ReviewClient(args.review, credentials=c.credentials, token=c.token)


def async_review_client(args: argparse.Namespace) -> AsyncReviewClient:
    c = connection(args)
    return AsyncReviewClient(args.review, credentials=c.credentials, token=c.token)


def parse_id(text: str) -> int:
    """A candidate id (the reply's timestamp in integer nanoseconds) from the command line."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a candidate id (the integer in the ID column of "
            "`ftreview candidates`)"
        ) from None
    if value <= 0:
        raise UsageError(f"{text!r} is not a candidate id (ids are positive)")
    return value


Handler = Callable[[argparse.Namespace], int]


def _global_flags() -> argparse.ArgumentParser:
    # SUPPRESS: a flag not given leaves no attribute, so one given before the subcommand is
    # not overwritten by the subcommand's own copy of the flag; `fill_global_defaults`
    # supplies the defaults after parsing.
    flags = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    flags.add_argument(
        "--review",
        metavar="ADDR",
        help="Review service address (env FTREVIEW_REVIEW_ADDR, default 127.0.0.1:50052)",
    )
    flags.add_argument(
        "--home",
        metavar="DIR",
        help="where the Review service keeps its config and database "
        f"(env {HOME_ENV}, default {DEFAULT_HOME})",
    )
    flags.add_argument(
        "--tls-ca",
        metavar="PATH",
        help="connect over TLS, trusting this PEM CA or self-signed certificate "
        f"(env {TLS_CA_ENV}; default: plain text)",
    )
    flags.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"send the bearer token in this file with every call (env {TOKEN_ENV} holds "
        "the token itself); with `serve` or `demo`, the services require it",
    )
    return flags


GLOBAL_FLAGS = _global_flags()


def fill_global_defaults(args: argparse.Namespace) -> None:
    """The defaults of the global flags that were not given, before or after the command."""
    for name in ("review", "tls_ca", "token_file"):
        if not hasattr(args, name):
            setattr(args, name, None)
    if not hasattr(args, "home"):
        args.home = os.environ.get(HOME_ENV) or None


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help: str,
    *,
    json: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand that also takes the global flags (`ftreview demo FILE --home DIR`)."""
    parser = commands.add_parser(name, help=help, description=help, parents=[GLOBAL_FLAGS])
    parser.set_defaults(handler=handler)
    if json:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser
