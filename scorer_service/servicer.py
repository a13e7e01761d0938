"""gRPC in and out of the Scorer: requests to domain calls, results and errors to messages.

Every piece of long work runs as an activity, so any watcher sees it start, move and end,
whatever happens to the call that started it (a failed backend fails the activity, a
cancelled call cancels it). Errors leave as exceptions; the core's status interceptor turns
them into statuses (never UNKNOWN).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator
from typing import Any, cast

import grpc
from ftreview.core.activity_hub import Activity, ActivityHub
from ftreview.core.status import error_status
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc
from grpc_status import rpc_status

from scorer_service import alternate, scoring
from scorer_service.backends.base import ScoringBackend
from scorer_service.conversation import Message, Variant, flatten, has_memories
from scorer_service.errors import InvalidAdapter, InvalidConversation, ScorerError
from scorer_service.tokenization import build_token_ids

# By name: the wire enum is the one list of reasons (NONE is the wire's UNSPECIFIED).
_REASONS: dict[scoring.Reason, int] = {
    reason: scorer_pb2.NotCandidateReason.Value(
        f"NOT_CANDIDATE_REASON_{'UNSPECIFIED' if reason is scoring.Reason.NONE else reason.name}"
    )
    for reason in scoring.Reason
}


# A conversation without memories makes no engine call, so no context length bounds it.
_NO_ENGINE_NEEDED = 2**62


def _messages(request_conversation: Any, present: bool) -> list[Message]:
    """The request's messages, refused beyond the size limits; run it off the loop."""
    if not present:
        raise InvalidConversation("", "the request has no conversation")
    return flatten(request_conversation)


@contextlib.contextmanager
def _ends_with_the_call(activity: Activity) -> Iterator[None]:
    """Cancels `activity` when the call is cancelled and fails it when the engine does; the
    exception goes on to the status interceptor."""
    try:
        yield
    except asyncio.CancelledError:
        activity.cancel("the caller went away or its deadline passed")
        raise
    except ScorerError as exc:
        activity.fail(str(exc))
        raise


