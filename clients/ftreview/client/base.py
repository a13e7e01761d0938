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
whose caller stops iterating cancels its call.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import grpc
import grpc.aio

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

# Candidates carry per-token scores and their context: a long conversation's list can pass
# gRPC's 4 MiB default. 64 MiB matches what the servers accept.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

# A client's stubs by name, each made from a channel: {"review": ReviewStub, ...}.
Stubs = dict[str, Callable[[Any], Any]]
T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Call(Generic[T]):
    """A unary RPC: `stub.method(request)`, its reply read into a `T`.

    `stub` names one of the runner's stubs (`stubs` of its class); `long` picks the long
    deadline (calls that run the model or an HTTP endpoint).
    """

    stub: str
    method: str
    request: Any
    read: Callable[[Any], T]
    long: bool = False


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
    """What both runners share: address, deadlines, token metadata and who is called.

    A client class lists its calls first (`class ReviewClient(ReviewCalls, SyncRunner)`),
    and they name the service (`service`, for error messages), how to find its address
    (`resolve_address`) and the stubs it calls (`stubs`: name -> stub class).
    """

    service: ClassVar[str]
    stubs: ClassVar[Stubs]
    resolve_address: Callable[[str | None], str]

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        long_timeout: float = DEFAULT_LONG_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = self.resolve_address(address)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self._credentials = credentials
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

    def _error(self, error: grpc.RpcError) -> FtreviewError:
        return from_rpc_error(error, service=self.service, address=self.address)

    def _start(self, stubs: dict[str, Any], call: Call[Any]) -> Any:
        timeout = self.long_timeout if call.long else self.timeout
        method = getattr(stubs[call.stub], call.method)
        return method(call.request, timeout=timeout, metadata=self._metadata)

    def _open(self, stubs: dict[str, Any], call: StreamCall[Any]) -> Any:
        return getattr(stubs[call.stub], call.method)(call.request, metadata=self._metadata)


class SyncRunner(_Runner):
    """Runs descriptions on a blocking channel. Use as a context manager (or `close()`)."""

    def __init__(self, address: str | None = None, **options: Any) -> None:
        super().__init__(address, **options)
        if self._credentials is not None:
            channel = grpc.secure_channel(self.address, self._credentials, _CHANNEL_OPTIONS)
        else:
            channel = grpc.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
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

    def _iterate(self, call: StreamCall[T]) -> Iterator[T]:
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
        if self._credentials is not None:
            channel = grpc.aio.secure_channel(self.address, self._credentials, _CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
        self._channel: grpc.aio.Channel = channel
        self._stubs = {name: make(channel) for name, make in self.stubs.items()}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _run(self, call: Call[T]) -> T:
        try:
            reply = await self._start(self._stubs, call)
        except grpc.RpcError as error:
            raise self._error(error) from error
        return call.read(reply)

    async def _iterate(self, call: StreamCall[T]) -> AsyncIterator[T]:
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
    an `Iterator[T]` on a `SyncRunner`, an `AsyncIterator[T]` on an `AsyncRunner`."""

    def __init__(self, describe: Callable[Concatenate[Any, P], StreamCall[T]]) -> None:
        self._describe = describe
        functools.update_wrapper(self, describe)  # type: ignore[arg-type]

    @overload
    def __get__(self, client: None, owner: type) -> stream[P, T]: ...
    @overload
    def __get__(self, client: AsyncRunner, owner: type) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(self, client: SyncRunner, owner: type) -> Callable[P, Iterator[T]]: ...
    def __get__(self, client: Any, owner: type) -> Any:
        if client is None:
            return self
        describe = self._describe

        def open_stream(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._iterate(describe(client, *args, **kwargs))

        return functools.wraps(describe)(open_stream)
