"""Running the Scorer, the trainer and the Review service as child processes (`serve`,
`demo`).

Invariants:
- `start()` returns only when every service answers: the Scorer and the Review SERVING
  through the standard gRPC health service, the trainer on its jobs route, so a caller's
  first request cannot race the start-up; until then a child that exits is reported with
  the tail of its log instead of a hang;
- the Scorer starts first; the trainer is given the Scorer's real address (to load what it
  promotes) and the Review both the Scorer's and the trainer's endpoint, as the URL it sends
  to while the config names none (port 0 is resolved from each "serving on HOST:PORT" log
  line); given `scorer_address`, no Scorer is started and the one there must answer SERVING;
- the Scorer serves the adapter the trainer last promoted (`<home>/adapters/current.json`),
  so a restart keeps what was learned;
- `stop()` ends them all: SIGTERM (the servers drain), then SIGKILL after a grace period,
  Review first so that it never calls a service that is already gone. On Linux the children
  also get SIGTERM if this process dies without stopping them, so no orphan keeps a port;
- TLS and token settings reach the children alike: the gRPC services serve with the same
  certificate, key and token, the trainer requires the same token, and the Review trusts
  the Scorer through `tls_ca` (else the certificate itself, which is right for a
  self-signed one). A token from `$FTREVIEW_TOKEN` reaches the
  children through their environment.
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from ftreview.auth import channel_credentials, resolve_token
from ftreview.client import ReviewClient, ScorerClient
from ftreview.core.defaults import REVIEW_ADDRESS, SCORER_ADDRESS, TRAINER_ADDRESS, default_home
from ftreview.core.parent import child_environment
from ftreview.errors import FtreviewError

TRAINER_PATH = "/v1/ftreview"

_SERVING_LINE = re.compile(r"serving on (\[[0-9a-fA-F:]+\]|[\w.\-]+):(\d+)", re.IGNORECASE)
_LOG_TAIL_LINES = 40


class ServiceStartError(RuntimeError):
    """A service did not come up; the message says which and ends with its last log lines."""


@dataclass
class ServiceOptions:
    scorer_listen: str = SCORER_ADDRESS
    review_listen: str = REVIEW_ADDRESS
    # None: the trainer's default address, or a free port when the other two take free ports.
    trainer_listen: str | None = None
    # Start the trainer (the fine-tuning endpoint) beside the other two.
    trainer: bool = True
    # A Scorer already running there is used (checked for SERVING) instead of starting one.
    scorer_address: str | None = None
    home: str | None = None
    backend: str | None = None
    backend_urls: Sequence[str] = ()
    model: str | None = None
    # TLS for both services (both or neither), and the CA clients trust (default: the cert).
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    # Passed to both services as --token-file; None: they read $FTREVIEW_TOKEN, if set.
    token_file: str | None = None
    startup_timeout_s: float = 300.0
    stop_timeout_s: float = 30.0
    # Called with (service name, log line) for every line a child logs; None: keep quiet.
    echo: Callable[[str, str], None] | None = None


@dataclass
class ChildService:
    """One service process, its log drained on a thread (a full pipe would stall it)."""

    name: str
    argv: list[str]
    echo: Callable[[str, str], None] | None
    process: subprocess.Popen[str] | None = None
    address: str | None = None
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_LOG_TAIL_LINES)
    )
    _address_known: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Its own session: a terminal's Ctrl-C reaches us, and we stop it in order.
            start_new_session=True,
            # The child stops when we die (`core.parent`; no preexec_fn, see there).
            env=child_environment(),
        )
        assert self.process.stdout is not None
        threading.Thread(
            target=self._drain, args=(self.process.stdout,), daemon=True, name=self.name
        ).start()

    def _drain(self, stream: IO[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            self.tail.append(line)
            if self.address is None:
                match = _SERVING_LINE.search(line)
                if match:
                    self.address = f"{match.group(1)}:{match.group(2)}"
                    self._address_known.set()
            if self.echo is not None:
                self.echo(self.name, line)
        self._address_known.set()  # exited: wake a waiter so it sees the exit

    def wait_address(self, deadline: float) -> str:
        while True:
            if self._address_known.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                if self.address is not None:
                    return self.address
            self.check_alive()
            if time.monotonic() >= deadline:
                raise ServiceStartError(self._failure("did not report its address in time"))

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceStartError(self._failure(f"exited with status {self.process.returncode}"))

    def _failure(self, what: str) -> str:
        log = "\n".join(f"  {line}" for line in self.tail) or "  (no output)"
        return f"the {self.name} {what}; its last log lines:\n{log}"

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, timeout_s: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def resolve_home(home: str | None) -> Path:
    """The folder the services keep their state in, as they resolve it themselves."""
    return Path(home).expanduser() if home else default_home()


class LocalServices:
    """The services as children of this process. Use as a context manager."""

    def __init__(self, options: ServiceOptions, python: str = sys.executable) -> None:
        self.options = options
        self.home = resolve_home(options.home)
        scorer_argv = [python, "-m", "scorer_service", "--listen", options.scorer_listen]
        if not options.backend or options.backend == "local":
            scorer_argv += ["--adapter-dir", str(self.home / "adapters")]
        if options.backend:
            scorer_argv += ["--backend", options.backend]
        for url in options.backend_urls:
            scorer_argv += ["--backend-url", url]
        if options.model:
            scorer_argv += ["--model", options.model]
        scorer_argv += self._security_flags()
        self.scorer = ChildService("Scorer", scorer_argv, options.echo)
        self.trainer = ChildService("trainer", [], options.echo)
        self.review = ChildService("Review service", [], options.echo)

    @property
    def trusted_ca(self) -> str | None:
        """The file clients trust for TLS: `tls_ca`, else the (self-signed) certificate."""
        return self.options.tls_ca or self.options.tls_cert

    def _security_flags(self) -> list[str]:
        flags: list[str] = []
        if self.options.tls_cert:
            flags += ["--tls-cert", self.options.tls_cert]
        if self.options.tls_key:
            flags += ["--tls-key", self.options.tls_key]
        if self.options.token_file:
            flags += ["--token-file", self.options.token_file]
        return flags

    @property
    def scorer_address(self) -> str:
        assert self.scorer.address is not None
        return self.scorer.address

    @property
    def review_address(self) -> str:
        assert self.review.address is not None
        return self.review.address

    @property
    def finetune_url(self) -> str:
        """The trainer's fine-tuning endpoint ("" when no trainer was started)."""
        return f"http://{self.trainer.address}{TRAINER_PATH}" if self.trainer.address else ""

    def _children(self) -> list[ChildService]:
        """Stopping order: the Review first, the Scorer last."""
        return [self.review, self.trainer, self.scorer]

    def __enter__(self) -> LocalServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        deadline = time.monotonic() + self.options.startup_timeout_s
        try:
            if self.options.scorer_address:
                scorer_address = self.scorer.address = self.options.scorer_address
            else:
                self.scorer.start()
                scorer_address = self.scorer.wait_address(deadline)
            python = self.scorer.argv[0]
            if self.options.trainer:
                self.trainer.argv = [
                    python, "-m", "trainer_service",
                    "--listen", self._trainer_listen(), "--home", str(self.home),
                    "--scorer", scorer_address, *self._trainer_flags(),
                ]  # fmt: skip
                if self.options.model:
                    self.trainer.argv += ["--model", self.options.model]
                self.trainer.start()
                self.trainer.wait_address(deadline)
            review_argv = [
                python, "-m", "review_service",
                "--listen", self.options.review_listen, "--scorer", scorer_address,
                "--home", str(self.home),
            ]  # fmt: skip
            if self.finetune_url:
                review_argv += ["--default-finetune-url", self.finetune_url]
            review_argv += self._security_flags()
            if self.options.tls_cert and self.trusted_ca:
                review_argv += ["--scorer-tls-ca", self.trusted_ca]
            self.review.argv = review_argv
            self.review.start()
            self.review.wait_address(deadline)
            self._wait_serving(self.scorer, deadline)
            if self.options.trainer:
                self._wait_trainer(deadline)
            self._wait_serving(self.review, deadline)
        except BaseException:
            self.stop()
            raise

    def _trainer_listen(self) -> str:
        if self.options.trainer_listen:
            return self.options.trainer_listen
        free = all(
            a.endswith(":0") for a in (self.options.scorer_listen, self.options.review_listen)
        )
        return "127.0.0.1:0" if free else TRAINER_ADDRESS

    def _trainer_flags(self) -> list[str]:
        """How the trainer reaches the Scorer, and its endpoint's token (plain HTTP on
        loopback)."""
        flags: list[str] = []
        if self.options.tls_cert and self.trusted_ca:
            flags += ["--scorer-ca", self.trusted_ca]
        if self.options.token_file:
            # The same token guards its endpoint and reaches the Scorer.
            flags += ["--token-file", self.options.token_file]
            flags += ["--scorer-token-file", self.options.token_file]
        return flags

    def _wait_trainer(self, deadline: float) -> None:
        token = resolve_token(self.options.token_file)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while True:
            self.trainer.check_alive()
            try:
                jobs = httpx.get(f"{self.finetune_url}/jobs", timeout=2.0, headers=headers)
                if jobs.status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            if time.monotonic() >= deadline:
                raise ServiceStartError(self.trainer._failure("did not answer in time"))
            time.sleep(0.2)

    def _wait_serving(self, child: ChildService, deadline: float) -> None:
        assert child.address is not None
        client: ScorerClient | ReviewClient
        # Health needs no token; over TLS it needs the CA.
        credentials = channel_credentials(self.trusted_ca) if self.options.tls_cert else None
        if child is self.scorer:
            client = ScorerClient(child.address, timeout=2.0, credentials=credentials)
        else:
            client = ReviewClient(child.address, timeout=2.0, credentials=credentials)
        with client:
            while True:
                child.check_alive()
                try:
                    if client.health() == "SERVING":
                        return
                except FtreviewError:
                    pass  # not listening yet
                if time.monotonic() >= deadline:
                    raise ServiceStartError(child._failure("did not report SERVING in time"))
                time.sleep(0.1)

    def wait(self) -> ChildService:
        """Blocks until one child exits; returns it (the other is still running)."""
        while True:
            for child in self._children():
                if child.process is not None and child.process.poll() is not None:
                    return child
            time.sleep(0.2)

    def stop(self) -> None:
        for child in self._children():
            child.terminate()
            child.wait_or_kill(self.options.stop_timeout_s)
