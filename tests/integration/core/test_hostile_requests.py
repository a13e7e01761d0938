"""Issue 7, item 6, on the real servers: bytes that are no request, and conversations nested
beyond the documented limit, end INVALID_ARGUMENT on every method of every service (the
Scorer on the embedded model, the Review on a SQLite file), never UNKNOWN or INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ftreview.core.defaults import MAX_NESTING_DEPTH
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from review_service.api.server import ReviewConfig, create_server
from scorer_service.server import ScorerServer

SCORER_SERVICES = [
    scorer_pb2.DESCRIPTOR.services_by_name["Scorer"],
    activity_pb2.DESCRIPTOR.services_by_name["Activities"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
]
REVIEW_SERVICES = [
    review_pb2.DESCRIPTOR.services_by_name["Review"],
    activity_pb2.DESCRIPTOR.services_by_name["Activities"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
]
# Field 1, length-delimited, claiming more bytes than follow: no message decodes from it.
GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"


@pytest.fixture
async def review_address(tmp_path: Path, scorer_address: str) -> AsyncIterator[str]:
    config = ReviewConfig(listen="127.0.0.1:0", scorer=scorer_address, home=tmp_path / "home")
    server, port = create_server(config)
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0.5)


def _methods(services: list[ServiceDescriptor]) -> list[tuple[str, bool, str]]:
    return [
        (
            f"/{service.full_name}/{method.name}",
            method.server_streaming,
            method.input_type.full_name,
        )
        for service in services
        for method in service.methods
        if not method.client_streaming
    ]


async def _call_raw(address: str, path: str, streaming: bool, payload: bytes) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            if streaming:
                async for _ in channel.unary_stream(path)(payload, timeout=30):
                    pass
            else:
                await channel.unary_unary(path)(payload, timeout=30)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                assert "request is not a valid" in (error.details() or ""), error.details()
            return error.code()
    return grpc.StatusCode.OK


async def test_every_method_of_every_service_refuses_undecodable_bytes(
    scorer: ScorerServer, scorer_address: str, review_address: str
) -> None:
    seen: dict[tuple[str, str], grpc.StatusCode] = {}
    for name, address, services in (
        ("scorer", scorer_address, SCORER_SERVICES),
        ("review", review_address, REVIEW_SERVICES),
    ):
        for path, streaming, _ in _methods(services):
            seen[(name, path)] = await _call_raw(address, path, streaming, GARBAGE)
    # Unary and streaming methods of both contracts, health included.
    assert ("review", "/ftreview.v1.Review/WatchCandidates") in seen
    assert ("scorer", "/grpc.health.v1.Health/Watch") in seen
    refused = grpc.StatusCode.INVALID_ARGUMENT
    assert {key: code for key, code in seen.items() if code != refused} == {}


def _nested(request: scorer_pb2.TokenizeRequest | review_pb2.IngestRequest, depth: int) -> bytes:
    """`request` with a conversation whose one leaf sits under `depth` nested branches."""
    request.conversation.id = f"deep-{depth}"
    node = request.conversation.nodes.add()
    for _ in range(depth):
        node = node.branch.children.add()
    node.leaf.role = conversation_pb2.ROLE_USER
    node.leaf.content = "hello"
    return request.SerializeToString()


CONVERSATION_METHODS = [
    ("scorer", "/ftreview.v1.Scorer/Tokenize", scorer_pb2.TokenizeRequest),
    ("scorer", "/ftreview.v1.Scorer/ScoreConversation", scorer_pb2.ScoreConversationRequest),
    ("scorer", "/ftreview.v1.Scorer/GenerateAlternate", scorer_pb2.GenerateAlternateRequest),
    ("review", "/ftreview.v1.Review/Ingest", review_pb2.IngestRequest),
]


@pytest.mark.parametrize(("server", "path", "request_type"), CONVERSATION_METHODS)
@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH, 45, 200])
async def test_conversations_nested_beyond_the_limit_are_invalid_argument(
    scorer_address: str,
    review_address: str,
    server: str,
    path: str,
    request_type: type,
    depth: int,
) -> None:
    address = scorer_address if server == "scorer" else review_address
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(path)(_nested(request_type(), depth), timeout=30)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    if depth <= 45:  # decodes: the validator names the branch beyond the limit
        assert f"deeper than {MAX_NESTING_DEPTH} levels" in (error.details() or "")
        status = rpc_status.from_call(error)
        bad = error_details_pb2.BadRequest()
        assert status is not None and any(d.Unpack(bad) for d in status.details)
        field = bad.field_violations[0].field
        assert field.startswith("conversation.nodes[0]") and field.count("children") == (
            MAX_NESTING_DEPTH - 1
        )
    else:  # beyond protobuf's own recursion limit: refused while decoding
        assert "request is not a valid" in (error.details() or "")


async def test_a_conversation_at_the_limit_is_accepted(scorer_address: str) -> None:
    async with grpc.aio.insecure_channel(scorer_address) as channel:
        payload = _nested(scorer_pb2.TokenizeRequest(), MAX_NESTING_DEPTH - 1)
        raw = await channel.unary_unary("/ftreview.v1.Scorer/Tokenize")(payload, timeout=60)
    response = scorer_pb2.TokenizeResponse.FromString(raw)
    assert "hello" in response.text
