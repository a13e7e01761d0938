"""The status interceptor: every call of every service ends with a meaningful code and
exactly one log line when it fails.

Invariants:
- an exception leaving a servicer, unary or streaming, ends the call with the code of
  `ftreview.core.status` (INVALID_ARGUMENT, NOT_FOUND, ... with google.rpc details); an
  exception the table does not know ends INTERNAL with a generic message, never UNKNOWN;
- bytes that do not decode as the method's request message end INVALID_ARGUMENT ("request
  is not a valid ftreview.v1.X: ..."), before any servicer runs: gRPC would otherwise log a
  traceback and answer UNKNOWN. This includes messages nested beyond protobuf's own
  recursion limit;
- one log line per failed call: a caller's mistake at INFO, a dependency's failure at
  WARNING, both without traceback; an unexpected exception at ERROR with its traceback. A
  call the servicer aborted itself is logged the same way, from the code it set;
- a call cancelled by its caller (or its deadline) is not a failure: nothing is logged.

A synchronous unary handler (the generated base of a method a servicer does not implement
yet) runs in a worker thread, as gRPC would run it, inside the same guard.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from ftreview.core.errors import InvalidInput
from ftreview.core.status import CALLER_MISTAKES, error_status, status_code

log = logging.getLogger("ftreview.calls")

Behavior = Callable[..., Any]


class _Undecodable:
    """Stands in for a request that did not decode, so the call can refuse it with a status
    (a deserializer that raises makes gRPC answer UNKNOWN, before any interceptor code)."""

    def __init__(self, error: InvalidInput) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None, type_name: str) -> Callable[..., Any]:
    def deserialize(data: bytes) -> Any:
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except (DecodeError, RecursionError, ValueError) as error:
            return _Undecodable(
                InvalidInput("", f"request is not a valid {type_name}: {error or 'bad bytes'}")
            )

    return deserialize


def _request_type_name(deserializer: Any) -> str:
    # Generated stubs pass `Message.FromString`, a bound classmethod of the request class.
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "") or "request message")


class StatusInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every method handler: decode errors and exceptions become statuses."""

    def __init__(self) -> None:
        # A method's registered handler is the same object on every call: inspect and wrap
        # it once, not on every call (kept with the handler, so a reused id never matches).
        self._wrapped: dict[int, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        kept = self._wrapped.get(id(handler))
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = self._wrap(handler, str(handler_call_details.method).lstrip("/"))
        self._wrapped[id(handler)] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        field = (
            ("stream_stream" if handler.response_streaming else "stream_unary")
            if handler.request_streaming
            else ("unary_stream" if handler.response_streaming else "unary_unary")
        )
        behavior: Behavior = getattr(handler, field)
        if inspect.isasyncgenfunction(behavior):
            wrapped: Behavior = _streaming(behavior, method, handler.request_streaming)
        elif inspect.iscoroutinefunction(behavior):
            wrapped = _unary(behavior, method, handler.request_streaming)
        elif not handler.request_streaming and not handler.response_streaming:
            wrapped = _unary(_in_thread(behavior), method, False)
        else:
            return handler
        type_name = _request_type_name(handler.request_deserializer)
        return handler._replace(
            request_deserializer=_tolerant(handler.request_deserializer, type_name),
            **{field: wrapped},
        )


def _in_thread(behavior: Behavior) -> Behavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await asyncio.to_thread(behavior, request, context)

    return call


def _unary(behavior: Behavior, method: str, request_streaming: bool) -> Behavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(_checked(request, request_streaming), context)
        except BaseException as error:
            await _end(error, method, context)
            raise

    return call


def _streaming(behavior: Behavior, method: str, request_streaming: bool) -> Behavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for response in behavior(_checked(request, request_streaming), context):
                yield response
        except BaseException as error:
            await _end(error, method, context)
            raise

    return call


def _checked(request: Any, request_streaming: bool) -> Any:
    if not request_streaming:
        if isinstance(request, _Undecodable):
            raise request.error
        return request
    return _checked_stream(request)


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Undecodable):
            raise request.error
        yield request


async def _end(
    error: BaseException, method: str, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    """Logs the failure once and aborts with its status (re-raises what is not ours)."""
    if isinstance(error, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)):
        return
    if isinstance(error, grpc.aio.AbortError):
        # The servicer aborted with its own status: only the log line is owed.
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            _log_failure(method, code, str(context.details() or ""))
        return
    code = status_code(error)
    if code is None:
        log.error("%s failed unexpectedly", method, exc_info=error)
    else:
        _log_failure(method, code, str(error))
    await context.abort_with_status(rpc_status.to_status(error_status(error, method=method)))


def _log_failure(method: str, code: grpc.StatusCode, message: str) -> None:
    level = logging.INFO if code in CALLER_MISTAKES else logging.WARNING
    log.log(level, "%s ended %s: %s", method, code.name, message)
