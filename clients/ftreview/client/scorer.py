"""Clients of the Scorer: `ScorerClient` (blocking) and `AsyncScorerClient` (asyncio).

Invariant: each RPC is described once in `ScorerCalls` (see `ftreview.client.base`); the
two clients differ only in the runner they inherit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from ftreview.client.base import AsyncRunner, Call, Stubs, SyncRunner, as_is, unary
from ftreview.client.common import COMMON_STUBS, ServerCalls
from ftreview.client.names import (
    VARIANT_BY_NAME,
    Variant,
    lookup,
    new_request_id,
    resolve_scorer_address,
    timestamps,
)
from ftreview.core.wire import to_timestamp
from ftreview.v1 import conversation_pb2, scorer_pb2, scorer_pb2_grpc


class ScorerCalls(ServerCalls):
    """The Scorer's RPCs, each as one description."""

    service = "Scorer"
    stubs: ClassVar[Stubs] = {"scorer": scorer_pb2_grpc.ScorerStub, **COMMON_STUBS}

    @staticmethod
    def resolve_address(address: str | None) -> str:
        return resolve_scorer_address(address)

    @unary
    def get_info(self) -> Call[scorer_pb2.GetInfoResponse]:
        """The model, backend, device, version and adapter the Scorer runs."""
        return Call("scorer", "GetInfo", scorer_pb2.GetInfoRequest(), as_is)

    @unary
    def tokenize(
        self, conversation: conversation_pb2.Conversation, variant: Variant = "with"
    ) -> Call[scorer_pb2.TokenizeResponse]:
        request = scorer_pb2.TokenizeRequest(
            conversation=conversation, variant=lookup(VARIANT_BY_NAME, variant, "variant")
        )
        return Call("scorer", "Tokenize", request, as_is)

    @unary
    def score_conversation(
        self,
        conversation: conversation_pb2.Conversation,
        *,
        threshold: float = 0.0,
        exclude_ns: Iterable[int] = (),
        only_ns: Iterable[int] = (),
        request_id: str | None = None,
        skip_attribution: bool = False,
    ) -> Call[scorer_pb2.ScoreConversationResponse]:
        """Scores every reply (or `only_ns`); `threshold` 0 means the Scorer's 1e-7."""
        request = scorer_pb2.ScoreConversationRequest(
            conversation=conversation,
            threshold=threshold,
            exclude=timestamps(exclude_ns),
            only=timestamps(only_ns),
            request_id=request_id or new_request_id(),
            skip_attribution=skip_attribution,
        )
        return Call("scorer", "ScoreConversation", request, as_is, long=True)

    @unary
    def generate_alternate(
        self,
        conversation: conversation_pb2.Conversation,
        reply_timestamp_ns: int,
        *,
        max_new_tokens: int = 0,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Call[scorer_pb2.GenerateAlternateResponse]:
        """What the model says at that reply without its memories; `timeout` (seconds)
        replaces the client's long deadline for this call."""
        request = scorer_pb2.GenerateAlternateRequest(
            conversation=conversation,
            reply_timestamp=to_timestamp(reply_timestamp_ns),
            max_new_tokens=max_new_tokens,
            request_id=request_id or new_request_id(),
        )
        return Call("scorer", "GenerateAlternate", request, as_is, long=True, timeout=timeout)

    @unary
    def load_adapter(self, path: str = "", *, name: str = "") -> Call[str]:
        """Switches the engine to the peft adapter in `path` ("" : the base model); returns
        the name of the adapter now in use."""
        request = scorer_pb2.LoadAdapterRequest(path=path, name=name)
        return Call("scorer", "LoadAdapter", request, lambda r: str(r.adapter), long=True)

    @unary
    def answer(
        self, conversation: conversation_pb2.Conversation, *, max_new_tokens: int = 0
    ) -> Call[scorer_pb2.AnswerResponse]:
        """What the model answers greedily after the conversation, its memories removed
        (`max_new_tokens` 0 means 64)."""
        request = scorer_pb2.AnswerRequest(conversation=conversation, max_new_tokens=max_new_tokens)
        return Call("scorer", "Answer", request, as_is, long=True)


class ScorerClient(ScorerCalls, SyncRunner):
    """Blocking client of the Scorer (and the Activities service it serves)."""


class AsyncScorerClient(ScorerCalls, AsyncRunner):
    """asyncio client of the Scorer: every method of `ScorerClient`, awaitable."""
