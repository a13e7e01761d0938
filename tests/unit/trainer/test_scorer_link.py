"""The trainer's `ScorerLink` against a stand-in Scorer over real gRPC on 127.0.0.1: it asks
LoadAdapter with the bearer token, and a Scorer that is down or refuses answers with a
one-line reason instead of an exception (a promotion never fails on the Scorer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from ftreview.core.security import BearerTokenInterceptor
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc

from trainer_service.scorer_link import ScorerLink

TOKEN = "trainer-to-scorer"


class StandIn(scorer_pb2_grpc.ScorerServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.loaded: list[tuple[str, str]] = []

    async def LoadAdapter(
        self, request: scorer_pb2.LoadAdapterRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.LoadAdapterResponse:
        if request.path.endswith("missing"):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no adapter at {request.path}")
        self.loaded.append((request.path, request.name))
        return scorer_pb2.LoadAdapterResponse(adapter=request.name)


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    scorer = StandIn()
    server = grpc.aio.server(interceptors=[BearerTokenInterceptor(TOKEN)])
    scorer_pb2_grpc.add_ScorerServicer_to_server(scorer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield scorer, f"127.0.0.1:{port}"
    await server.stop(None)


async def test_the_scorer_is_told_with_the_token(stand_in: tuple[StandIn, str]) -> None:
    scorer, address = stand_in
    link = ScorerLink(address, token=TOKEN, timeout=10)
    assert await asyncio.to_thread(link, "/adapters/v2", "v2") == ""
    assert scorer.loaded == [("/adapters/v2", "v2")]


async def test_a_refusal_is_a_reason(stand_in: tuple[StandIn, str]) -> None:
    _, address = stand_in
    wrong = await asyncio.to_thread(ScorerLink(address, token="nope", timeout=10), "/a/v2", "v2")
    assert wrong.startswith(f"LoadAdapter at {address} failed (UNAUTHENTICATED): wrong bearer")
    missing = await asyncio.to_thread(ScorerLink(address, token=TOKEN), "/a/missing", "v3")
    assert missing == f"LoadAdapter at {address} failed (NOT_FOUND): no adapter at /a/missing"


def test_an_unreachable_scorer_is_a_reason() -> None:
    # Nothing listens on port 9 here.
    problem = ScorerLink("127.0.0.1:9", timeout=10)("/adapters/v1", "v1")
    assert problem.startswith("LoadAdapter at 127.0.0.1:9 failed (UNAVAILABLE): ")
