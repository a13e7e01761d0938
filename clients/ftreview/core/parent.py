"""A service started by `ftreview serve` stops when that parent dies.

The parent names itself in the child's environment (`child_environment`); the child, once
running, asks Linux to send it SIGTERM when the parent goes (`die_with_parent`). Done in
the child rather than in a `preexec_fn`: code run between fork and exec in a parent with
gRPC threads can abort the child (grpc's fork handlers), and a plain fork+exec that runs
no Python there is what `subprocess` does without one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PARENT_ENV = "FTREVIEW_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_environment() -> dict[str, str]:
    """This process's environment, naming this process as the parent to outlive."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """In a child started with `child_environment`: SIGTERM when the parent dies (Linux),
    or at once when it died already. A no-op elsewhere and for a service started by hand.
    The variable is taken out of the environment, so the service's own children do not
    inherit it."""
    expected = os.environ.pop(PARENT_ENV, "")
    if not expected.isdigit() or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(expected):  # gone before the request could be made
        os.kill(os.getpid(), signal.SIGTERM)
