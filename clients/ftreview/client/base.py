"""One description of each RPC, run by a blocking or an asyncio runner.

Invariant: a client method is written once, as a *description* (`Call`: which stub method,
the request built from plain arguments, how to read the reply, which deadline), and the
blocking and asyncio clients both run that same description. So the two cannot drift: a new
argument, a changed default or a fixed conversion reaches both, and mypy types each side
(`ReviewClient.approve(...) -> list[Candidate]`, `AsyncReviewClient.approve(...)` awaitable)
from the one signature. The shape follows httpx's `BaseClient` under `Client` and
`AsyncClient`; the difference is that here the per-call methods are shared too, through the
`unary` and `stream` descriptors.

The runners are also the one error boundary: every `grpc.RpcError`, from unary calls and
from streams, leaves as a `ftreview.errors.FtreviewError` raised `from` it, and a stream
whose caller stops iterating cancels its call. Their channel comes from
`ftreview.core.security.client_channel(_aio)`: TLS or plain text, the message-size limits
and the bearer token, attached once per channel.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import grpc
import grpc.aio

from ftreview.core.defaults import MAX_MESSAGE_BYTES
from ftreview.core.security import client_channel, client_channel_aio
from ftreview.errors import FtreviewError, from_rpc_error

__all__ = [
    "DEFAULT_LONG_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "MAX_MESSAGE_BYTES",
    "AsyncRunner",
    "Call",
    "StreamCall",
    "Stubs",
    "SyncRunner",
    "as_is",
    "stream",
    "unary",
]

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_LONG_TIMEOUT_S = 900.0

# A client's stubs by name, each made from a channel: {"review": ReviewStub, ...}.
Stubs = dict[str, Callable[[Any], Any]]
T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Call(Generic[T]):
    """A unary RPC: `stub.method(request)`, its reply read into a `T`.

    `stub` names one of the runner's stubs (`stubs` of its class); `long` picks the long
    deadline (calls that run the model or an HTTP endpoint); `timeout`, when set, is this
    call's own deadline in seconds instead.
    """

    stub: str
    method: str
    request: Any
    read: Callable[[Any], T]
    long: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class StreamCall(Generic[T]):
    """A server-streaming RPC whose messages are `T`s, passed on as they arrive."""

    stub: str
    method: str
    request: Any


def as_is(reply: T) -> T:
    """The reader of a call whose result is the reply message itself."""
    return reply


class _Runner:
    """What both runners share: address, deadlines, transport and who is called.

    A client class lists its calls first (`class ReviewClient(ReviewCalls, SyncRunner)`),
    and they name the service (`service`, for error messages), how to find its address
    (`resolve_address`) and the stubs it calls (`stubs`: name -> stub class).

    A deadline of None means none: the call runs until it ends or is cancelled.
    """

    service: ClassVar[str]
    stubs: ClassVar[Stubs]
    resolve_address: Callable[[str | None], str]

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        long_timeout: float | None = DEFAULT_LONG_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.address = self.resolve_address(address)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self._transport: dict[str, Any] = {
            "credentials": credentials,
            "token": token,
            "max_message_bytes": max_message_bytes,
        }

    def _error(self, error: grpc.RpcError) -> FtreviewError:
        return from_rpc_error(error, service=self.service, address=self.address)

    def _start(self, stubs: dict[str, Any], call: Call[Any]) -> Any:
        timeout = call.timeout
        if timeout is None:
            timeout = self.long_timeout if call.long else self.timeout
        return getattr(stubs[call.stub], call.method)(call.request, timeout=timeout)

    def _open(self, stubs: dict[str, Any], call: StreamCall[Any]) -> Any:
        return getattr(stubs[call.stub], call.method)(call.request)


class SyncRunner(_Runner):
    """Runs descriptions on a blocking channel. Use as a context manager (or `close()`)."""

    def __init__(self, address: str | None = None, **options: Any) -> None:
        super().__init__(address, **options)
        channel = client_channel(self.address, **self._transport)
        self._channel: grpc.Channel = channel
        self._stubs = {name: make(channel) for name, make in self.stubs.items()}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _run(self, call: Call[T]) -> T:
        try:
            reply = self._start(self._stubs, call)
        except grpc.RpcError as error:
            raise self._error(error) from error
        return call.read(reply)

    def _iterate(self, call: StreamCall[T]) -> Generator[T, None, None]:
        started = None
        try:
            started = self._open(self._stubs, call)
            yield from started
        except grpc.RpcError as error:
            raise self._error(error) from error
        finally:
            if started is not None:
                started.cancel()


class AsyncRunner(_Runner):
    """Runs descriptions on an asyncio channel. Use as an async context manager."""

    def __init__(self, address: str | None = None, **options: Any) -> None:
        super().__init__(address, **options)
        channel = client_channel_aio(self.address, **self._transport)
        self._channel: grpc.aio.Channel = channel
        self._stubs = {name: make(channel) for name, make in self.stubs.items()}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_until_ready(self, timeout: float) -> bool:
        """Whether the channel connected within `timeout` seconds (it goes on trying)."""
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self, call: Call[T]) -> T:
        try:
            reply = await self._start(self._stubs, call)
        except grpc.RpcError as error:
            raise self._error(error) from error
        return call.read(reply)

    async def _iterate(self, call: StreamCall[T]) -> AsyncGenerator[T, None]:
        started = None
        try:
            started = self._open(self._stubs, call)
            async for message in started:
                yield message
        except grpc.RpcError as error:
            raise self._error(error) from error
        finally:
            if started is not None:
                started.cancel()


class unary(Generic[P, T]):
    """Turns a description `(self, ...) -> Call[T]` into a client method.

    On a `SyncRunner` the method returns `T`; on an `AsyncRunner` it returns an awaitable
    of `T`; both take the description's arguments.
    """

    def __init__(self, describe: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self._describe = describe
        functools.update_wrapper(self, describe)  # type: ignore[arg-type]

    @overload
    def __get__(self, client: None, owner: type) -> unary[P, T]: ...
    @overload
    def __get__(self, client: AsyncRunner, owner: type) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, client: SyncRunner, owner: type) -> Callable[P, T]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        describe = self._describe
        if isinstance(client, AsyncRunner):

            async def run_async(*args: P.args, **kwargs: P.kwargs) -> T:
                return await client._run(describe(client, *args, **kwargs))

            return functools.wraps(describe)(run_async)

        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = client._run(describe(client, *args, **kwargs))
            return result

        return functools.wraps(describe)(run)


class stream(Generic[P, T]):
    """Turns a description `(self, ...) -> StreamCall[T]` into a streaming client method:
    a generator of `T` on a `SyncRunner`, an async generator of `T` on an `AsyncRunner`
    (`close()` / `aclose()` it to cancel the call at once)."""

    def __init__(self, describe: Callable[Concatenate[Any, P], StreamCall[T]]) -> None:
        self._describe = describe
        functools.update_wrapper(self, describe)  # type: ignore[arg-type]

    @overload
    def __get__(self, client: None, owner: type) -> stream[P, T]: ...
    @overload
    def __get__(self, client: AsyncRunner, owner: type) -> Callable[P, AsyncGenerator[T, None]]: ...
    @overload
    def __get__(self, client: SyncRunner, owner: type) -> Callable[P, Generator[T, None, None]]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        describe = self._describe

        def open_stream(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._iterate(describe(client, *args, **kwargs))

        return functools.wraps(describe)(open_stream)
