"""The `serve` fixture: fake servers (see `fakes`) on 127.0.0.1 port 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from ftreview.v1 import activity_pb2_grpc, review_pb2_grpc, scorer_pb2_grpc

from tests.unit.clients.fakes import FakeActivities, FakeReview, FakeScorer

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """`serve(review=..., scorer=..., activities=...)` -> "127.0.0.1:PORT" of a fresh
    server."""
    servers: list[grpc.Server] = []

    def start(
        review: FakeReview | None = None,
        activities: FakeActivities | None = None,
        scorer: FakeScorer | None = None,
    ) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        if review is not None:
            review_pb2_grpc.add_ReviewServicer_to_server(review, server)
        if scorer is not None:
            scorer_pb2_grpc.add_ScorerServicer_to_server(scorer, server)
        if activities is not None:
            activity_pb2_grpc.add_ActivitiesServicer_to_server(activities, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)
