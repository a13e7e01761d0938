"""The Scorer, reached over gRPC through the client library's `AsyncScorerClient`.

Invariants: the Review's domain values go in and come out (the wire messages stay here and
in `scorer_wire`); the Review never imports the Scorer's Python modules (docs/design.md
§7); the channel, its TLS, message limits and bearer token are the client library's
(`ftreview.client`, over `ftreview.core.security.client_channel_aio`). Every Scorer failure
becomes a Review domain error here, at this one boundary, with the cause chained, and every
status the Scorer can send keeps a status of its own (`scorer_error`): UNAVAILABLE (the
Scorer or its backend is down) -> `ScorerUnavailable`, an expired deadline ->
`DeadlineExceeded`, a refused conversation (INVALID_ARGUMENT, OUT_OF_RANGE, or
RESOURCE_EXHAUSTED for a message over gRPC's size limit) -> `InvalidArgument`, a refused
state (FAILED_PRECONDITION: an engine that refused the prompt, a wrong adapter) or a call the
Review cannot make (UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED) ->
`FailedPrecondition`, NOT_FOUND -> `NotFound`, ALREADY_EXISTS -> `AlreadyExists`, CANCELLED
-> `Cancelled`. Only the Scorer's own failures (INTERNAL, UNKNOWN, DATA_LOSS, ABORTED) stay
`ScorerFailed` (INTERNAL, with the Scorer's message). Every result names the adapter that
served it ("" for the base model).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import grpc
from ftreview import errors as client_errors
from ftreview.client import AsyncScorerClient
from ftreview.core.wire import timestamp_ns
from ftreview.v1 import scorer_pb2
from google.rpc import error_details_pb2

from review_service.adapters.scorer_wire import (
    attributions_from_wire,
    conversation_to_wire,
    reason_from_wire,
    stats_from_wire,
)
from review_service.domain.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ReviewError,
    ScorerFailed,
    ScorerUnavailable,
)
from review_service.domain.model import Conversation, ScoredReply, TokenValue
from review_service.domain.ports import Answer, Progress, ScoringResult


def scorer_error(error: client_errors.FtreviewError, address: str) -> ReviewError:
    """The Review's domain error for a failed call to the Scorer at `address`."""
    code = error.code or grpc.StatusCode.UNKNOWN
    details = error.message or code.name
    if isinstance(error, client_errors.Unavailable):
        return ScorerUnavailable(f"the Scorer at {address} is unavailable: {details}")
    if isinstance(error, client_errors.DeadlineExceeded):
        return DeadlineExceeded(f"the Scorer at {address} did not answer in time: {details}")
    if isinstance(error, client_errors.InvalidArgument | client_errors.OutOfRange):
        return InvalidArgument("conversation", f"the Scorer refused it: {details}")
    if isinstance(error, client_errors.ResourceExhausted):
        return InvalidArgument("conversation", f"too large for the Scorer: {details}")
    if isinstance(error, client_errors.Unauthenticated | client_errors.PermissionDenied):
        return FailedPrecondition(
            "scorer",
            f"the Scorer at {address} refused the Review's call: {details} "
            "(start the Review with --scorer-token-file or FTREVIEW_TOKEN)",
            kind="SCORER_TOKEN",
        )
    if isinstance(error, client_errors.FailedPrecondition):
        return FailedPrecondition(
            "scorer", f"the Scorer at {address} refused: {details}", kind=_precondition(error)
        )
    if isinstance(error, client_errors.Unimplemented):
        return FailedPrecondition(
            "scorer",
            f"the Scorer at {address} does not offer this call (an older version?): {details}",
            kind="SCORER_VERSION",
        )
    if isinstance(error, client_errors.NotFound):
        kind = next(
            (
                d.resource_type
                for d in error.details
                if isinstance(d, error_details_pb2.ResourceInfo)
            ),
            "",
        )
        return NotFound(kind or "scorer", "", f"the Scorer at {address} found none: {details}")
    if isinstance(error, client_errors.AlreadyExists):
        return AlreadyExists(f"the Scorer at {address} has it already: {details}")
    if isinstance(error, client_errors.Cancelled):
        return Cancelled(f"the Scorer at {address} stopped the work: {details}")
    return ScorerFailed(f"the Scorer at {address} failed ({code.name}): {details}")


