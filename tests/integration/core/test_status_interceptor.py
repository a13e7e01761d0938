"""The status interceptor on a real grpc.aio server: every entry of the table reaches the
client with its code, message and details, on unary and streaming calls alike; undecodable
bytes are INVALID_ARGUMENT; and each failed call leaves exactly one log line (issue 7, items
6 and 9)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from ftreview.core.interceptor import StatusInterceptor
from ftreview.core.status import STATUS_BY_ERROR, error_status
from google.protobuf import wrappers_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.unit.core.test_status import EXAMPLES

StringValue = wrappers_pb2.StringValue
CALLS_LOG = "ftreview.calls"


class Raiser:
    """Raises `error` (after `before` stream items); `abort` ends the call itself."""

    error: BaseException | None = None
    abort_with: Any = None
    before = 0

    async def unary(self, request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
        if self.abort_with is not None:
            await context.abort_with_status(rpc_status.to_status(self.abort_with))
        if self.error is not None:
            raise self.error
        return StringValue(value=f"echo {request.value}")

    async def stream(
        self, request: StringValue, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[StringValue]:
        for index in range(self.before):
            yield StringValue(value=str(index))
        if self.error is not None:
            raise self.error


@pytest.fixture
async def raiser() -> AsyncIterator[tuple[Raiser, grpc.aio.Channel]]:
    target = Raiser()
    kwargs = {
        "request_deserializer": StringValue.FromString,
        "response_serializer": StringValue.SerializeToString,
    }
    handler = grpc.method_handlers_generic_handler(
        "test.Raiser",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(target.unary, **kwargs),
            "Stream": grpc.unary_stream_rpc_method_handler(target.stream, **kwargs),
        },
    )
    server = grpc.aio.server(interceptors=[StatusInterceptor()])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield target, channel
    await channel.close()
    await server.stop(None)


def _unary(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        "/test.Raiser/Unary",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


def _stream(channel: grpc.aio.Channel) -> grpc.aio.UnaryStreamMultiCallable:
    return channel.unary_stream(
        "/test.Raiser/Stream",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


def _call_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == CALLS_LOG]


async def _once_logged(caplog: pytest.LogCaptureFixture, seconds: float = 5.0) -> None:
    """Waits for the server's line about the call: when the servicer aborted, the status is
    on its way to the client before the interceptor sees the abort and logs it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not _call_records(caplog) and loop.time() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", list(STATUS_BY_ERROR), ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", ["unary", "stream"])
async def test_each_error_reaches_the_client_with_its_code_and_details(
    raiser: tuple[Raiser, grpc.aio.Channel],
    caplog: pytest.LogCaptureFixture,
    kind: type[Exception],
    shape: str,
) -> None:
    target, channel = raiser
    target.error = EXAMPLES[kind]
    target.before = 2
    caplog.set_level(logging.INFO, CALLS_LOG)
    received: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if shape == "unary":
            await _unary(channel)(StringValue(value="x"))
        else:
            async for item in _stream(channel)(StringValue(value="x")):
                received.append(item.value)
    assert caught.value.code() == STATUS_BY_ERROR[kind]
    assert caught.value.details() == str(EXAMPLES[kind])
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.details
    if shape == "stream":
        assert received == ["0", "1"], "what was sent before the error still arrives"
    if kind.__name__ == "InvalidInput":
        bad = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad)
        assert bad.field_violations[0].field == "conversation.nodes[2]"
    (record,) = _call_records(caplog)
    assert record.levelno in (logging.INFO, logging.WARNING) and record.exc_info is None


@pytest.mark.parametrize("shape", ["unary", "stream"])
async def test_an_unexpected_exception_is_internal_and_logged_once_with_its_traceback(
    raiser: tuple[Raiser, grpc.aio.Channel], caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    target, channel = raiser
    target.error = KeyError("secret internals")
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if shape == "unary":
            await _unary(channel)(StringValue(value="x"))
        else:
            async for _ in _stream(channel)(StringValue(value="x")):
                pass
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internals" not in (caught.value.details() or "")
    assert "test.Raiser/" in (caught.value.details() or "")
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].levelno == logging.ERROR and errors[0].exc_info is not None


async def test_a_call_the_servicer_aborted_keeps_its_status_and_logs_one_line(
    raiser: tuple[Raiser, grpc.aio.Channel], caplog: pytest.LogCaptureFixture
) -> None:
    from ftreview.core.errors import Unavailable

    target, channel = raiser
    stats = error_details_pb2.DebugInfo(detail="the call's own report")
    target.abort_with = error_status(Unavailable("engine down"), [stats])
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _unary(channel)(StringValue(value="x"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(caught.value)
    first = error_details_pb2.DebugInfo()
    assert status is not None and status.details[0].Unpack(first)
    await _once_logged(caplog)
    records = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "asyncio"]
    assert [(r.name, r.levelno, r.exc_info) for r in records] == [
        (CALLS_LOG, logging.WARNING, None)
    ]
    assert "UNAVAILABLE" in records[0].getMessage()


@pytest.mark.parametrize("path", ["/test.Raiser/Unary", "/test.Raiser/Stream"])
async def test_undecodable_bytes_are_invalid_argument_naming_the_message(
    raiser: tuple[Raiser, grpc.aio.Channel], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    _, channel = raiser
    caplog.set_level(logging.INFO)
    garbage = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, a length beyond the message
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if path.endswith("Unary"):
            await channel.unary_unary(path)(garbage)
        else:
            async for _ in channel.unary_stream(path)(garbage):
                pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request is not a valid google.protobuf.StringValue" in (caught.value.details() or "")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_good_call_is_untouched_and_not_logged(
    raiser: tuple[Raiser, grpc.aio.Channel], caplog: pytest.LogCaptureFixture
) -> None:
    _, channel = raiser
    caplog.set_level(logging.INFO, CALLS_LOG)
    assert (await _unary(channel)(StringValue(value="hi"))).value == "echo hi"
    assert not _call_records(caplog)


async def test_a_method_is_wrapped_once_and_each_method_on_its_own() -> None:
    async def unary(request: StringValue, context: Any) -> StringValue:
        return request

    first = grpc.unary_unary_rpc_method_handler(unary, request_deserializer=StringValue.FromString)
    second = grpc.unary_unary_rpc_method_handler(unary, request_deserializer=StringValue.FromString)
    interceptor = StatusInterceptor()

    async def wrap(handler: Any) -> Any:
        async def continuation(details: Any) -> Any:
            return handler

        return await interceptor.intercept_service(continuation, SimpleNamespace(method="/t.T/M"))

    wrapped = await wrap(first)
    assert wrapped is not first and wrapped.unary_unary is not unary
    assert await wrap(first) is wrapped, "the same handler is wrapped once"
    assert await wrap(second) is not wrapped, "another method gets its own wrapping"
