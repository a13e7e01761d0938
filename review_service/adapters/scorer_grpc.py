"""The Scorer, reached over gRPC through the generated stubs only.

Invariants: the Review's domain values go in and come out (the wire messages stay here and
in `scorer_wire`); the Review never imports the Scorer's Python modules (docs/design.md
§7); every Scorer failure becomes a Review domain error here, at this one boundary, with
the cause chained: UNAVAILABLE (the Scorer or its backend is down) -> `ScorerUnavailable`,
an expired deadline -> `DeadlineExceeded`, anything else -> `ScorerFailed` with the Scorer's
own message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import (
    activity_pb2,
    activity_pb2_grpc,
    scorer_pb2,
    scorer_pb2_grpc,
)

from review_service.adapters.scorer_wire import (
    attributions_from_wire,
    conversation_to_wire,
    reason_from_wire,
    stats_from_wire,
)
from review_service.domain.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ReviewError,
    ScorerFailed,
    ScorerUnavailable,
)
from review_service.domain.model import Conversation, ScoredReply, TokenValue
from review_service.domain.ports import Answer, Progress, ScoringResult


def scorer_error(error: grpc.aio.AioRpcError, address: str) -> ReviewError:
    code = error.code()
    details = error.details() or code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        return ScorerUnavailable(f"the Scorer at {address} is unavailable: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the Scorer at {address} did not answer in time: {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return ScorerFailed(
            f"the Scorer at {address} refused the Review's call: {details} "
            "(start the Review with --scorer-token-file or FTREVIEW_TOKEN)"
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument("conversation", f"the Scorer refused it: {details}")
    return ScorerFailed(f"the Scorer at {address} failed ({code.name}): {details}")


class GrpcScorer:
    """The Scorer at `address`: over TLS when `credentials` are given, and with `token` as
    a bearer token on every call when one is."""

    def __init__(
        self,
        address: str,
        max_message_bytes: int,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if credentials is not None:
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._scorer = scorer_pb2_grpc.ScorerStub(self._channel)
        self._activities = activity_pb2_grpc.ActivitiesStub(self._channel)

    async def ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError as error:
            raise ScorerUnavailable(
                f"the Scorer at {self.address} is not reachable (waited {timeout:g}s); "
                "start it (`ftreview serve` or `ftreview-scorer`) or pass --scorer"
            ) from error

    async def score(
        self,
        conversation: Conversation,
        threshold: float,
        exclude: list[int],
        only: list[int],
        request_id: str,
        skip_attribution: bool = False,
    ) -> ScoringResult:
        request = scorer_pb2.ScoreConversationRequest(
            conversation=conversation_to_wire(conversation),
            threshold=threshold,
            exclude=[to_timestamp(ts) for ts in exclude],
            only=[to_timestamp(ts) for ts in only],
            request_id=request_id,
            skip_attribution=skip_attribution,
        )
        try:
            response = await self._scorer.ScoreConversation(request, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise scorer_error(error, self.address) from error
        return ScoringResult(
            replies=[_scored_reply(reply) for reply in response.replies],
            max_divergence=response.max_divergence,
            stats=stats_from_wire(response.stats),
        )

    async def alternate(
        self,
        conversation: Conversation,
        reply_timestamp_ns: int,
        request_id: str,
        timeout: float | None,
    ) -> str:
        request = scorer_pb2.GenerateAlternateRequest(
            conversation=conversation_to_wire(conversation),
            reply_timestamp=to_timestamp(reply_timestamp_ns),
            request_id=request_id,
        )
        try:
            response = await self._scorer.GenerateAlternate(
                request, timeout=timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise scorer_error(error, self.address) from error
        return str(response.text)

    async def answer(self, conversation: Conversation, max_new_tokens: int) -> Answer:
        request = scorer_pb2.AnswerRequest(
            conversation=conversation_to_wire(conversation), max_new_tokens=max_new_tokens
        )
        try:
            response = await self._scorer.Answer(request, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise scorer_error(error, self.address) from error
        return Answer(text=response.text, adapter=response.adapter)

    async def progress(self, activity_id: str) -> AsyncIterator[Progress]:
        """The Scorer's progress on one activity; ends quietly if it cannot be watched."""
        call = self._activities.WatchActivities(
            activity_pb2.WatchActivitiesRequest(activity_id=activity_id), metadata=self._metadata
        )
        try:
            async for event in call:
                if event.HasField("activity"):
                    a = event.activity
                    yield Progress(done=a.done, total=a.total, detail=a.detail)
        except grpc.aio.AioRpcError:
            return
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()


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
