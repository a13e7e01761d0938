"""Typed Python clients of the Scorer and the Review service, sync and asyncio.

`ScorerClient`, `ReviewClient` (blocking) and `AsyncScorerClient`, `AsyncReviewClient`
(asyncio) wrap the generated stubs. What they guarantee, so that callers need not:

- **Plain arguments.** A reply is named by its `timestamp_ns` (int nanoseconds, the reply's
  identity everywhere in ftreview); statuses, orders, variants and export formats are short
  lower-case strings (`"pending"`, `"divergence"`, `"without"`, `"openai"`). Requests are
  built here, in one place per RPC, shared by the sync and async classes.
- **Proto results.** Results are the generated messages (`Candidate`, `Config`,
  `FinetuneScoringStats`, `Activity`, ...), typed by the committed `.pyi` stubs; a repeated
  field comes back as a `list`. Use `ftreview.core.wire.timestamp_ns(candidate.timestamp)` for a
  reply's id and `status_name()` / `reason_name()` for the enums.
- **Deadlines by default.** Every unary call has one: `timeout` (30 s) for quick calls,
  `long_timeout` (15 min) for calls that run the model or an HTTP endpoint (scoring,
  alternates, send). Streams have none: they are meant to stay open until the caller stops
  iterating, which cancels the call.
- **One error boundary.** A failed call raises a `ftreview.errors.FtreviewError` subclass
  (`NotFound`, `InvalidArgument`, `Unavailable`, ...), chained to the `grpc.RpcError`. No
  `grpc.RpcError` escapes, not from streams either.
- **Addresses.** The argument, else `FTREVIEW_SCORER_ADDR` / `FTREVIEW_REVIEW_ADDR`, else
  127.0.0.1:50051 (Scorer) / 127.0.0.1:50052 (Review).

Activities: each server serves its own `Activities` stream. The Review service runs
scoring (mirroring the Scorer's activity under the same id, ending once the result is
stored) and sending; the Scorer runs alternates (and the scoring it mirrors).
`ReviewClient.watch_activities` merges both (the Scorer at `scorer_address`), leaving out
the Scorer's copy of scoring activities, so one subscription sees every piece of work a
review causes, once; a server that does not serve `Activities` is left out silently. The
merged stream sends one SNAPSHOT_END, after every source has finished its snapshot.

This module never imports a UI library: the CLI and the review screen both build on it.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ftreview.core.wire import to_timestamp
from ftreview.errors import FtreviewError, Unimplemented, from_rpc_error
from ftreview.v1 import (
    activity_pb2,
    activity_pb2_grpc,
    conversation_pb2,
    review_pb2,
    review_pb2_grpc,
    scorer_pb2,
    scorer_pb2_grpc,
)

__all__ = [
    "DEFAULT_REVIEW_ADDRESS",
    "DEFAULT_SCORER_ADDRESS",
    "AsyncReviewClient",
    "AsyncScorerClient",
    "CandidateOrder",
    "CandidateStatus",
    "ExportFormat",
    "ReviewClient",
    "ScorerClient",
    "Variant",
    "activity_state_name",
    "new_request_id",
    "reason_name",
    "resolve_review_address",
    "resolve_scorer_address",
    "status_name",
]

DEFAULT_SCORER_ADDRESS = "127.0.0.1:50051"
DEFAULT_REVIEW_ADDRESS = "127.0.0.1:50052"
SCORER_ADDRESS_ENV = "FTREVIEW_SCORER_ADDR"
REVIEW_ADDRESS_ENV = "FTREVIEW_REVIEW_ADDR"

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_LONG_TIMEOUT_S = 900.0

# Candidates carry per-token scores and their context: a long conversation's list can pass
# gRPC's 4 MiB default. 64 MiB matches what the servers accept.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

CandidateStatus = Literal["pending", "approved", "rejected", "sent"]
CandidateOrder = Literal["divergence", "time"]
ExportFormat = Literal["openai", "trl"]
Variant = Literal["with", "without"]

_STATUS_BY_NAME: dict[str, int] = {
    "pending": review_pb2.CANDIDATE_STATUS_PENDING,
    "approved": review_pb2.CANDIDATE_STATUS_APPROVED,
    "rejected": review_pb2.CANDIDATE_STATUS_REJECTED,
    "sent": review_pb2.CANDIDATE_STATUS_SENT,
}
_ORDER_BY_NAME: dict[str, int] = {
    "divergence": review_pb2.CANDIDATE_ORDER_DIVERGENCE,
    "time": review_pb2.CANDIDATE_ORDER_TIME,
}
_FORMAT_BY_NAME: dict[str, int] = {
    "openai": review_pb2.EXPORT_FORMAT_OPENAI,
    "trl": review_pb2.EXPORT_FORMAT_TRL,
}
_VARIANT_BY_NAME: dict[str, int] = {
    "with": scorer_pb2.VARIANT_WITH_MEMORIES,
    "without": scorer_pb2.VARIANT_WITHOUT_MEMORIES,
}
_REASON_NAMES: dict[int, str] = {
    scorer_pb2.NOT_CANDIDATE_REASON_UNSPECIFIED: "",
    scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD: "below_threshold",
    scorer_pb2.NOT_CANDIDATE_REASON_UNSET_TIMESTAMP: "unset_timestamp",
    scorer_pb2.NOT_CANDIDATE_REASON_ALREADY_TRAINED: "already_trained",
    scorer_pb2.NOT_CANDIDATE_REASON_TOO_LONG: "too_long",
    scorer_pb2.NOT_CANDIDATE_REASON_TOKENIZATION_MISMATCH: "tokenization_mismatch",
    scorer_pb2.NOT_CANDIDATE_REASON_NOT_REQUESTED: "not_requested",
}
_ACTIVITY_STATE_NAMES: dict[int, str] = {
    activity_pb2.ACTIVITY_STATE_UNSPECIFIED: "unknown",
    activity_pb2.ACTIVITY_STATE_RUNNING: "running",
    activity_pb2.ACTIVITY_STATE_SUCCEEDED: "succeeded",
    activity_pb2.ACTIVITY_STATE_FAILED: "failed",
    activity_pb2.ACTIVITY_STATE_CANCELLED: "cancelled",
}


def status_name(status: int) -> str:
    """`"pending"`, `"approved"`, `"rejected"`, `"sent"` (or `"unknown"`)."""
    for name, value in _STATUS_BY_NAME.items():
        if value == status:
            return name
    return "unknown"


def reason_name(reason: int) -> str:
    """Why a reply is not a candidate, snake_case (`"below_threshold"`); "" for none."""
    return _REASON_NAMES.get(reason, "unknown")


def activity_state_name(state: int) -> str:
    return _ACTIVITY_STATE_NAMES.get(state, "unknown")


def new_request_id() -> str:
    """A fresh activity id, to watch an activity before the call that runs it returns."""
    return uuid.uuid4().hex


def resolve_scorer_address(address: str | None = None) -> str:
    return address or os.environ.get(SCORER_ADDRESS_ENV) or DEFAULT_SCORER_ADDRESS


def resolve_review_address(address: str | None = None) -> str:
    return address or os.environ.get(REVIEW_ADDRESS_ENV) or DEFAULT_REVIEW_ADDRESS


def _lookup(table: dict[str, Any], name: str, what: str) -> Any:
    try:
        return table[name]
    except KeyError:
        choices = ", ".join(sorted(table))
        raise ValueError(f"unknown {what} {name!r} (one of: {choices})") from None


def _timestamps(ns: int | Iterable[int]) -> list[Any]:
    values = [ns] if isinstance(ns, int) else list(ns)
    return [to_timestamp(v) for v in values]


# ---- requests: one builder per RPC, shared by the sync and async clients -----------------


def _ingest_request(
    conversation: conversation_pb2.Conversation, request_id: str
) -> review_pb2.IngestRequest:
    return review_pb2.IngestRequest(conversation=conversation, request_id=request_id)


def _list_candidates_request(
    statuses: Iterable[str], order: str, conversation_id: str
) -> review_pb2.ListCandidatesRequest:
    return review_pb2.ListCandidatesRequest(
        statuses=[_lookup(_STATUS_BY_NAME, s, "status") for s in statuses],
        order=_lookup(_ORDER_BY_NAME, order, "order"),
        conversation_id=conversation_id,
    )


def _set_threshold_request(
    value: float | None, steps: int | None
) -> review_pb2.SetThresholdRequest:
    if (value is None) == (steps is None):
        raise ValueError("set_threshold takes exactly one of value or steps")
    if value is not None:
        return review_pb2.SetThresholdRequest(value=value)
    return review_pb2.SetThresholdRequest(steps=steps)


def _export_request(
    format: str,
    statuses: Iterable[str],
    timestamps_ns: Iterable[int],
    mark_trained: bool,
) -> review_pb2.ExportRequest:
    return review_pb2.ExportRequest(
        format=_lookup(_FORMAT_BY_NAME, format, "export format"),
        statuses=[_lookup(_STATUS_BY_NAME, s, "status") for s in statuses],
        timestamps=_timestamps(timestamps_ns),
        mark_trained=mark_trained,
    )


def _score_request(
    conversation: conversation_pb2.Conversation,
    threshold: float,
    exclude_ns: Iterable[int],
    only_ns: Iterable[int],
    request_id: str,
) -> scorer_pb2.ScoreConversationRequest:
    return scorer_pb2.ScoreConversationRequest(
        conversation=conversation,
        threshold=threshold,
        exclude=_timestamps(exclude_ns),
        only=_timestamps(only_ns),
        request_id=request_id,
    )


# ---- the error boundary -------------------------------------------------------------------

_T = TypeVar("_T")


class _Endpoint:
    """Who is called, for error messages and the boundary itself."""

    def __init__(self, service: str, address: str) -> None:
        self.service = service
        self.address = address

    def error(self, error: grpc.RpcError) -> FtreviewError:
        return from_rpc_error(error, service=self.service, address=self.address)

    def call(self, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except grpc.RpcError as error:
            raise self.error(error) from error

    async def acall(self, fn: Callable[[], Any]) -> Any:
        try:
            return await fn()
        except grpc.RpcError as error:
            raise self.error(error) from error

    def stream(self, start: Callable[[], Any]) -> Iterator[Any]:
        call = None
        try:
            call = start()
            yield from call
        except grpc.RpcError as error:
            raise self.error(error) from error
        finally:
            if call is not None:
                call.cancel()

    async def astream(self, start: Callable[[], Any]) -> AsyncIterator[Any]:
        call = None
        try:
            call = start()
            async for message in call:
                yield message
        except grpc.RpcError as error:
            raise self.error(error) from error
        finally:
            if call is not None:
                call.cancel()


def _metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def _sync_channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
    return grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)


def _async_channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)


_HEALTH_NAMES = {
    health_pb2.HealthCheckResponse.UNKNOWN: "UNKNOWN",
    health_pb2.HealthCheckResponse.SERVING: "SERVING",
    health_pb2.HealthCheckResponse.NOT_SERVING: "NOT_SERVING",
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN: "SERVICE_UNKNOWN",
}


# ---- merging activity streams -----------------------------------------------------------

_SNAPSHOT_END = activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END
_Event = activity_pb2.WatchActivitiesResponse


class _ActivityMerge:
    """Merges the activity streams of several servers into one, with one SNAPSHOT_END.

    `hidden` names, per source index, activity kinds to leave out (a Scorer's "score"
    activities, which the Review service mirrors under the same id). Until every source has
    finished its snapshot, the live events of the sources that
    have are held back, so that, as on one server, everything before SNAPSHOT_END is
    snapshot and everything after it is live. Pure bookkeeping, shared by the thread-based
    sync merge and the task-based async one.
    """

    def __init__(self, sources: int, hidden: dict[int, frozenset[str]] | None = None) -> None:
        self._in_snapshot = sources
        self._held: list[_Event] = []
        self._hidden = hidden or {}

    def event(self, event: _Event, source: int = 0) -> list[_Event]:
        if event.kind == _SNAPSHOT_END:
            return self._snapshot_done()
        if event.activity.kind in self._hidden.get(source, frozenset()):
            return []
        if self._in_snapshot and event.kind != activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT:
            self._held.append(event)
            return []
        return [event]

    def source_ended(self, error: FtreviewError | None, had_snapshot_end: bool) -> list[_Event]:
        """A source ended; an UNIMPLEMENTED one only leaves the merge."""
        if error is not None and not isinstance(error, Unimplemented):
            raise error
        return [] if had_snapshot_end else self._snapshot_done()

    def _snapshot_done(self) -> list[_Event]:
        self._in_snapshot -= 1
        if self._in_snapshot:
            return []
        released, self._held = self._held, []
        return [_Event(kind=_SNAPSHOT_END), *released]


# The Review service runs every scoring it starts as its own "score" activity, under the id
# it also gives the Scorer, relaying the Scorer's progress and ending only once the result
# is stored. Its activity is the one a client wants (a result read after the Scorer's ended
# could still be missing), so the Scorer's copy (source 1) is left out of the merge.
_REVIEW_MERGE_HIDDEN = {1: frozenset({"score"})}


# ---- Scorer ---------------------------------------------------------------------------------


class ScorerClient:
    """Blocking client of the Scorer (and the Activities service it serves)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        long_timeout: float = DEFAULT_LONG_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = resolve_scorer_address(address)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self._endpoint = _Endpoint("Scorer", self.address)
        self._metadata = _metadata(token)
        self._channel = _sync_channel(self.address, credentials)
        self._stub = scorer_pb2_grpc.ScorerStub(self._channel)
        self._activities = activity_pb2_grpc.ActivitiesStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> ScorerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def health(self, service: str = "") -> str:
        """The grpc health status name ("SERVING", "NOT_SERVING", ...)."""
        reply = self._endpoint.call(
            lambda: self._health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
            )
        )
        return _HEALTH_NAMES.get(reply.status, "UNKNOWN")

    def get_info(self) -> scorer_pb2.GetInfoResponse:
        reply: scorer_pb2.GetInfoResponse = self._endpoint.call(
            lambda: self._stub.GetInfo(
                scorer_pb2.GetInfoRequest(), timeout=self.timeout, metadata=self._metadata
            )
        )
        return reply

    def tokenize(
        self, conversation: conversation_pb2.Conversation, variant: Variant = "with"
    ) -> scorer_pb2.TokenizeResponse:
        request = scorer_pb2.TokenizeRequest(
            conversation=conversation, variant=_lookup(_VARIANT_BY_NAME, variant, "variant")
        )
        reply: scorer_pb2.TokenizeResponse = self._endpoint.call(
            lambda: self._stub.Tokenize(request, timeout=self.timeout, metadata=self._metadata)
        )
        return reply

    def score_conversation(
        self,
        conversation: conversation_pb2.Conversation,
        *,
        threshold: float = 0.0,
        exclude_ns: Iterable[int] = (),
        only_ns: Iterable[int] = (),
        request_id: str | None = None,
    ) -> scorer_pb2.ScoreConversationResponse:
        """Scores every reply (or `only_ns`); `threshold` 0 means the Scorer's 1e-7."""
        request = _score_request(
            conversation, threshold, exclude_ns, only_ns, request_id or new_request_id()
        )
        reply: scorer_pb2.ScoreConversationResponse = self._endpoint.call(
            lambda: self._stub.ScoreConversation(
                request, timeout=self.long_timeout, metadata=self._metadata
            )
        )
        return reply

    def generate_alternate(
        self,
        conversation: conversation_pb2.Conversation,
        reply_timestamp_ns: int,
        *,
        max_new_tokens: int = 0,
        request_id: str | None = None,
    ) -> scorer_pb2.GenerateAlternateResponse:
        request = scorer_pb2.GenerateAlternateRequest(
            conversation=conversation,
            reply_timestamp=to_timestamp(reply_timestamp_ns),
            max_new_tokens=max_new_tokens,
            request_id=request_id or new_request_id(),
        )
        reply: scorer_pb2.GenerateAlternateResponse = self._endpoint.call(
            lambda: self._stub.GenerateAlternate(
                request, timeout=self.long_timeout, metadata=self._metadata
            )
        )
        return reply

    def list_activities(self, limit: int = 0) -> list[activity_pb2.Activity]:
        reply = self._endpoint.call(
            lambda: self._activities.ListActivities(
                activity_pb2.ListActivitiesRequest(limit=limit),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        )
        return list(reply.activities)

    def watch_activities(
        self, activity_id: str = ""
    ) -> Iterator[activity_pb2.WatchActivitiesResponse]:
        """Snapshot, SNAPSHOT_END, then live events; stop iterating (or close) to end it."""
        request = activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
        return self._endpoint.stream(
            lambda: self._activities.WatchActivities(request, metadata=self._metadata)
        )


class AsyncScorerClient:
    """asyncio client of the Scorer (and the Activities service it serves)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        long_timeout: float = DEFAULT_LONG_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = resolve_scorer_address(address)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self._endpoint = _Endpoint("Scorer", self.address)
        self._metadata = _metadata(token)
        self._channel = _async_channel(self.address, credentials)
        self._stub = scorer_pb2_grpc.ScorerStub(self._channel)
        self._activities = activity_pb2_grpc.ActivitiesStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> AsyncScorerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def health(self, service: str = "") -> str:
        reply = await self._endpoint.acall(
            lambda: self._health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
            )
        )
        return _HEALTH_NAMES.get(reply.status, "UNKNOWN")

    async def get_info(self) -> scorer_pb2.GetInfoResponse:
        reply: scorer_pb2.GetInfoResponse = await self._endpoint.acall(
            lambda: self._stub.GetInfo(
                scorer_pb2.GetInfoRequest(), timeout=self.timeout, metadata=self._metadata
            )
        )
        return reply

    async def tokenize(
        self, conversation: conversation_pb2.Conversation, variant: Variant = "with"
    ) -> scorer_pb2.TokenizeResponse:
        request = scorer_pb2.TokenizeRequest(
            conversation=conversation, variant=_lookup(_VARIANT_BY_NAME, variant, "variant")
        )
        reply: scorer_pb2.TokenizeResponse = await self._endpoint.acall(
            lambda: self._stub.Tokenize(request, timeout=self.timeout, metadata=self._metadata)
        )
        return reply

    async def score_conversation(
        self,
        conversation: conversation_pb2.Conversation,
        *,
        threshold: float = 0.0,
        exclude_ns: Iterable[int] = (),
        only_ns: Iterable[int] = (),
        request_id: str | None = None,
    ) -> scorer_pb2.ScoreConversationResponse:
        request = _score_request(
            conversation, threshold, exclude_ns, only_ns, request_id or new_request_id()
        )
        reply: scorer_pb2.ScoreConversationResponse = await self._endpoint.acall(
            lambda: self._stub.ScoreConversation(
                request, timeout=self.long_timeout, metadata=self._metadata
            )
        )
        return reply

    async def generate_alternate(
        self,
        conversation: conversation_pb2.Conversation,
        reply_timestamp_ns: int,
        *,
        max_new_tokens: int = 0,
        request_id: str | None = None,
    ) -> scorer_pb2.GenerateAlternateResponse:
        request = scorer_pb2.GenerateAlternateRequest(
            conversation=conversation,
            reply_timestamp=to_timestamp(reply_timestamp_ns),
            max_new_tokens=max_new_tokens,
            request_id=request_id or new_request_id(),
        )
        reply: scorer_pb2.GenerateAlternateResponse = await self._endpoint.acall(
            lambda: self._stub.GenerateAlternate(
                request, timeout=self.long_timeout, metadata=self._metadata
            )
        )
        return reply

    async def list_activities(self, limit: int = 0) -> list[activity_pb2.Activity]:
        reply: activity_pb2.ListActivitiesResponse = await self._endpoint.acall(
            lambda: self._activities.ListActivities(
                activity_pb2.ListActivitiesRequest(limit=limit),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        )
        return list(reply.activities)

    def watch_activities(
        self, activity_id: str = ""
    ) -> AsyncIterator[activity_pb2.WatchActivitiesResponse]:
        request = activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
        return self._endpoint.astream(
            lambda: self._activities.WatchActivities(request, metadata=self._metadata)
        )


# ---- Review ---------------------------------------------------------------------------------


class ReviewClient:
    """Blocking client of the Review service.

    `scorer_address` (resolved like the Scorer client's) is only used by `watch_activities`
    and `list_activities`, which cover the Scorer's activities too.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        scorer_address: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        long_timeout: float = DEFAULT_LONG_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = resolve_review_address(address)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self._endpoint = _Endpoint("Review", self.address)
        self._metadata = _metadata(token)
        self._channel = _sync_channel(self.address, credentials)
        self._stub = review_pb2_grpc.ReviewStub(self._channel)
        self._activities = activity_pb2_grpc.ActivitiesStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.scorer = ScorerClient(
            scorer_address, timeout=timeout, long_timeout=long_timeout,
            credentials=credentials, token=token,
        )  # fmt: skip

    def __enter__(self) -> ReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()
        self.scorer.close()

    def _unary(self, method: Callable[..., _T], request: Any, long: bool = False) -> _T:
        timeout = self.long_timeout if long else self.timeout
        reply: _T = self._endpoint.call(
            lambda: method(request, timeout=timeout, metadata=self._metadata)
        )
        return reply

    def health(self, service: str = "") -> str:
        reply = self._endpoint.call(
            lambda: self._health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
            )
        )
        return _HEALTH_NAMES.get(reply.status, "UNKNOWN")

    def ingest(
        self, conversation: conversation_pb2.Conversation, *, request_id: str | None = None
    ) -> review_pb2.IngestResponse:
        """Starts scoring; returns at once. `activity_id` names the Scorer's activity."""
        request = _ingest_request(conversation, request_id or new_request_id())
        reply: review_pb2.IngestResponse = self._unary(self._stub.Ingest, request)
        return reply

    def sync_candidates(self, conversation_ids: Iterable[str] = ()) -> list[str]:
        """Rescores stored conversations with the current threshold; the activity ids."""
        request = review_pb2.SyncCandidatesRequest(conversation_ids=list(conversation_ids))
        return list(self._unary(self._stub.SyncCandidates, request).activity_ids)

    def list_candidates(
        self,
        statuses: Iterable[CandidateStatus] = (),
        *,
        order: CandidateOrder = "divergence",
        conversation_id: str = "",
    ) -> list[review_pb2.Candidate]:
        """No `statuses`: pending, approved and rejected. Highest divergence first."""
        request = _list_candidates_request(statuses, order, conversation_id)
        return list(self._unary(self._stub.ListCandidates, request).candidates)

    def watch_candidates(self) -> Iterator[review_pb2.WatchCandidatesResponse]:
        """Snapshot, SNAPSHOT_END, then every change (and STATS after each scoring run)."""
        return self._endpoint.stream(
            lambda: self._stub.WatchCandidates(
                review_pb2.WatchCandidatesRequest(), metadata=self._metadata
            )
        )

    def approve(self, timestamps_ns: int | Iterable[int]) -> list[review_pb2.Candidate]:
        request = review_pb2.ApproveRequest(timestamps=_timestamps(timestamps_ns))
        return list(self._unary(self._stub.Approve, request).candidates)

    def reject(
        self, timestamps_ns: int | Iterable[int], *, reason: str = ""
    ) -> list[review_pb2.Candidate]:
        request = review_pb2.RejectRequest(timestamps=_timestamps(timestamps_ns), reason=reason)
        return list(self._unary(self._stub.Reject, request).candidates)

    def clear_decision(self, timestamps_ns: int | Iterable[int]) -> list[review_pb2.Candidate]:
        """Back to pending: undoes an approve or a reject."""
        request = review_pb2.ClearDecisionRequest(timestamps=_timestamps(timestamps_ns))
        return list(self._unary(self._stub.ClearDecision, request).candidates)

    def generate_alternate(
        self, timestamp_ns: int, *, regenerate: bool = False, request_id: str | None = None
    ) -> review_pb2.Candidate:
        """The candidate with its alternate (generated now unless stored already)."""
        request = review_pb2.ReviewGenerateAlternateRequest(
            timestamp=to_timestamp(timestamp_ns),
            regenerate=regenerate,
            request_id=request_id or new_request_id(),
        )
        reply: review_pb2.Candidate = self._unary(
            self._stub.GenerateAlternate, request, long=True
        ).candidate
        return reply

    def send(
        self, timestamps_ns: Iterable[int] = (), *, request_id: str | None = None
    ) -> review_pb2.SendResponse:
        """Posts the approved candidates (or those named) to the fine-tuning endpoint."""
        request = review_pb2.SendRequest(
            timestamps=_timestamps(timestamps_ns), request_id=request_id or new_request_id()
        )
        reply: review_pb2.SendResponse = self._unary(self._stub.Send, request, long=True)
        return reply

    def export(
        self,
        format: ExportFormat = "openai",
        *,
        statuses: Iterable[CandidateStatus] = (),
        timestamps_ns: Iterable[int] = (),
        mark_trained: bool = False,
    ) -> review_pb2.ExportResponse:
        """JSONL training examples; no `statuses` means the approved ones."""
        request = _export_request(format, statuses, timestamps_ns, mark_trained)
        reply: review_pb2.ExportResponse = self._unary(self._stub.Export, request)
        return reply

    def get_stats(self, conversation_id: str = "") -> review_pb2.GetStatsResponse:
        reply: review_pb2.GetStatsResponse = self._unary(
            self._stub.GetStats, review_pb2.GetStatsRequest(conversation_id=conversation_id)
        )
        return reply

    def get_config(self) -> review_pb2.Config:
        reply: review_pb2.Config = self._unary(
            self._stub.GetConfig, review_pb2.GetConfigRequest()
        ).config
        return reply

    def set_threshold(
        self, value: float | None = None, *, steps: int | None = None
    ) -> review_pb2.Config:
        """Exactly one of: a new value, or steps (+1 multiplies by 10, -1 divides by 10)."""
        request = _set_threshold_request(value, steps)
        reply: review_pb2.Config = self._unary(self._stub.SetThreshold, request).config
        return reply

    def list_trained(self) -> list[review_pb2.TrainedEntry]:
        return list(self._unary(self._stub.ListTrained, review_pb2.ListTrainedRequest()).entries)

    def list_activities(self, limit: int = 0) -> list[activity_pb2.Activity]:
        """Recent activities of the Review service and the Scorer, newest first."""
        found: list[activity_pb2.Activity] = []
        for source in (self._list_own_activities, self.scorer.list_activities):
            try:
                found.extend(source(limit))
            except Unimplemented:
                continue
        found.sort(key=lambda a: (a.started_at.seconds, a.started_at.nanos), reverse=True)
        return found[:limit] if limit else found

    def _list_own_activities(self, limit: int) -> list[activity_pb2.Activity]:
        request = activity_pb2.ListActivitiesRequest(limit=limit)
        return list(self._unary(self._activities.ListActivities, request).activities)

    def watch_activities(
        self, activity_id: str = ""
    ) -> Iterator[activity_pb2.WatchActivitiesResponse]:
        """The activities of the Review service and the Scorer, merged (see the module)."""
        request = activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
        scorer = self.scorer
        return _merge_sync(
            [
                (
                    self._endpoint,
                    lambda: self._activities.WatchActivities(request, metadata=self._metadata),
                ),
                (
                    scorer._endpoint,
                    lambda: scorer._activities.WatchActivities(request, metadata=scorer._metadata),
                ),
            ]
        )


def _merge_sync(sources: Sequence[tuple[_Endpoint, Callable[[], Any]]]) -> Iterator[_Event]:
    """Reads each source's call on a daemon thread; closing the result cancels every call."""
    merge = _ActivityMerge(len(sources), _REVIEW_MERGE_HIDDEN)
    inbox: queue.Queue[tuple[int, _Event | None, FtreviewError | None]] = queue.Queue()
    stop = threading.Event()
    calls: list[Any] = []

    def pump(index: int, endpoint: _Endpoint, call: Any) -> None:
        error: FtreviewError | None = None
        try:
            for event in call:
                inbox.put((index, event, None))
        except grpc.RpcError as failure:
            if not stop.is_set():
                error = endpoint.error(failure)
        finally:
            inbox.put((index, None, error))

    def merged() -> Iterator[_Event]:
        try:
            for index, (endpoint, start) in enumerate(sources):
                call = endpoint.call(start)
                calls.append(call)
                threading.Thread(
                    target=pump, args=(index, endpoint, call), daemon=True,
                    name=f"ftreview-watch-{index}",
                ).start()  # fmt: skip
            live = len(sources)
            saw_end = [False] * len(sources)
            while live:
                index, event, error = inbox.get()
                if event is None:
                    live -= 1
                    yield from merge.source_ended(error, saw_end[index])
                    continue
                if event.kind == _SNAPSHOT_END:
                    saw_end[index] = True
                yield from merge.event(event, index)
        finally:
            stop.set()
            for call in calls:
                call.cancel()

    return merged()


class AsyncReviewClient:
    """asyncio client of the Review service: what the review screen builds on.

    Every method of `ReviewClient`, awaitable; the two streams (`watch_candidates`,
    `watch_activities`) are async iterators, ended by breaking out of them (or by
    `aclose()`), which cancels the call. A stream whose server goes away raises
    `Unavailable`; open a new one to reconnect.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        scorer_address: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        long_timeout: float = DEFAULT_LONG_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = resolve_review_address(address)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self._endpoint = _Endpoint("Review", self.address)
        self._metadata = _metadata(token)
        self._channel = _async_channel(self.address, credentials)
        self._stub = review_pb2_grpc.ReviewStub(self._channel)
        self._activities = activity_pb2_grpc.ActivitiesStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.scorer = AsyncScorerClient(
            scorer_address, timeout=timeout, long_timeout=long_timeout,
            credentials=credentials, token=token,
        )  # fmt: skip

    async def __aenter__(self) -> AsyncReviewClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()
        await self.scorer.close()

    async def _unary(self, method: Callable[..., Any], request: Any, long: bool = False) -> Any:
        timeout = self.long_timeout if long else self.timeout
        return await self._endpoint.acall(
            lambda: method(request, timeout=timeout, metadata=self._metadata)
        )

    async def health(self, service: str = "") -> str:
        reply = await self._endpoint.acall(
            lambda: self._health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
            )
        )
        return _HEALTH_NAMES.get(reply.status, "UNKNOWN")

    async def ingest(
        self, conversation: conversation_pb2.Conversation, *, request_id: str | None = None
    ) -> review_pb2.IngestResponse:
        request = _ingest_request(conversation, request_id or new_request_id())
        reply: review_pb2.IngestResponse = await self._unary(self._stub.Ingest, request)
        return reply

    async def sync_candidates(self, conversation_ids: Iterable[str] = ()) -> list[str]:
        request = review_pb2.SyncCandidatesRequest(conversation_ids=list(conversation_ids))
        reply: review_pb2.SyncCandidatesResponse = await self._unary(
            self._stub.SyncCandidates, request
        )
        return list(reply.activity_ids)

    async def list_candidates(
        self,
        statuses: Iterable[CandidateStatus] = (),
        *,
        order: CandidateOrder = "divergence",
        conversation_id: str = "",
    ) -> list[review_pb2.Candidate]:
        request = _list_candidates_request(statuses, order, conversation_id)
        reply: review_pb2.ListCandidatesResponse = await self._unary(
            self._stub.ListCandidates, request
        )
        return list(reply.candidates)

    def watch_candidates(self) -> AsyncIterator[review_pb2.WatchCandidatesResponse]:
        return self._endpoint.astream(
            lambda: self._stub.WatchCandidates(
                review_pb2.WatchCandidatesRequest(), metadata=self._metadata
            )
        )

    async def approve(self, timestamps_ns: int | Iterable[int]) -> list[review_pb2.Candidate]:
        request = review_pb2.ApproveRequest(timestamps=_timestamps(timestamps_ns))
        reply: review_pb2.ApproveResponse = await self._unary(self._stub.Approve, request)
        return list(reply.candidates)

    async def reject(
        self, timestamps_ns: int | Iterable[int], *, reason: str = ""
    ) -> list[review_pb2.Candidate]:
        request = review_pb2.RejectRequest(timestamps=_timestamps(timestamps_ns), reason=reason)
        reply: review_pb2.RejectResponse = await self._unary(self._stub.Reject, request)
        return list(reply.candidates)

    async def clear_decision(
        self, timestamps_ns: int | Iterable[int]
    ) -> list[review_pb2.Candidate]:
        request = review_pb2.ClearDecisionRequest(timestamps=_timestamps(timestamps_ns))
        reply: review_pb2.ClearDecisionResponse = await self._unary(
            self._stub.ClearDecision, request
        )
        return list(reply.candidates)

    async def generate_alternate(
        self, timestamp_ns: int, *, regenerate: bool = False, request_id: str | None = None
    ) -> review_pb2.Candidate:
        request = review_pb2.ReviewGenerateAlternateRequest(
            timestamp=to_timestamp(timestamp_ns),
            regenerate=regenerate,
            request_id=request_id or new_request_id(),
        )
        reply: review_pb2.ReviewGenerateAlternateResponse = await self._unary(
            self._stub.GenerateAlternate, request, long=True
        )
        return reply.candidate

    async def send(
        self, timestamps_ns: Iterable[int] = (), *, request_id: str | None = None
    ) -> review_pb2.SendResponse:
        request = review_pb2.SendRequest(
            timestamps=_timestamps(timestamps_ns), request_id=request_id or new_request_id()
        )
        reply: review_pb2.SendResponse = await self._unary(self._stub.Send, request, long=True)
        return reply

    async def export(
        self,
        format: ExportFormat = "openai",
        *,
        statuses: Iterable[CandidateStatus] = (),
        timestamps_ns: Iterable[int] = (),
        mark_trained: bool = False,
    ) -> review_pb2.ExportResponse:
        request = _export_request(format, statuses, timestamps_ns, mark_trained)
        reply: review_pb2.ExportResponse = await self._unary(self._stub.Export, request)
        return reply

    async def get_stats(self, conversation_id: str = "") -> review_pb2.GetStatsResponse:
        request = review_pb2.GetStatsRequest(conversation_id=conversation_id)
        reply: review_pb2.GetStatsResponse = await self._unary(self._stub.GetStats, request)
        return reply

    async def get_config(self) -> review_pb2.Config:
        reply: review_pb2.GetConfigResponse = await self._unary(
            self._stub.GetConfig, review_pb2.GetConfigRequest()
        )
        return reply.config

    async def set_threshold(
        self, value: float | None = None, *, steps: int | None = None
    ) -> review_pb2.Config:
        request = _set_threshold_request(value, steps)
        reply: review_pb2.SetThresholdResponse = await self._unary(self._stub.SetThreshold, request)
        return reply.config

    async def list_trained(self) -> list[review_pb2.TrainedEntry]:
        reply: review_pb2.ListTrainedResponse = await self._unary(
            self._stub.ListTrained, review_pb2.ListTrainedRequest()
        )
        return list(reply.entries)

    async def list_activities(self, limit: int = 0) -> list[activity_pb2.Activity]:
        found: list[activity_pb2.Activity] = []
        request = activity_pb2.ListActivitiesRequest(limit=limit)
        try:
            own: activity_pb2.ListActivitiesResponse = await self._unary(
                self._activities.ListActivities, request
            )
            found.extend(own.activities)
        except Unimplemented:
            pass
        try:
            found.extend(await self.scorer.list_activities(limit))
        except Unimplemented:
            pass
        found.sort(key=lambda a: (a.started_at.seconds, a.started_at.nanos), reverse=True)
        return found[:limit] if limit else found

    async def watch_activities(
        self, activity_id: str = ""
    ) -> AsyncIterator[activity_pb2.WatchActivitiesResponse]:
        """The activities of the Review service and the Scorer, merged (see the module)."""
        request = activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
        sources: list[AsyncIterator[_Event]] = [
            self._endpoint.astream(
                lambda: self._activities.WatchActivities(request, metadata=self._metadata)
            ),
            self.scorer.watch_activities(activity_id),
        ]
        merge = _ActivityMerge(len(sources), _REVIEW_MERGE_HIDDEN)
        inbox: asyncio.Queue[tuple[int, _Event | None, FtreviewError | None]] = asyncio.Queue()

        async def pump(index: int, source: AsyncIterator[_Event]) -> None:
            error: FtreviewError | None = None
            try:
                async for event in source:
                    await inbox.put((index, event, None))
            except FtreviewError as failure:
                error = failure
            finally:
                inbox.put_nowait((index, None, error))

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(sources)]
        live = len(sources)
        saw_end = [False] * len(sources)
        try:
            while live:
                index, event, error = await inbox.get()
                if event is None:
                    live -= 1
                    for merged in merge.source_ended(error, saw_end[index]):
                        yield merged
                    continue
                if event.kind == _SNAPSHOT_END:
                    saw_end[index] = True
                for merged in merge.event(event, index):
                    yield merged
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
