"""Building and running the Scorer's gRPC server.

`create_server` binds and starts a server (port 0 picks a free port, for tests) and is
separate from `serve`, which adds what a long-running process needs: one log line when
serving, and a graceful drain on SIGTERM or Ctrl-C (health turns NOT_SERVING, new calls are
refused, calls in flight get a grace period to finish).

Plain text on loopback by default; with `tls_cert`/`tls_key` it serves TLS, and with `token`
every call but health and reflection must carry it (`ftreview.auth`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from typing import Any

import grpc
from ftreview.activity_hub import ActivityHub
from ftreview.activity_service import ActivitiesServicer
from ftreview.auth import ServerSecurity
from ftreview.v1 import activity_pb2, activity_pb2_grpc, scorer_pb2, scorer_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from scorer_service.backends.base import ScoringBackend
from scorer_service.backends.kv_cache import DEFAULT_KV_CACHE_MB
from scorer_service.errors import ScorerError
from scorer_service.servicer import ScorerServicer

log = logging.getLogger("scorer_service")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVICE_NAMES = (
    scorer_pb2.DESCRIPTOR.services_by_name["Scorer"].full_name,
    activity_pb2.DESCRIPTOR.services_by_name["Activities"].full_name,
)


@dataclass
class ScorerConfig:
    listen: str = "127.0.0.1:50051"
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
    grace_seconds: float = 30.0
    # TLS: a PEM certificate (chain) and its key, both or neither; None: plain text.
    tls_cert: str | None = None
    tls_key: str | None = None
    # A shared bearer token every call must carry (health and reflection stay open).
    token: str | None = None

    def security(self) -> ServerSecurity:
        return ServerSecurity(self.tls_cert, self.tls_key, self.token)


@dataclass
class RunningScorer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    hub: ActivityHub
    backend: ScoringBackend


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
    raise ValueError(f"unknown backend {config.backend!r} (local, vllm or vllm-score)")


async def create_server(
    config: ScorerConfig,
    backend: ScoringBackend | None = None,
    tokenizer: Any = None,
    context_length: int | None = None,
) -> RunningScorer:
    """Start a Scorer on `config.listen`; a given backend and tokenizer are used as they are."""
    security = config.security()  # a half TLS setting fails before the model loads
    if backend is None or tokenizer is None:
        built, tokenizer = await asyncio.to_thread(build_backend, config)
        backend = built
    if config.adapter_dir:
        await load_current_adapter(backend, config.adapter_dir)
    if context_length is None:
        try:
            context_length = (await backend.info()).context_length
        except Exception as exc:  # an engine that is down now may be up later
            log.warning("could not ask the engine for its context length (%s); using 4096", exc)
            context_length = 4096
    hub = ActivityHub()
    server = grpc.aio.server(
        interceptors=security.interceptors(),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    scorer_pb2_grpc.add_ScorerServicer_to_server(
        ScorerServicer(backend, tokenizer, context_length, hub), server
    )
    activity_pb2_grpc.add_ActivitiesServicer_to_server(ActivitiesServicer(hub), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = security.bind(server, config.listen, log)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningScorer(server, port, health_servicer, hub, backend)


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
        log.warning("could not load adapter %s on the engine (%s); serving its default", name, exc)
    except ScorerError as exc:
        raise ValueError(f"{adapter_dir}/current.json: {exc}") from exc


async def drain(running: RunningScorer, grace: float) -> None:
    for name in ("", *SERVICE_NAMES):
        await running.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await running.server.stop(grace)
    await running.backend.aclose()


async def serve(config: ScorerConfig) -> None:
    running = await create_server(config)
    host = config.listen.rsplit(":", 1)[0]
    info = await running.backend.info()
    log.info(
        "scorer serving on %s:%d (backend %s, model %s, context %d; %s%s)",
        host,
        running.port,
        info.backend,
        info.model,
        info.context_length,
        "TLS" if config.tls_cert else "plain text",
        ", bearer token required" if config.token else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("draining (up to %.0f s for calls in flight)", config.grace_seconds)
    await drain(running, config.grace_seconds)
