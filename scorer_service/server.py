"""The Scorer as a service of the shared lifecycle (`ftreview.core.server`).

`create_server` loads the engine (off the event loop) and builds and binds the server, but
serves nothing until `start`; `serve` adds what a long-running process needs (one log line
with the real address, a graceful drain on SIGTERM or Ctrl-C). An engine handed in by the
caller stays the caller's: stopping the server closes only an engine it built itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from ftreview.core.activity_hub import ActivityHub
from ftreview.core.defaults import SCORER_ADDRESS, SCORER_GRACE_SECONDS
from ftreview.core.security import ServerSecurity
from ftreview.core.server import (
    ServerSettings,
    ServiceServer,
    serve_until_signalled,
)
from ftreview.core.server import create_server as create_service_server
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc

from scorer_service.backends.base import ScoringBackend
from scorer_service.backends.kv_cache import DEFAULT_KV_CACHE_MB
from scorer_service.errors import ScorerError
from scorer_service.servicer import ScorerServicer

log = logging.getLogger("scorer_service")

SCORER_SERVICE = scorer_pb2.DESCRIPTOR.services_by_name["Scorer"].full_name


@dataclass
class ScorerConfig:
    listen: str = SCORER_ADDRESS
    backend: str = "local"
    backend_urls: list[str] = field(default_factory=list)
    # Local model path (folder or .gguf) or the tokenizer for a remote engine; None: embedded.
    model: str | None = None
    # The model name a remote engine serves; None: its first model.
    served_model: str | None = None
    device: str | None = None
    dtype: str = "auto"
    # Local engine: MiB for the attention caches of recent prompts (0: no reuse).
    kv_cache_mb: int = DEFAULT_KV_CACHE_MB
    # A folder whose current.json names the adapter to serve at start (the trainer's).
    adapter_dir: str | None = None
    # How long calls in flight may run on after SIGTERM.
    grace_seconds: float = SCORER_GRACE_SECONDS
    # TLS: a PEM certificate (chain) and its key, both or neither; None: plain text.
    tls_cert: str | None = None
    tls_key: str | None = None
    # A shared bearer token every call must carry (health and reflection stay open).
    token: str | None = None

    def settings(self) -> ServerSettings:
        security = ServerSecurity(self.tls_cert, self.tls_key, self.token)
        return ServerSettings(self.listen, self.grace_seconds, security)


class ScorerService:
    """What the Scorer fills into the lifecycle: its servicer, its hub, its engine."""

    name = "scorer"

    def __init__(
        self,
        backend: ScoringBackend,
        tokenizer: Any,
        context_length: int | None,
        owns_backend: bool,
    ) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.hub = ActivityHub()
        self._owns_backend = owns_backend

    def add_servicers(self, server: grpc.aio.Server) -> Sequence[str]:
        servicer = ScorerServicer(self.backend, self.tokenizer, self.context_length, self.hub)
        scorer_pb2_grpc.add_ScorerServicer_to_server(servicer, server)
        return [SCORER_SERVICE]

    def begin_drain(self) -> None:
        """Nothing streams for long: calls in flight end within the grace period."""

    async def close(self) -> None:
        if self._owns_backend:
            await self.backend.aclose()


ScorerServer = ServiceServer[ScorerService]


def build_backend(config: ScorerConfig) -> tuple[ScoringBackend, Any]:
    """The engine and the tokenizer that renders prompts for it."""
    from scorer_service.model_files import load_tokenizer

    if config.backend == "local":
        from scorer_service.backends.local import LocalBackend

        local = LocalBackend.load(
            config.model, config.device, config.dtype, kv_cache_mb=config.kv_cache_mb
        )
        return local, local.tokenizer
    if not config.backend_urls:
        raise ValueError(f"--backend {config.backend} needs at least one --backend-url")
    if config.backend == "vllm":
        from scorer_service.backends.vllm import VllmBackend

        return VllmBackend(config.backend_urls, config.served_model), load_tokenizer(config.model)
    if config.backend == "vllm-score":
        from scorer_service.backends.vllm_score import VllmScoreBackend

        return (
            VllmScoreBackend(config.backend_urls, config.served_model),
            load_tokenizer(config.model),
        )
    if config.backend == "sglang":
        from scorer_service.backends.sglang import SglangBackend

        return SglangBackend(config.backend_urls, config.served_model), load_tokenizer(config.model)
    raise ValueError(f"unknown backend {config.backend!r} (local, vllm, vllm-score or sglang)")


async def create_server(
    config: ScorerConfig,
    backend: ScoringBackend | None = None,
    tokenizer: Any = None,
    context_length: int | None = None,
) -> tuple[ScorerServer, int]:
    """Build a Scorer bound to `config.listen`, not yet serving (`await server.start()`).

    A given backend and tokenizer are used as they are and stay the caller's to close."""
    settings = config.settings()  # a half TLS setting fails before the model loads
    owns_backend = backend is None or tokenizer is None
    if owns_backend:
        backend, tokenizer = await asyncio.to_thread(build_backend, config)
    assert backend is not None
    if config.adapter_dir:
        await load_current_adapter(backend, config.adapter_dir)
    if context_length is None:
        try:
            context_length = (await backend.info()).context_length
        except ScorerError as exc:  # an engine that is down now may be up later
            log.warning("the engine is not answering yet (%s); will ask again per call", exc)
    service = ScorerService(backend, tokenizer, context_length, owns_backend)
    try:
        return create_service_server(settings, service)
    except OSError:
        await service.close()
        raise


async def load_current_adapter(backend: ScoringBackend, adapter_dir: str) -> None:
    """Serve the adapter `adapter_dir/current.json` names, if any. A local adapter that
    cannot load stops the start (serving the base model instead would be a silent surprise);
    a remote engine that is down now is told again when the trainer promotes the next one."""
    from scorer_service.errors import BackendUnavailable
    from scorer_service.model_files import current_adapter

    current = current_adapter(adapter_dir)
    if current is None:
        log.info("no adapter promoted in %s yet; serving the base model", adapter_dir)
        return
    name, path = current
    try:
        await backend.load_adapter(path, name)
    except BackendUnavailable as exc:
        if backend.keep_adapter(path, name):
            log.warning(
                "the engine is not answering (%s); adapter %s will be loaded into it once it "
                "answers",
                exc,
                name,
            )
        else:
            log.warning("could not load adapter %s (%s); serving the base model", name, exc)
        return
    except ScorerError as exc:
        raise ValueError(f"{adapter_dir}/current.json: {exc}") from exc
    log.info("serving adapter %s from %s (loaded into the engine at start-up)", name, path)


async def serve(config: ScorerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then drain."""
    server, port = await create_server(config)
    service = server.service
    try:
        info = await service.backend.info()
        engine = f"backend {info.backend}, model {info.model}"
    except Exception as exc:  # the engine may come up later; each call says so meanwhile
        engine = f"backend {config.backend} (not answering yet: {exc})"
    context = service.context_length or "not known yet"
    await serve_until_signalled(server, port, f"{engine}, context {context}")
