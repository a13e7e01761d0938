"""Every RPC of every service against hostile input: generated messages, raw bytes that do
not decode, and hand-made extremes (deep nesting, a megabyte of content, timestamps outside
any range). A client's mistake must end with a status that names it — never UNKNOWN or
INTERNAL — and a refused call must leave everything the Review stores as it was.

The services run as real processes (`python -m scorer_service`, `python -m review_service`)
on 127.0.0.1 port 0 with the real embedded model, exactly as `ftreview serve` starts them.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hostile import messages
from tests.support.services import local_services

pytestmark = pytest.mark.model

BAD_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
# Calls and statuses per RPC, printed at the end (the closing note quotes them).
TALLY: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("fuzz-home")
    try:
        with local_services(home) as running:
            yield {"scorer": running.scorer_address, "review": running.review_address}
    finally:
        if TALLY:
            lines = [f"{rpc}: {dict(codes)}" for rpc, codes in sorted(TALLY.items())]
            report = os.environ.get("FTREVIEW_FUZZ_REPORT")
            if report:
                Path(report).write_text(json.dumps({k: dict(v) for k, v in TALLY.items()}))
            print("\nfuzzed calls per RPC:\n  " + "\n  ".join(lines))


def _methods() -> list[tuple[str, ServiceDescriptor, MethodDescriptor]]:
    found = []
    for server, files in (
        ("scorer", (scorer_pb2, activity_pb2)),
        ("review", (review_pb2, activity_pb2)),
    ):
        for module in files:
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    found.append((server, service, method))
    return found


METHODS = _methods()
IDS = [f"{server}:{service.name}.{method.name}" for server, service, method in METHODS]


def _state(channel: grpc.Channel) -> bytes:
    """Everything the Review stores that a client can see, to compare around a refusal."""
    unary = _raw(channel, "/ftreview.v1.Review/ListCandidates")
    every = review_pb2.ListCandidatesRequest(
        statuses=[
            review_pb2.CANDIDATE_STATUS_PENDING,
            review_pb2.CANDIDATE_STATUS_APPROVED,
            review_pb2.CANDIDATE_STATUS_REJECTED,
        ]
    )
    parts = [unary(every.SerializeToString(), timeout=30)]
    for name in ("ListTrained", "GetConfig"):
        parts.append(_raw(channel, f"/ftreview.v1.Review/{name}")(b"", timeout=30))
    return b"|".join(parts)


def _raw(channel: grpc.Channel, path: str, stream: bool = False) -> Any:
    if stream:
        return channel.unary_stream(path)
    return channel.unary_unary(path)


def _call(channel: grpc.Channel, method: MethodDescriptor, payload: bytes) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.server_streaming:
            # A valid watch streams until the deadline; what matters is how it ends.
            for _ in _raw(channel, path, stream=True)(payload, timeout=1.5):
                pass
        else:
            _raw(channel, path)(payload, timeout=60)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _check(services: dict[str, str], server: str, method: MethodDescriptor, payload: bytes) -> None:
    with grpc.insecure_channel(services[server]) as channel:
        review = grpc.insecure_channel(services["review"])
        before = _state(review)
        code = _call(channel, method, payload)
        TALLY[f"{method.containing_service.name}.{method.name}"][code.name] += 1
        assert code not in BAD_CODES, f"{method.full_name} ended {code.name}"
        if code != grpc.StatusCode.OK and server == "review":
            assert _state(review) == before, f"refused {method.full_name} changed stored state"
        review.close()


@pytest.mark.parametrize(("server", "service", "method"), METHODS, ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_messages(
    services: dict[str, str],
    server: str,
    service: ServiceDescriptor,
    method: MethodDescriptor,
    data: st.DataObject,
) -> None:
    request: Message = data.draw(messages(method.input_type))
    _check(services, server, method, request.SerializeToString())


@pytest.mark.parametrize(("server", "service", "method"), METHODS, ids=IDS)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.binary(min_size=1, max_size=64))
def test_undecodable_bytes(
    services: dict[str, str],
    server: str,
    service: ServiceDescriptor,
    method: MethodDescriptor,
    payload: bytes,
) -> None:
    _check(services, server, method, payload)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, encoded by hand: the Python runtime itself refuses to
    build messages nested as deep as a hostile client can send them."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _nested_request(branches: int) -> bytes:
    """A request whose field 1 is a Conversation with one leaf under `branches` branches
    (Node.branch = 4, Branch.label = 1, Branch.children = 2, Leaf.role = 1)."""
    user_leaf = _varint(1 << 3) + _varint(conversation_pb2.ROLE_USER) + _field(2, b"hi")
    node = _field(3, user_leaf)
    for _ in range(branches):
        node = _field(4, _field(1, b"b") + _field(2, node))
    conversation = _field(1, b"deep") + _field(2, node)
    return _field(1, conversation)


def _hand_made() -> list[Any]:
    huge = conversation_pb2.Conversation(
        id="huge",
        nodes=[
            conversation_pb2.Node(
                leaf=conversation_pb2.Leaf(role=conversation_pb2.ROLE_USER, content="x" * 8_000_000)
            )
        ],
    )
    far = review_pb2.ApproveRequest()
    far.timestamps.add(seconds=2**62, nanos=0)
    negative_nanos = review_pb2.RejectRequest()
    negative_nanos.timestamps.add(seconds=1, nanos=-5)
    cases = [
        ("scorer", "ScoreConversation", scorer_pb2.ScoreConversationRequest(conversation=huge)),
        ("review", "Ingest", review_pb2.IngestRequest(conversation=huge)),
        ("review", "Approve", far),
        ("review", "Reject", negative_nanos),
        ("review", "SetThreshold", review_pb2.SetThresholdRequest(steps=2**31 - 1)),
        ("review", "SetThreshold", review_pb2.SetThresholdRequest(steps=-(2**31))),
        ("review", "SetThreshold", review_pb2.SetThresholdRequest(value=float("nan"))),
    ]
    encoded = [
        pytest.param(server, name, message.SerializeToString(), id=f"{name}-{i}")
        for i, (server, name, message) in enumerate(cases)
    ]
    # Deeper than the documented nesting limit but decodable (40), and deeper than
    # protobuf's own decoder accepts (60): both are the client's mistake.
    for branches in (40, 60):
        for server, name in (
            ("scorer", "ScoreConversation"),
            ("scorer", "Tokenize"),
            ("review", "Ingest"),
        ):
            encoded.append(
                pytest.param(server, name, _nested_request(branches), id=f"{name}-{branches}-deep")
            )
    return encoded


@pytest.mark.parametrize(("server", "name", "payload"), _hand_made())
def test_hand_made_extremes_are_invalid_argument(
    services: dict[str, str], server: str, name: str, payload: bytes
) -> None:
    service = "Scorer" if server == "scorer" else "Review"
    descriptor = (scorer_pb2 if server == "scorer" else review_pb2).DESCRIPTOR
    method = descriptor.services_by_name[service].methods_by_name[name]
    with grpc.insecure_channel(services[server]) as channel:
        code = _call(channel, method, payload)
    TALLY[f"{service}.{name}"][code.name] += 1
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{service}.{name} ended {code.name}"