def _precondition(error: client_errors.FtreviewError) -> str:
    """The kind the Scorer gave its refused precondition (e.g. ENGINE_REJECTED), or SCORER."""
    for detail in error.details:
        if isinstance(detail, error_details_pb2.PreconditionFailure):
            for violation in detail.violations:
                if violation.type:
                    return str(violation.type)
    return "SCORER"


class GrpcScorer:
    """The `Scorer` port on the Scorer at `address`: over TLS when `credentials` are given,
    with `token` as a bearer token on every call when one is. Calls have no deadline of
    their own (scoring a long conversation takes what it takes); an alternate takes the
    one its caller passes."""

    def __init__(
        self,
        address: str,
        max_message_bytes: int,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        self._client = AsyncScorerClient(
            address,
            timeout=None,
            long_timeout=None,
            credentials=credentials,
            token=token,
            max_message_bytes=max_message_bytes,
        )

    @contextlib.contextmanager
    def _calling(self) -> Iterator[None]:
        try:
            yield
        except client_errors.FtreviewError as error:
            raise scorer_error(error, self.address) from error

    async def ready(self, timeout: float) -> None:
        if not await self._client.wait_until_ready(timeout):
            raise ScorerUnavailable(
                f"the Scorer at {self.address} is not reachable (waited {timeout:g}s); "
                "start it (`ftreview serve` or `ftreview-scorer`) or pass --scorer"
            )

    async def score(
        self,
        conversation: Conversation,
        threshold: float,
        exclude: list[int],
        only: list[int],
        request_id: str,
        skip_attribution: bool = False,
    ) -> ScoringResult:
        with self._calling():
            response = await self._client.score_conversation(
                conversation_to_wire(conversation),
                threshold=threshold,
                exclude_ns=exclude,
                only_ns=only,
                request_id=request_id,
                skip_attribution=skip_attribution,
            )
        return ScoringResult(
            replies=[_scored_reply(reply) for reply in response.replies],
            max_divergence=response.max_divergence,
            stats=stats_from_wire(response.stats),
            adapter=response.adapter,
        )

    async def alternate(
        self,
        conversation: Conversation,
        reply_timestamp_ns: int,
        request_id: str,
        timeout: float | None,
    ) -> str:
        with self._calling():
            response = await self._client.generate_alternate(
                conversation_to_wire(conversation),
                reply_timestamp_ns,
                request_id=request_id,
                timeout=timeout,
            )
        return str(response.text)

    async def answer(self, conversation: Conversation, max_new_tokens: int) -> Answer:
        with self._calling():
            response = await self._client.answer(
                conversation_to_wire(conversation), max_new_tokens=max_new_tokens
            )
        return Answer(text=response.text, adapter=response.adapter)

    async def progress(self, activity_id: str) -> AsyncIterator[Progress]:
        """The Scorer's progress on one activity; ends quietly if it cannot be watched."""
        events = self._client.watch_activities(activity_id)
        try:
            async for event in events:
                if event.HasField("activity"):
                    a = event.activity
                    yield Progress(done=a.done, total=a.total, detail=a.detail)
        except client_errors.FtreviewError:
            return
        finally:
            await events.aclose()

    async def close(self) -> None:
        await self._client.close()


def _scored_reply(reply: scorer_pb2.ReplyScore) -> ScoredReply:
    return ScoredReply(
        timestamp_ns=timestamp_ns(reply.timestamp),
        content=reply.content,
        divergence=reply.divergence,
        peak=reply.peak,
        scored=reply.scored,
        candidate=reply.candidate,
        node_path=reply.node_path,
        reason=reason_from_wire(reply.reason),
        attributions=attributions_from_wire(reply.attributions),
        context_tokens_cut=reply.context_tokens_cut,
        tokens=tuple(
            TokenValue(
                token_id=t.token_id,
                text=t.text,
                logprob_with_memories=t.logprob_with_memories,
                logprob_without_memories=t.logprob_without_memories,
                divergence=t.divergence,
            )
            for t in reply.tokens
        ),
    )
