"""The `ftreview` command: global flags, the commands by group, and the one error boundary.

Invariants:
- a user sees one line on stderr and a non-zero exit for any failure, never a traceback
  (`main` catches the typed client errors at one place; `FTREVIEW_DEBUG=1` re-raises). Exit
  codes: 1 the request failed, 2 bad usage or a bad input file, 3 a service is not running
  (the message names it and the command that starts it), 130 interrupted;
- the global flags work before or after the command (`ftreview --home D demo` and
  `ftreview demo --home D` are the same);
- `--json` output is built in `ftreview.report` only and is documented in the README;
- the CLI talks to the Review only (`--review`); it imports no service package, and Textual
  only inside the commands that open the review screen.

Commands by group: `serve` (serve, demo, review), `scoring` (score, stats), `following`
(follow), `watch`, `decisions` (candidates, approve, reject, undo, alternate), `shipping`
(send, export, trained), `knowledge` (forget), `training` (jobs, ask), `config` (threshold).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ftreview.auth import TLS_CA_ENV, TOKEN_HINT, SecurityConfigError
from ftreview.cli import (
    config,
    decisions,
    following,
    knowledge,
    scoring,
    serve,
    shipping,
    training,
    watch,
)
from ftreview.cli.context import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUNNING,
    EXIT_USAGE,
    GLOBAL_FLAGS,
    UsageError,
    fill_global_defaults,
)
from ftreview.errors import FtreviewError, NotFound, Unauthenticated, Unavailable
from ftreview.local_services import ServiceStartError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftreview",
        description="Find the replies an agent leaned on memories for, review them, "
        "and send them to fine-tuning.",
        parents=[GLOBAL_FLAGS],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (
        serve,
        scoring,
        following,
        decisions,
        shipping,
        knowledge,
        training,
        config,
        watch,
    ):
        group.add_commands(commands)
    return parser


def _not_running_hint(error: Unavailable) -> str:
    what = f"the {error.service} service" if error.service == "Review" else f"the {error.service}"
    where = f" at {error.address}" if error.address else ""
    text = error.message.lower()
    # A server is there, but the two ends disagree about TLS: say so, not "not running".
    if "handshake" in text or "ssl" in text:
        return (
            f"TLS with {what}{where} failed; if it serves plain text drop --tls-ca/"
            f"{TLS_CA_ENV}, else check that the CA signed a certificate for this address "
            f"({error.message})"
        )
    if "socket closed" in text:
        return (
            f"{what}{where} closed the connection; if it serves TLS, pass --tls-ca or set "
            f"{TLS_CA_ENV}"
        )
    return f"{what} is not running{where}; start it with `ftreview serve`"


def _refused_line(error: Unauthenticated) -> str:
    who = error.service.lower() or "the service"
    where = f" at {error.address}" if error.address else ""
    return f"{who}{where} refused the call: missing or wrong bearer token ({TOKEN_HINT})"


def _error_line(error: FtreviewError) -> str:
    if isinstance(error, NotFound):
        return f"not found: {error}"
    who = f"{error.service}: " if error.service else ""
    return f"{who}{error}"


def _fail(line: str, code: int) -> int:
    print(f"ftreview: {line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fill_global_defaults(args)
    debug = os.environ.get("FTREVIEW_DEBUG") == "1"
    try:
        code: int = args.handler(args)
        # Flushed here, not at exit: a reader that left (`| head`) is then a
        # BrokenPipeError caught below instead of a complaint from the interpreter.
        sys.stdout.flush()
        return code
    except (UsageError, SecurityConfigError) as error:
        return _fail(str(error), EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (`| head`) left: not an error of ours. Point stdout at /dev/null so
        # the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if debug:
            raise
        if isinstance(error, Unauthenticated):
            return _fail(_refused_line(error), EXIT_FAILED)
        if isinstance(error, Unavailable) and error.unreachable:
            return _fail(_not_running_hint(error), EXIT_NOT_RUNNING)
        if isinstance(error, FtreviewError):
            return _fail(_error_line(error), EXIT_FAILED)
        if isinstance(error, ServiceStartError):
            return _fail(str(error), EXIT_FAILED)
        return _fail(
            f"unexpected error: {error!r} (FTREVIEW_DEBUG=1 shows the traceback)", EXIT_FAILED
        )
