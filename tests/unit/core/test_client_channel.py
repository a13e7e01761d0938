"""`client_channel` / `client_channel_aio`: the token is attached once, when the channel is
made, and reaches every call of every shape, over plain text and over TLS; without a token
nothing is sent; a server requiring the token lets these channels in and no others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from ftreview.core.defaults import MAX_MESSAGE_BYTES
from ftreview.core.security import (
    ServerSecurity,
    channel_credentials,
    client_channel,
    client_channel_aio,
    message_options,
)

from tests.support.certificates import Certificate, self_signed

TOKEN = "channel-token"
SERVICE = "test.Echo"


def _authorization(context: Any) -> list[str]:
    return [v for k, v in context.invocation_metadata() if k == "authorization"]


async def _unary(request: bytes, context: Any) -> bytes:
    return ",".join(_authorization(context)).encode()


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(2):
        yield ",".join(_authorization(context)).encode()


async def _client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
    async for _ in requests:
        pass
    return ",".join(_authorization(context)).encode()


def _handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
        },
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


async def _serve(security: ServerSecurity) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=security.interceptors(), options=message_options())
    server.add_generic_rpc_handlers((_handler(),))
    port = security.bind(server, "127.0.0.1:0", logging.getLogger("test"))
    await server.start()
    return server, f"localhost:{port}" if security.tls else f"127.0.0.1:{port}"


def _requests() -> Iterator[bytes]:
    yield b"a"
    yield b"b"


async def _requests_async() -> AsyncIterator[bytes]:
    yield b"a"
    yield b"b"


@pytest.mark.parametrize("tls", [False, True])
async def test_the_token_reaches_every_call_of_an_aio_channel(
    tls: bool, certificate: Certificate
) -> None:
    security = ServerSecurity(
        str(certificate.cert) if tls else None, str(certificate.key) if tls else None, TOKEN
    )
    server, address = await _serve(security)
    credentials = channel_credentials(certificate.cert) if tls else None
    try:
        async with client_channel_aio(address, credentials=credentials, token=TOKEN) as channel:
            unary = channel.unary_unary(f"/{SERVICE}/Unary")
            assert await unary(b"") == f"Bearer {TOKEN}".encode()
            stream = channel.unary_stream(f"/{SERVICE}/Stream")
            assert [m async for m in stream(b"")] == [f"Bearer {TOKEN}".encode()] * 2
            client_stream = channel.stream_unary(f"/{SERVICE}/ClientStream")
            assert await client_stream(_requests_async()) == f"Bearer {TOKEN}".encode()
        async with client_channel_aio(address, credentials=credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary(f"/{SERVICE}/Unary")(b"")
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(None)


@pytest.mark.parametrize("tls", [False, True])
async def test_the_token_reaches_every_call_of_a_blocking_channel(
    tls: bool, certificate: Certificate
) -> None:
    security = ServerSecurity(
        str(certificate.cert) if tls else None, str(certificate.key) if tls else None, TOKEN
    )
    server, address = await _serve(security)
    credentials = channel_credentials(certificate.cert) if tls else None

    def calls() -> tuple[bytes, list[bytes], bytes]:
        with client_channel(address, credentials=credentials, token=TOKEN) as channel:
            unary = channel.unary_unary(f"/{SERVICE}/Unary")(b"", timeout=10)
            stream = list(channel.unary_stream(f"/{SERVICE}/Stream")(b"", timeout=10))
            client_stream = channel.stream_unary(f"/{SERVICE}/ClientStream")(
                _requests(), timeout=10
            )
        return unary, stream, client_stream

    try:
        unary, stream, client_stream = await asyncio.to_thread(calls)
        expected = f"Bearer {TOKEN}".encode()
        assert (unary, stream, client_stream) == (expected, [expected] * 2, expected)
    finally:
        await server.stop(None)


async def test_no_token_sends_no_authorization() -> None:
    server, address = await _serve(ServerSecurity())
    try:
        async with client_channel_aio(address) as channel:
            assert await channel.unary_unary(f"/{SERVICE}/Unary")(b"") == b""
    finally:
        await server.stop(None)


async def test_messages_above_grpcs_4_mib_default_pass() -> None:
    server, address = await _serve(ServerSecurity())
    big = b"x" * (8 * 1024 * 1024)
    assert len(big) < MAX_MESSAGE_BYTES
    try:
        async with client_channel_aio(address, token=TOKEN) as channel:
            assert await channel.unary_unary(f"/{SERVICE}/Unary")(big) == f"Bearer {TOKEN}".encode()
    finally:
        await server.stop(None)
