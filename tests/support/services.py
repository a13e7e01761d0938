"""Services started by tests: one way to do it, built on `ftreview.local_services`.

The product starts its services with `LocalServices` (`ftreview serve`, `ftreview demo`):
each one is a `ChildService`, a child process whose log is read on a thread (so a full pipe
never stalls it) and whose last lines say why it failed. Tests start services through the
same code, in three shapes:

- `local_services(home)`: a Scorer and a Review service (the trainer if asked) exactly as
  `ftreview serve` starts them, on free ports of 127.0.0.1; returned once both answer
  SERVING;
- `ServiceProcess(argv, serves=...)`: any one command that logs or prints "NAME serving on
  ADDRESS" lines (one service, `ftreview serve`, an installed `ftreview-review`); `start()`
  returns once every name in `serves` has said where it serves, and fails with the
  command's last log lines when it exits or takes too long;
- `ReviewProcess(home, scorer_address)`: `python -m review_service` on a home of its own,
  which a test can stop (SIGTERM), kill (SIGKILL) and start again on the same port.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from ftreview.local_services import ChildService, LocalServices, ServiceOptions, ServiceStartError

FREE_PORT = "127.0.0.1:0"
# Loading the embedded model on a busy machine is the slow part of a start.
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0

SERVING = re.compile(r"\b(?P<name>scorer|review|trainer) serving on (?P<address>\S+)", re.I)
"""A service's own log line ("review serving on 127.0.0.1:PORT (plain text)") and the lines
`ftreview serve` prints ("trainer serving on http://127.0.0.1:PORT/v1/ftreview")."""


@contextlib.contextmanager
def local_services(
    home: Path,
    *,
    scorer_address: str | None = None,
    trainer: bool = False,
    **options: Any,
) -> Iterator[LocalServices]:
    """A Scorer (unless `scorer_address` names a running one) and a Review on `home`, as
    `ftreview serve` starts them, on free ports; no trainer unless asked. `options` are
    further `ServiceOptions` fields. Everything started is stopped on leaving."""
    settings = ServiceOptions(
        scorer_listen=FREE_PORT,
        review_listen=FREE_PORT,
        scorer_address=scorer_address,
        home=str(home),
        trainer=trainer,
        **options,
    )
    with LocalServices(settings) as services:
        yield services


def without_variables(argv: Sequence[str], *names: str) -> list[str]:
    """`argv` run with the environment variables `names` removed (through `env -u`): the
    child of a `ChildService` otherwise inherits this process's environment whole."""
    if not names:
        return list(argv)
    env = shutil.which("env")
    assert env is not None, "`env` is needed to start a child without some variables"
    removed = [flag for name in names for flag in ("-u", name)]
    return [env, *removed, *argv]


class ServiceProcess:
    """One command, run as a `ChildService`, that says where it serves.

    `addresses` maps each service name (`scorer`, `review`, `trainer`) to the address its
    first serving line gave. Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        argv: Sequence[str],
        serves: Sequence[str] = ("review",),
        *,
        name: str | None = None,
    ) -> None:
        if not serves:
            raise ValueError("name at least one service whose serving line to wait for")
        self.serves = tuple(service.lower() for service in serves)
        self.addresses: dict[str, str] = {}
        self._heard = threading.Condition()
        self.child = ChildService(name or " and ".join(self.serves), list(argv), self._hear)

    def _hear(self, _service: str, line: str) -> None:
        """Called on the child's log thread with every line it writes."""
        match = SERVING.search(line)
        if match is None:
            return
        with self._heard:
            # The trainer's own line goes on after its address ("...:8000; fine-tuning ...").
            address = match.group("address").rstrip(";,")
            self.addresses.setdefault(match.group("name").lower(), address)
            self._heard.notify_all()

    @property
    def process(self) -> subprocess.Popen[str]:
        """The running (or ended) child; an error before `start()`."""
        assert self.child.process is not None, "not started"
        return self.child.process

    @property
    def address(self) -> str:
        """Where the first service of `serves` serves."""
        return self.addresses[self.serves[0]]

    @property
    def log_tail(self) -> str:
        """The child's last log lines, for a failure message."""
        return "\n".join(self.child.tail)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> ServiceProcess:
        """Start the command; return once every service in `serves` said where it serves.
        Raises `ServiceStartError` (with the last log lines) when the command exits first
        or `timeout_s` passes; the command is stopped then."""
        self.child.start()
        try:
            self._wait_addresses(time.monotonic() + timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_addresses(self, deadline: float) -> None:
        with self._heard:
            while not set(self.serves) <= self.addresses.keys():
                self.child.check_alive()
                if time.monotonic() >= deadline:
                    missing = ", ".join(sorted(set(self.serves) - self.addresses.keys()))
                    raise ServiceStartError(
                        f"the {self.child.name} did not say where {missing} serves in time; "
                        f"its last log lines:\n{self.log_tail or '(no output)'}"
                    )
                self._heard.wait(timeout=0.2)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (a server drains its calls), SIGKILL after `timeout_s`; the exit status,
        or None when it never started."""
        self.child.terminate()
        return self.child.wait_or_kill(timeout_s)

    def kill(self) -> int | None:
        """SIGKILL at once (a crash); the exit status, or None when it never started."""
        if self.child.process is None:
            return None
        if self.child.process.poll() is None:
            self.child.process.kill()
        return self.child.process.wait(timeout=30)

    def __enter__(self) -> ServiceProcess:
        """Starts it, unless `start()` already did."""
        return self if self.child.process is not None else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def python_module(module: str, *args: str) -> list[str]:
    """The command line of `python -m MODULE ARGS` in this interpreter."""
    return [sys.executable, "-m", module, *args]


def port_of(address: str) -> int:
    """The port of "HOST:PORT" (an IPv6 host in brackets included)."""
    return int(address.rsplit(":", 1)[1])


def fresh_channel(address: str) -> grpc.aio.Channel:
    """A channel of its own to `address`. gRPC shares connections between channels to one
    address; after the server there was killed, a new channel would inherit the dead
    connection's back-off and fail with "connection refused" although a restarted server
    already listens on that port."""
    return grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


@dataclass
class ReviewProcess:
    """`python -m review_service --home HOME --scorer SCORER` on 127.0.0.1.

    The first start takes a port the system chooses; a later start (after `stop()` or
    `kill()`) takes the same port again, so a client that reconnects finds it there.
    """

    home: Path
    scorer_address: str
    port: int = 0
    service: ServiceProcess | None = None
    start_timeout_s: float = 60.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.home / "config.json5"

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return None if self.service is None else self.service.process

    def start(self) -> None:
        """Start it; return once it logged where it serves."""
        argv = python_module(
            "review_service",
            "--listen", f"127.0.0.1:{self.port}",
            "--scorer", self.scorer_address,
            "--home", str(self.home),
        )  # fmt: skip
        service = ServiceProcess(argv, serves=("review",), name="Review service")
        service.start(self.start_timeout_s)
        self.service = service
        self.port = port_of(service.address)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout_s`); the exit status, 0 for a clean
        drain, or None when it was not running."""
        service, self.service = self.service, None
        return None if service is None else service.stop(timeout_s)

    def kill(self) -> None:
        """SIGKILL: the process dies between any two instructions, as in a crash."""
        service, self.service = self.service, None
        if service is not None:
            service.kill()