class ScorerServicer(scorer_pb2_grpc.ScorerServicer):
    def __init__(
        self,
        backend: ScoringBackend,
        tokenizer: Any,
        context_length: int | None,
        hub: ActivityHub,
    ) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        # None until the engine has said it: a Scorer starts while its engine is down.
        self.context_length = context_length
        self.hub = hub

    async def _context_length(self) -> int:
        """The engine's context length, asked until it answers (UNAVAILABLE meanwhile)."""
        if self.context_length is None:
            self.context_length = (await self.backend.info()).context_length
        return self.context_length

    async def Tokenize(
        self, request: scorer_pb2.TokenizeRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.TokenizeResponse:
        messages = await asyncio.to_thread(
            _messages, request.conversation, request.HasField("conversation")
        )
        variant = (
            Variant.WITHOUT_MEMORIES
            if request.variant == scorer_pb2.VARIANT_WITHOUT_MEMORIES
            else Variant.WITH_MEMORIES
        )
        tokenized = await asyncio.to_thread(build_token_ids, messages, self.tokenizer, variant)
        response = scorer_pb2.TokenizeResponse(token_ids=tokenized.token_ids, text=tokenized.text)
        for reply in tokenized.replies:
            span = response.replies.add(
                node_path=reply.message.node_path,
                start=reply.start,
                end=reply.end,
                content=reply.message.content,
            )
            span.timestamp.CopyFrom(to_timestamp(reply.message.timestamp_ns))
        return response

    async def ScoreConversation(
        self, request: scorer_pb2.ScoreConversationRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ScoreConversationResponse:
        messages = await asyncio.to_thread(
            _messages, request.conversation, request.HasField("conversation")
        )
        threshold = request.threshold
        if math.isnan(threshold) or math.isinf(threshold) or threshold < 0:
            raise InvalidConversation("threshold", "must be a finite positive number (0: default)")
        conversation_id = request.conversation.id
        activity = self.hub.start(
            "score",
            f"scoring {conversation_id or 'conversation'}",
            activity_id=request.request_id,
        )
        # The adapter serving when the call starts names the scores (vLLM's requests name it
        # as their model; the local engine switches only between rounds).
        adapter = self.backend.adapter_in_use()
        try:
            # Only a conversation with memories needs the engine, and so its context length.
            context_length = (
                await self._context_length() if has_memories(messages) else _NO_ENGINE_NEEDED
            )
            result = await scoring.score_conversation(
                messages,
                self.tokenizer,
                self.backend,
                conversation_id=conversation_id,
                context_length=context_length,
                threshold=threshold,
                exclude=frozenset(timestamp_ns(t) for t in request.exclude),
                only=frozenset(timestamp_ns(t) for t in request.only),
                progress=activity.progress,
                attribution=not request.skip_attribution,
            )
        except asyncio.CancelledError:
            activity.cancel("the caller went away or its deadline passed")
            raise
        except ScorerError as exc:
            # As `_ends_with_the_call`, and the status also carries the run's stats.
            activity.fail(str(exc))
            stats = scoring.ScoringStats(conversation_id, threshold or scoring.DEFAULT_THRESHOLD)
            stats.error = str(exc)
            stats.responses_seen = sum(1 for m in messages if m.is_reply)
            await context.abort_with_status(
                rpc_status.to_status(error_status(exc, [_stats_message(stats)]))
            )
            raise  # abort_with_status raises; this keeps type checkers honest
        activity.succeed(
            f"{len(result.candidates)} candidate(s) of {result.stats.responses_seen} replies"
        )
        response = scorer_pb2.ScoreConversationResponse(
            activity_id=activity.id,
            conversation_id=conversation_id,
            max_divergence=result.max_divergence,
            adapter=adapter,
        )
        response.stats.CopyFrom(_stats_message(result.stats))
        for reply in result.replies:
            response.replies.append(_reply_message(reply))
        return response

    async def GenerateAlternate(
        self, request: scorer_pb2.GenerateAlternateRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.GenerateAlternateResponse:
        max_new = request.max_new_tokens or alternate.DEFAULT_MAX_NEW_TOKENS
        if max_new > alternate.MAX_NEW_TOKENS_LIMIT:
            raise InvalidConversation("max_new_tokens", f"at most {alternate.MAX_NEW_TOKENS_LIMIT}")
        messages = await asyncio.to_thread(
            _messages, request.conversation, request.HasField("conversation")
        )
        prompt = await asyncio.to_thread(
            alternate.alternate_prompt,
            messages,
            timestamp_ns(request.reply_timestamp),
            self.tokenizer,
        )
        activity = self.hub.start(
            "alternate",
            f"alternate for {request.conversation.id or 'conversation'}",
            total=1,
            activity_id=request.request_id,
        )
        with _ends_with_the_call(activity):
            generation = await self.backend.generate(
                prompt, max_new, alternate.stop_token_ids(self.tokenizer)
            )
        activity.succeed(f"{generation.token_count} tokens")
        return scorer_pb2.GenerateAlternateResponse(
            activity_id=activity.id,
            text=generation.text,
            token_count=generation.token_count,
            adapter=generation.adapter,
        )

    async def GetInfo(
        self, request: scorer_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.GetInfoResponse:
        from ftreview import __version__

        info = await self.backend.info()
        self.context_length = self.context_length or info.context_length
        return scorer_pb2.GetInfoResponse(
            backend=info.backend,
            model=info.model,
            context_length=self.context_length,
            backend_urls=info.urls,
            device=info.device,
            version=__version__,
            adapter=info.adapter,
            adapter_reloads=info.adapter_reloads,
            engine_notes=info.notes,
        )

    async def LoadAdapter(
        self, request: scorer_pb2.LoadAdapterRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.LoadAdapterResponse:
        if request.name and not request.name.isprintable():
            raise InvalidAdapter(f"adapter name {request.name!r} has unprintable characters")
        activity = self.hub.start(
            "adapter", f"loading adapter {request.name or request.path or '(base model)'}"
        )
        with _ends_with_the_call(activity):
            adapter = await self.backend.load_adapter(request.path, request.name)
        activity.succeed(f"serving {adapter or 'the base model'}")
        return scorer_pb2.LoadAdapterResponse(adapter=adapter)

    async def Answer(
        self, request: scorer_pb2.AnswerRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.AnswerResponse:
        messages = await asyncio.to_thread(
            _messages, request.conversation, request.HasField("conversation")
        )
        max_new = request.max_new_tokens or alternate.DEFAULT_ANSWER_TOKENS
        if max_new > alternate.MAX_NEW_TOKENS_LIMIT:
            raise InvalidConversation("max_new_tokens", f"at most {alternate.MAX_NEW_TOKENS_LIMIT}")
        prompt = await asyncio.to_thread(alternate.answer_prompt, messages, self.tokenizer)
        max_new = _room_after(len(prompt), max_new, await self._context_length())
        generation = await self.backend.generate(
            prompt, max_new, alternate.stop_token_ids(self.tokenizer)
        )
        return scorer_pb2.AnswerResponse(text=generation.text, adapter=generation.adapter)


def _room_after(prompt_tokens: int, max_new: int, context_length: int) -> int:
    """How many tokens may be generated after a prompt within the model's context (at most
    `max_new`); a prompt that leaves no room is the caller's to shorten."""
    room = context_length - prompt_tokens
    if room < 1:
        raise InvalidConversation(
            "conversation",
            f"the prompt is {prompt_tokens} tokens and the model's context {context_length}: "
            "shorten the conversation or the question",
        )
    return min(max_new, room)


def _stats_message(stats: scoring.ScoringStats) -> scorer_pb2.FinetuneScoringStats:
    message = scorer_pb2.FinetuneScoringStats(
        conversation_id=stats.conversation_id,
        responses_seen=stats.responses_seen,
        responses_scored=stats.responses_scored,
        responses_above_threshold=stats.responses_above_threshold,
        max_divergence=stats.max_divergence,
        threshold=stats.threshold,
        skipped_unset_timestamp=stats.skipped_unset_timestamp,
        skipped_already_trained=stats.skipped_already_trained,
        skipped_too_long=stats.skipped_too_long,
        skipped_tokenization_mismatch=stats.skipped_tokenization_mismatch,
        truncated=stats.truncated,
        error=stats.error,
    )
    message.taken_at.CopyFrom(to_timestamp(stats.taken_at_ns))
    return message


def _reply_message(reply: scoring.ReplyScore) -> scorer_pb2.ReplyScore:
    message = scorer_pb2.ReplyScore(
        node_path=reply.message.node_path,
        content=reply.message.content,
        divergence=reply.divergence,
        peak=reply.peak,
        scored=reply.scored,
        candidate=reply.candidate,
        reason=cast(scorer_pb2.NotCandidateReason, _REASONS[reply.reason]),
        context_tokens_cut=reply.context_tokens_cut,
    )
    message.timestamp.CopyFrom(to_timestamp(reply.message.timestamp_ns))
    for attribution in reply.attributions:
        message.attributions.add(
            node_path=attribution.node_path,
            content=attribution.content,
            attribution=attribution.attribution,
        )
    for token in reply.tokens:
        message.tokens.add(
            token_id=token.token_id,
            text=token.text,
            logprob_with_memories=token.logprob_with,
            logprob_without_memories=token.logprob_without,
            divergence=token.divergence,
        )
    return message
