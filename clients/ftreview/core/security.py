"""Transport security of every server, and what servers and clients share: TLS and a token.

Invariants:
- plain text on loopback is the default; TLS needs both a certificate and its key (one
  without the other is refused at start, in one line), and a server that listens beyond
  loopback without TLS says so in its log;
- with a token configured, every call must carry `authorization: Bearer <token>`, compared
  in constant time (`hmac.compare_digest`), or it ends UNAUTHENTICATED before any servicer
  runs; the standard health service and server reflection stay open, so load-balancer
  probes, `grpc_health_probe` and `grpcurl list` work without the secret (they reveal
  whether the server is up and which methods it has, nothing else);
- the token is read from a file or `FTREVIEW_TOKEN`, never from a command-line value, so it
  does not show in `ps` output or shell history.

Every client channel, of the client library and of a service calling another (the Review
and the trainer call the Scorer), is made by `client_channel` / `client_channel_aio` here:
TLS or plain text, the message-size limits of `ftreview.core.defaults`, and the token
attached once, when the channel is made, never per call by hand. Over TLS the token is a
call credential composed with the channel's (`grpc.composite_channel_credentials`, as in
grpc's `examples/python/auth`), so gRPC itself refuses to send it on a channel that is not
secure; gRPC allows call credentials only on secure channels, so a plain-text channel gets
a client interceptor that adds the same metadata to every call. What only clients need
(resolving `$FTREVIEW_TLS_CA`) is in `ftreview.auth`.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import grpc.aio

from ftreview.core.defaults import MAX_MESSAGE_BYTES

TOKEN_ENV = "FTREVIEW_TOKEN"
# The Review's token for a fine-tuning endpoint of the user's own (README, `Send`).
FINETUNE_TOKEN_ENV = "FTREVIEW_FINETUNE_TOKEN"
TLS_CA_ENV = "FTREVIEW_TLS_CA"
AUTHORIZATION = "authorization"
# What a client is told when its token is missing or wrong; the CLI says it the same way.
TOKEN_HINT = "set FTREVIEW_TOKEN or --token-file"
# Reachable without a token: probes and `grpcurl list` must work on a locked server.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


class SecurityConfigError(ValueError):
    """A TLS or token setting that cannot work; the message is one line for the user."""


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in `path`, without surrounding whitespace (an editor's final newline)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise SecurityConfigError(f"cannot read the token file {path}: {reason}") from error
    if not token:
        raise SecurityConfigError(f"the token file {path} is empty")
    if any(c.isspace() for c in token):
        raise SecurityConfigError(f"the token in {path} contains whitespace; use one word")
    return token


def resolve_token(token_file: str | os.PathLike[str] | None, env: str = TOKEN_ENV) -> str | None:
    """The token from `token_file` if given, else `$env` (`$FTREVIEW_TOKEN`), else None."""
    if token_file:
        return read_token_file(token_file)
    token = os.environ.get(env, "").strip()
    if token and any(c.isspace() for c in token):
        raise SecurityConfigError(f"${env} contains whitespace; use one word")
    return token or None


def _read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SecurityConfigError(
            f"cannot read the {what} {path}: {error.strerror or error}"
        ) from error
    if b"-----BEGIN" not in data:
        raise SecurityConfigError(f"the {what} {path} is not PEM (no -----BEGIN line)")
    return data


def channel_credentials(ca_path: str | os.PathLike[str] | None) -> grpc.ChannelCredentials | None:
    """TLS credentials that trust the certificates in `ca_path`; None: plain text."""
    if not ca_path:
        return None
    return grpc.ssl_channel_credentials(root_certificates=_read_pem(ca_path, "TLS CA file"))


def message_options(max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, Any]]:
    """The channel options that let messages of up to `max_message_bytes` through, both
    ways (gRPC's own default is 4 MiB)."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def client_channel(
    address: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> grpc.Channel:
    """A blocking channel to `address`: TLS with `credentials` (None: plain text), every
    call carrying `token` as a bearer token when one is given."""
    options = message_options(max_message_bytes)
    if credentials is not None:
        return grpc.secure_channel(address, _with_token(credentials, token), options)
    channel = grpc.insecure_channel(address, options=options)
    if token:
        return grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def client_channel_aio(
    address: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> grpc.aio.Channel:
    """`client_channel` for asyncio: the same transport, limits and token."""
    options = message_options(max_message_bytes)
    if credentials is not None:
        return grpc.aio.secure_channel(address, _with_token(credentials, token), options)
    interceptors = _aio_bearer_token(token) if token else None
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata that carries `token`: `authorization: Bearer <token>`."""
    return ((AUTHORIZATION, f"Bearer {token}"),)


def _with_token(credentials: grpc.ChannelCredentials, token: str | None) -> grpc.ChannelCredentials:
    if not token:
        return credentials
    # Sends `authorization: Bearer <token>` on every call of the channel.
    return grpc.composite_channel_credentials(
        credentials, grpc.access_token_call_credentials(token)
    )


class _CallDetails(NamedTuple):
    """What a blocking channel's continuation reads of a call, with the token added."""

    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the bearer token to every call of a plain-text blocking channel."""

    def __init__(self, token: str) -> None:
        self._metadata = bearer_metadata(token)

    def _details(self, details: Any) -> Any:
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *self._metadata),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Any, details: Any, requests: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self, continuation: Any, details: Any, requests: Iterator[Any]
    ) -> Any:
        return continuation(self._details(details), requests)


class _AioBearerToken:
    """Adds the bearer token to the calls of a plain-text asyncio channel. grpc.aio files
    each interceptor under the first call shape it implements, so there is one subclass per
    shape."""

    def __init__(self, token: str) -> None:
        self._metadata = bearer_metadata(token)

    def _details(self, details: Any) -> Any:
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*(details.metadata or ()), *self._metadata),
            details.credentials,
            details.wait_for_ready,
        )


class _AioUnaryUnaryToken(_AioBearerToken, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioUnaryStreamToken(_AioBearerToken, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioStreamUnaryToken(_AioBearerToken, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(
        self, continuation: Any, details: Any, requests: AsyncIterator[Any]
    ) -> Any:
        return await continuation(self._details(details), requests)


class _AioStreamStreamToken(_AioBearerToken, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(
        self, continuation: Any, details: Any, requests: AsyncIterator[Any]
    ) -> Any:
        return await continuation(self._details(details), requests)


def _aio_bearer_token(token: str) -> list[Any]:
    kinds = (_AioUnaryUnaryToken, _AioUnaryStreamToken, _AioStreamUnaryToken, _AioStreamStreamToken)
    return [kind(token) for kind in kinds]


def is_loopback(listen: str) -> bool:
    """Whether `HOST:PORT` (or `[v6]:PORT`) listens on this machine only."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost, or empty (every interface)


@dataclass(frozen=True)
class ServerSecurity:
    """What one server needs: an optional certificate and key, and an optional token.

    The PEM files are read when this is made, so a bad path stops a start before a model
    loads, not after.
    """

    tls_cert: str | None = None
    tls_key: str | None = None
    token: str | None = None
    _key_and_chain: tuple[bytes, bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SecurityConfigError(
                "--tls-cert and --tls-key go together: give both (TLS) or neither (plain text)"
            )
        if self.tls_cert and self.tls_key:
            pair = (_read_pem(self.tls_key, "TLS key"), _read_pem(self.tls_cert, "TLS certificate"))
            object.__setattr__(self, "_key_and_chain", pair)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        return [BearerTokenInterceptor(self.token)] if self.token else []

    def bind(self, server: grpc.aio.Server, listen: str, log: logging.Logger) -> int:
        """Adds the port (TLS or plain) and returns it; 0 when it could not be bound."""
        if self._key_and_chain is not None:
            credentials = grpc.ssl_server_credentials([self._key_and_chain])
            return int(server.add_secure_port(listen, credentials))
        if not is_loopback(listen):
            log.warning(
                "listening on %s without TLS: calls%s travel in clear text; "
                "pass --tls-cert and --tls-key",
                listen,
                " and the bearer token" if self.token else "",
            )
        return int(server.add_insecure_port(listen))


def unauthenticated_message(present: bool) -> str:
    what = "wrong bearer token" if present else "missing bearer token"
    return f"{what}: send metadata `authorization: Bearer <token>` ({TOKEN_HINT})"


def token_matches(metadata: Any, expected: str) -> bool | None:
    """True: the right token; False: a token, but not it; None: no token at all."""
    values = [v for k, v in (metadata or ()) if k == AUTHORIZATION]
    if not values:
        return None
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    scheme, _, presented = value.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Ends every call without the shared token UNAUTHENTICATED, except `OPEN_SERVICES`."""

    def __init__(self, token: str) -> None:
        if not token:
            raise SecurityConfigError("the bearer token is empty")
        self._token = token

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method  # "/package.Service/Method"
        service = method.lstrip("/").split("/", 1)[0]
        handler = await continuation(handler_call_details)
        if handler is None or service in OPEN_SERVICES:
            return handler
        verdict = token_matches(handler_call_details.invocation_metadata, self._token)
        if verdict:
            return handler
        return _refusal(handler, unauthenticated_message(present=verdict is not None))


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that only aborts the call."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)


def add_server_security_flags(parser: argparse.ArgumentParser) -> None:
    """--tls-cert, --tls-key and --token-file, the same on every ftreview server."""
    parser.add_argument(
        "--tls-cert", metavar="PATH", help="serve TLS with this PEM certificate (with --tls-key)"
    )
    parser.add_argument("--tls-key", metavar="PATH", help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"require this bearer token on every call (default ${TOKEN_ENV}; none: open); "
        "health and reflection stay open",
    )
