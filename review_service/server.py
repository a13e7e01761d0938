"""Wiring and lifecycle of the Review server.

Invariants:
- `create_server` builds everything and binds the port but serves nothing yet, so tests
  and embedders bind port 0 and learn the real port before any client connects;
- stopping drains: health turns NOT_SERVING, candidate watches end cleanly, calls in flight
  get `drain_seconds` to finish, background scoring is cancelled (nothing half-written: each
  change is one transaction), and the database is closed last;
- loopback by default; message sizes are bounded both ways; TLS and a bearer token when
  configured (`ftreview.auth`: health and reflection stay open), for this server and for
  its own calls to the Scorer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from ftreview.activity_hub import ActivityHub
from ftreview.activity_service import ActivitiesServicer
from ftreview.auth import ServerSecurity, channel_credentials
from ftreview.v1 import activity_pb2, activity_pb2_grpc, review_pb2, review_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from .config import CONFIG_NAME, ConfigFile
from .convert import WireConversations
from .finetune_http import HttpFinetuneEndpoint
from .review import Review
from .scorer_grpc import GrpcScorer
from .servicer import ReviewServicer
from .store_sqlite import SqliteStore

log = logging.getLogger("review_service")

DEFAULT_LISTEN = "127.0.0.1:50052"
DEFAULT_SCORER = "127.0.0.1:50051"
DATABASE_NAME = "review.sqlite3"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
REVIEW_SERVICE = review_pb2.DESCRIPTOR.services_by_name["Review"].full_name
ACTIVITIES_SERVICE = activity_pb2.DESCRIPTOR.services_by_name["Activities"].full_name


def default_home() -> Path:
    return Path(os.environ.get("FTREVIEW_HOME") or Path.home() / ".consciousness")


@dataclass(frozen=True)
class ReviewConfig:
    listen: str = DEFAULT_LISTEN
    scorer: str = DEFAULT_SCORER
    home: Path = field(default_factory=default_home)
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # How long Ingest waits to reach the Scorer before answering UNAVAILABLE.
    scorer_ready_timeout: float = 3.0
    drain_seconds: float = 5.0
    # TLS for this server: a PEM certificate and its key, both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None
    # The bearer token every call to this server must carry; None: open.
    token: str | None = None
    # Calling the Scorer: the CA (or self-signed certificate) to trust, None: plain text;
    # and the token to send, None: none.
    scorer_tls_ca: str | None = None
    scorer_token: str | None = None

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME

    @property
    def database_path(self) -> Path:
        return self.home / DATABASE_NAME


class ReviewServer:
    """A started-or-not Review server: `start`, `stop`, `wait_for_termination`."""

    def __init__(self, server: grpc.aio.Server, review: Review, health: HealthServicer,
                 drain_seconds: float) -> None:  # fmt: skip
        self.grpc_server = server
        self.review = review
        self._health = health
        self._drain_seconds = drain_seconds
        self._stopped = False

    async def start(self) -> None:
        await self.grpc_server.start()
        for name in ("", REVIEW_SERVICE, ACTIVITIES_SERVICE):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self._health.enter_graceful_shutdown()
        self.review.feed.close()
        await self.grpc_server.stop(self._drain_seconds if grace is None else grace)
        await self.review.close()

    async def wait_for_termination(self) -> None:
        await self.grpc_server.wait_for_termination()


def create_server(config: ReviewConfig) -> tuple[ReviewServer, int]:
    """Build the server and bind `config.listen`; call from the loop that will run it."""
    security = ServerSecurity(config.tls_cert, config.tls_key, config.token)
    scorer_credentials = channel_credentials(config.scorer_tls_ca)
    config.home.mkdir(parents=True, exist_ok=True)
    config_file = ConfigFile(config.config_path)
    config_file.load()  # an unreadable config stops the start, with line and column
    store = SqliteStore(config.database_path)
    hub = ActivityHub()
    review = Review(
        store,
        GrpcScorer(
            config.scorer,
            config.max_message_bytes,
            credentials=scorer_credentials,
            token=config.scorer_token,
        ),
        HttpFinetuneEndpoint(),
        config_file,
        hub,
        codec=WireConversations(),
        scorer_ready_timeout=config.scorer_ready_timeout,
    )
    server = grpc.aio.server(
        interceptors=security.interceptors(),
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    review_pb2_grpc.add_ReviewServicer_to_server(ReviewServicer(review), server)
    activity_pb2_grpc.add_ActivitiesServicer_to_server(ActivitiesServicer(hub), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            REVIEW_SERVICE,
            ACTIVITIES_SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    try:
        port = security.bind(server, config.listen, log)
    except RuntimeError as error:
        store.close()
        raise OSError(f"cannot listen on {config.listen}: {error}") from error
    if port == 0:
        store.close()
        raise OSError(f"cannot listen on {config.listen}")
    return ReviewServer(server, review, health, config.drain_seconds), port


def _host(listen: str) -> str:
    return listen.rsplit(":", 1)[0] if ":" in listen else listen


async def serve(config: ReviewConfig) -> None:
    """Serve until SIGTERM or SIGINT, then drain."""
    server, port = create_server(config)
    await server.start()
    log.info(
        "review serving on %s:%d (%s%s)",
        _host(config.listen),
        port,
        "TLS" if config.tls_cert else "plain text",
        ", bearer token required" if config.token else "",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("review draining (up to %gs)", config.drain_seconds)
    await server.stop()
    log.info("review stopped")
