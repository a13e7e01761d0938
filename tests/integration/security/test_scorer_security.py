"""The Scorer with TLS and a bearer token, on a real server: the right token works, a
missing or wrong one is refused UNAUTHENTICATED before any work, probes and reflection stay
open, and a plain-text client cannot talk to it at all."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from conftest import TOKEN
from ftreview.auth import channel_credentials
from ftreview.client import AsyncScorerClient
from ftreview.errors import Unauthenticated, Unavailable
from ftreview.v1 import conversation_pb2, scorer_pb2, scorer_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scorer_service.backends.local import LocalBackend
from scorer_service.server import ScorerConfig, create_server
from tests.support.certificates import Certificate

pytestmark = pytest.mark.model


def client(address: str, certificate: Certificate | None, token: str | None) -> AsyncScorerClient:
    credentials = channel_credentials(certificate.cert) if certificate else None
    return AsyncScorerClient(address, timeout=10.0, credentials=credentials, token=token)


def hello() -> conversation_pb2.Conversation:
    conversation = conversation_pb2.Conversation(id="hello")
    for role, text in (
        (conversation_pb2.ROLE_USER, "Hi"),
        (conversation_pb2.ROLE_ASSISTANT, "Hello!"),
    ):
        conversation.nodes.add(leaf=conversation_pb2.Leaf(role=role, content=text))
    return conversation


async def test_the_right_token_over_tls_is_served(
    locked_scorer_address: str, certificate: Certificate
) -> None:
    async with client(locked_scorer_address, certificate, TOKEN) as scorer:
        info = await scorer.get_info()
        assert info.context_length > 0
        tokens = await scorer.tokenize(hello())
        assert len(tokens.token_ids) > 0 and "Hello!" in tokens.text


@pytest.mark.parametrize("token", [None, "not-the-token", TOKEN + "x"])
async def test_a_missing_or_wrong_token_is_refused_unauthenticated(
    locked_scorer_address: str, certificate: Certificate, token: str | None
) -> None:
    async with client(locked_scorer_address, certificate, token) as scorer:
        with pytest.raises(Unauthenticated) as refused:
            await scorer.get_info()
        expected = "missing bearer token" if token is None else "wrong bearer token"
        assert expected in str(refused.value)
        assert "FTREVIEW_TOKEN" in str(refused.value)
        # A server stream is refused the same way, before its first message.
        with pytest.raises(Unauthenticated):
            async for _ in scorer.watch_activities():
                pass


async def test_a_token_in_another_scheme_is_refused(
    locked_scorer_address: str, certificate: Certificate
) -> None:
    channel = grpc.aio.secure_channel(locked_scorer_address, channel_credentials(certificate.cert))
    try:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetInfo(
                scorer_pb2.GetInfoRequest(), metadata=(("authorization", f"Basic {TOKEN}"),)
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The scheme is case-insensitive (RFC 7235).
        info = await stub.GetInfo(
            scorer_pb2.GetInfoRequest(), metadata=(("authorization", f"bearer {TOKEN}"),)
        )
        assert info.context_length > 0
    finally:
        await channel.close()


async def test_health_and_reflection_answer_without_a_token(
    locked_scorer_address: str, certificate: Certificate
) -> None:
    async with client(locked_scorer_address, certificate, None) as scorer:
        assert await scorer.health() == "SERVING"
    channel = grpc.aio.secure_channel(locked_scorer_address, channel_credentials(certificate.cert))
    try:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name async for r in call for s in r.list_services_response.service}
        assert "ftreview.v1.Scorer" in names and "grpc.health.v1.Health" in names
    finally:
        await channel.close()


async def test_a_plain_text_client_cannot_talk_to_the_tls_server(
    locked_scorer_address: str,
) -> None:
    async with client(locked_scorer_address, None, TOKEN) as scorer:
        with pytest.raises(Unavailable):
            await scorer.get_info()
        with pytest.raises(Unavailable):
            await scorer.health()


async def test_a_tls_client_cannot_talk_to_a_plain_text_server(
    scorer_address: str, certificate: Certificate
) -> None:
    async with client(scorer_address, certificate, None) as scorer:
        with pytest.raises(Unavailable) as failed:
            await scorer.health()
        assert "handshake" in str(failed.value).lower()


async def test_a_certificate_without_its_key_is_refused_before_serving(
    embedded_backend: LocalBackend, certificate: Certificate
) -> None:
    config = ScorerConfig(listen="127.0.0.1:0", tls_cert=str(certificate.cert))
    with pytest.raises(ValueError, match="--tls-cert and --tls-key go together"):
        await create_server(config, backend=embedded_backend, tokenizer=embedded_backend.tokenizer)


def test_the_command_says_so_in_one_line(certificate: Certificate) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scorer_service", "--listen", "127.0.0.1:0",
         "--tls-key", str(certificate.key)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ftreview-scorer: --tls-cert and --tls-key go together: give both (TLS) or neither "
        "(plain text)"
    ]
