"""The Review as a service of the shared lifecycle (`ftreview.core.server`).

Invariants:
- `create_server` builds everything and binds the port but serves nothing yet, so tests
  and embedders bind port 0 and learn the real port before any client connects;
- stopping drains: health turns NOT_SERVING, candidate watches end cleanly, calls in flight
  get `drain_seconds` to finish, background scoring is cancelled (nothing half-written: each
  change is one transaction), and the database is closed last;
- TLS and a bearer token when configured, for this server (`ftreview.core.security`) and
  for its own calls to the Scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from ftreview.core.activity_hub import ActivityHub
from ftreview.core.defaults import (
    CONFIG_NAME,
    MAX_MESSAGE_BYTES,
    REVIEW_ADDRESS,
    REVIEW_GRACE_SECONDS,
    SCORER_ADDRESS,
    default_home,
)
from ftreview.core.security import ServerSecurity, channel_credentials
from ftreview.core.server import ServerSettings, ServiceServer, serve_until_signalled
from ftreview.core.server import create_server as create_service_server
from ftreview.v1 import review_pb2, review_pb2_grpc

from review_service.adapters.finetune_http import FinetuneAuth, HttpFinetuneEndpoint
from review_service.adapters.job_http import JobFollower
from review_service.adapters.scorer_grpc import GrpcScorer
from review_service.adapters.scorer_wire import WireConversations
from review_service.adapters.store_sqlite import SqliteStore
from review_service.api.servicer import ReviewServicer
from review_service.app.config import ConfigFile, LearnConfig
from review_service.app.review import Review

DEFAULT_LISTEN = REVIEW_ADDRESS
DEFAULT_SCORER = SCORER_ADDRESS
DATABASE_NAME = "review.sqlite3"
REVIEW_SERVICE = review_pb2.DESCRIPTOR.services_by_name["Review"].full_name


@dataclass(frozen=True)
class ReviewConfig:
    listen: str = DEFAULT_LISTEN
    scorer: str = DEFAULT_SCORER
    home: Path = field(default_factory=default_home)
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # How long Ingest waits to reach the Scorer before answering UNAVAILABLE.
    scorer_ready_timeout: float = 3.0
    drain_seconds: float = REVIEW_GRACE_SECONDS
    # TLS for this server: a PEM certificate and its key, both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None
    # The bearer token every call to this server must carry; None: open.
    token: str | None = None
    # Calling the Scorer: the CA (or self-signed certificate) to trust, None: plain text;
    # and the token to send, None: none.
    scorer_tls_ca: str | None = None
    scorer_token: str | None = None
    # The fine-tuning endpoint used while the config sets none (`ftreview serve`: its trainer).
    default_finetune_url: str = ""
    # The bearer token for any fine-tuning URL (--finetune-token-file or
    # $FTREVIEW_FINETUNE_TOKEN); without it the default URL gets `token` (finetune_http.py).
    finetune_token: str | None = None

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME

    @property
    def database_path(self) -> Path:
        return self.home / DATABASE_NAME

    def settings(self) -> ServerSettings:
        security = ServerSecurity(self.tls_cert, self.tls_key, self.token)
        return ServerSettings(self.listen, self.drain_seconds, security, self.max_message_bytes)


class ReviewService:
    """What the Review fills into the lifecycle: its servicer, its hub, its store."""

    name = "review"

    def __init__(self, review: Review, hub: ActivityHub) -> None:
        self.review = review
        self.hub = hub

    def add_servicers(self, server: grpc.aio.Server) -> Sequence[str]:
        review_pb2_grpc.add_ReviewServicer_to_server(ReviewServicer(self.review), server)
        return [REVIEW_SERVICE]

    def begin_drain(self) -> None:
        self.review.feed.close()

    async def close(self) -> None:
        await self.review.close()


ReviewServer = ServiceServer[ReviewService]


def create_server(config: ReviewConfig) -> tuple[ReviewServer, int]:
    """Build the server and bind `config.listen`; call from the loop that will run it."""
    settings = config.settings()
    scorer_credentials = channel_credentials(config.scorer_tls_ca)
    config.home.mkdir(parents=True, exist_ok=True)
    config_file = ConfigFile(
        config.config_path, LearnConfig(finetune_url=config.default_finetune_url)
    )
    config_file.load()  # an unreadable config stops the start, with line and column
    store = SqliteStore(config.database_path, background_checkpoints=True)
    hub = ActivityHub()
    auth = FinetuneAuth(config.finetune_token, config.default_finetune_url, config.token)
    review = Review(
        store,
        GrpcScorer(
            config.scorer,
            config.max_message_bytes,
            credentials=scorer_credentials,
            token=config.scorer_token,
        ),
        HttpFinetuneEndpoint(headers_for=auth.headers),
        config_file,
        hub,
        codec=WireConversations(),
        # A trainer silent this long (restarting, say) is followed again on restart.
        jobs=JobFollower(give_up_after=300.0, headers_for=auth.headers),
        scorer_ready_timeout=config.scorer_ready_timeout,
    )
    try:
        built = create_service_server(settings, ReviewService(review, hub))
    except OSError:
        store.close()
        raise
    review.resume()  # jobs left by the last process: followed again, measured
    return built


async def serve(config: ReviewConfig) -> None:
    """Serve until SIGTERM or SIGINT, then drain."""
    server, port = create_server(config)
    await serve_until_signalled(server, port)
