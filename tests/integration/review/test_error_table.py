"""Every entry of the servicer's error table, through a real gRPC server: the client gets
the table's status code, the message, and google.rpc details; anything else is INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from review_service import errors
from review_service.servicer import ERROR_STATUS, _unary

EXAMPLES: dict[type[errors.ReviewError], errors.ReviewError] = {
    errors.InvalidArgument: errors.InvalidArgument("threshold", "must be finite"),
    errors.NotFound: errors.NotFound("candidate", "2026-01-01T00:00:00.000000001Z", "no such"),
    errors.ConfigUnreadable: errors.ConfigUnreadable("/h/config.json5", 3, 7, "bad token"),
    errors.FailedPrecondition: errors.FailedPrecondition("x", "already sent"),
    errors.AlreadyExists: errors.AlreadyExists("request id used"),
    errors.ScorerUnavailable: errors.ScorerUnavailable("scorer down"),
    errors.EndpointError: errors.EndpointError("endpoint down"),
    errors.DeadlineExceeded: errors.DeadlineExceeded("too slow"),
    errors.ScorerFailed: errors.ScorerFailed("scorer broke"),
}


class Raiser:
    error: Exception = RuntimeError()

    @_unary
    async def Call(self, request: Any, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        raise self.error


@pytest.fixture
async def raiser() -> AsyncIterator[tuple[Raiser, grpc.aio.UnaryUnaryMultiCallable]]:
    target = Raiser()
    handler = grpc.method_handlers_generic_handler(
        "test.Raiser",
        {
            "Call": grpc.unary_unary_rpc_method_handler(
                target.Call,
                request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=empty_pb2.Empty.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(
        "/test.Raiser/Call",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )
    yield target, call
    await channel.close()
    await server.stop(None)


def test_every_error_class_has_an_example() -> None:
    assert {kind for kind, _ in ERROR_STATUS} == set(EXAMPLES)


@pytest.mark.parametrize(
    ("kind", "code"), ERROR_STATUS, ids=lambda v: getattr(v, "__name__", str(v))
)
async def test_each_error_reaches_the_client_with_its_code_and_details(
    raiser: tuple[Raiser, grpc.aio.UnaryUnaryMultiCallable],
    kind: type[errors.ReviewError],
    code: grpc.StatusCode,
) -> None:
    target, call = raiser
    target.error = EXAMPLES[kind]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(empty_pb2.Empty())
    assert caught.value.code() == code
    assert caught.value.details() == EXAMPLES[kind].message
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.details
    if kind is errors.InvalidArgument:
        bad = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad)
        assert bad.field_violations[0].field == "threshold"


async def test_an_unexpected_exception_is_internal_never_unknown(
    raiser: tuple[Raiser, grpc.aio.UnaryUnaryMultiCallable],
) -> None:
    target, call = raiser
    target.error = KeyError("secret internals")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(empty_pb2.Empty())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internals" not in (caught.value.details() or "")
