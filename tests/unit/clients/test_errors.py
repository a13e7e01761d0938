"""The one error boundary: every status code becomes its typed exception, keeping the
server's message, its google.rpc details and the wire error as the cause."""

from __future__ import annotations

import grpc
import pytest
from ftreview import errors
from ftreview.client import AsyncReviewClient, ReviewClient
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from tests.unit.clients.conftest import Serve
from tests.unit.clients.fakes import FakeReview


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ()


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK])
def test_every_status_code_has_its_own_exception(code: grpc.StatusCode) -> None:
    error = errors.from_rpc_error(_FakeRpcError(code, "what went wrong"), service="Review")
    assert type(error) is errors.ERROR_BY_CODE[code]
    assert error.code == code
    assert isinstance(error, errors.FtreviewError)
    assert str(error) == "what went wrong"
    assert error.service == "Review"


def test_the_codes_a_user_meets_have_the_names_they_expect() -> None:
    table = errors.ERROR_BY_CODE
    assert table[grpc.StatusCode.NOT_FOUND] is errors.NotFound
    assert table[grpc.StatusCode.INVALID_ARGUMENT] is errors.InvalidArgument
    assert table[grpc.StatusCode.FAILED_PRECONDITION] is errors.FailedPrecondition
    assert table[grpc.StatusCode.UNAVAILABLE] is errors.Unavailable
    assert table[grpc.StatusCode.DEADLINE_EXCEEDED] is errors.DeadlineExceeded
    assert table[grpc.StatusCode.ALREADY_EXISTS] is errors.AlreadyExists


def test_unreachable_tells_a_missing_server_from_one_that_reports_a_backend_down() -> None:
    missing = errors.from_rpc_error(
        _FakeRpcError(
            grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
            "Failed to connect to remote host: Connection refused",
        )
    )
    backend_down = errors.from_rpc_error(
        _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "the vLLM server at http://x:8000 is down")
    )
    assert isinstance(missing, errors.Unavailable) and missing.unreachable
    assert isinstance(backend_down, errors.Unavailable) and not backend_down.unreachable


def _bad_request_status() -> status_pb2.Status:
    violation = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="value", description="must be a finite positive number"
            )
        ]
    )
    packed = any_pb2.Any()
    packed.Pack(violation)
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message="threshold nan refused", details=[packed]
    )


def test_sync_client_raises_typed_error_with_message_details_and_cause(serve: Serve) -> None:
    fake = FakeReview()
    fake.fail = _bad_request_status()
    with ReviewClient(serve(review=fake)) as client:
        with pytest.raises(errors.InvalidArgument) as caught:
            client.set_threshold(float("nan"))
    error = caught.value
    assert error.message == "threshold nan refused"
    assert error.field_violations == (
        errors.FieldViolation("value", "must be a finite positive number"),
    )
    assert "value: must be a finite positive number" in str(error)
    assert isinstance(error.__cause__, grpc.RpcError)
    assert error.service == "Review"


async def test_async_client_raises_the_same_typed_error(serve: Serve) -> None:
    fake = FakeReview()
    fake.fail = status_pb2.Status(code=code_pb2.NOT_FOUND, message="no candidate 42")
    async with AsyncReviewClient(serve(review=fake)) as client:
        with pytest.raises(errors.NotFound, match="no candidate 42") as caught:
            await client.approve(42)
    assert isinstance(caught.value.__cause__, grpc.aio.AioRpcError)


async def test_a_stream_raises_typed_errors_too() -> None:
    async with AsyncReviewClient("127.0.0.1:1") as client:
        with pytest.raises(errors.Unavailable) as caught:
            async for _ in client.watch_candidates():
                pass
    assert caught.value.unreachable
    assert caught.value.address == "127.0.0.1:1"
