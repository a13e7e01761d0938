"""A question beyond the model's context is the caller's to shorten: the Scorer's `Answer`
refuses its prompt with INVALID_ARGUMENT naming the conversation (a real Scorer on the
embedded model), and the Review's `Ask` refuses it naming the question, never INTERNAL."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from ftreview.conversations import parse_conversation
from ftreview.core.defaults import MAX_QUESTION_CHARS
from ftreview.v1 import review_pb2, scorer_pb2, scorer_pb2_grpc

from review_service.api.servicer import ReviewServicer
from review_service.domain.errors import InvalidArgument
from review_service.domain.ports import Answer
from scorer_service.errors import InvalidConversation
from scorer_service.server import ScorerServer
from scorer_service.servicer import _room_after


async def _answer(scorer: ScorerServer, question: str, max_new: int = 0) -> Any:
    conversation = parse_conversation(
        {"id": "ask", "nodes": [{"role": "user", "content": question}]}
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scorer.port}") as channel:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        request = scorer_pb2.AnswerRequest(conversation=conversation, max_new_tokens=max_new)
        return await stub.Answer(request)


async def test_a_prompt_beyond_the_context_is_invalid_argument(scorer: ScorerServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _answer(scorer, "why " * 50_000)  # the 200,000 characters
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert details.startswith("conversation: the prompt is ")
    assert "the model's context 8192" in details


def test_a_prompt_near_the_context_gets_the_room_left() -> None:
    assert _room_after(8000, 2048, 8192) == 192
    assert _room_after(100, 64, 8192) == 64
    with pytest.raises(InvalidConversation, match="the prompt is 8192 tokens"):
        _room_after(8192, 64, 8192)


class _Review:
    def __init__(self, refusal: Exception | None) -> None:
        self.refusal = refusal

    async def ask(self, question: str, conversation_id: str, max_new_tokens: int) -> Answer:
        if self.refusal is not None:
            raise self.refusal
        return Answer(text="Paris", adapter="")


async def test_the_reviews_ask_names_the_question() -> None:
    servicer = ReviewServicer(_Review(None))  # type: ignore[arg-type]
    context: Any = None
    long = review_pb2.AskRequest(question="x" * (MAX_QUESTION_CHARS + 1))
    with pytest.raises(InvalidArgument) as caught:
        await servicer.Ask(long, context)
    assert caught.value.field == "question"
    refusal = InvalidArgument("conversation", "the Scorer refused it: the prompt is 9000 tokens")
    servicer = ReviewServicer(_Review(refusal))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as caught:
        await servicer.Ask(review_pb2.AskRequest(question="why " * 9000), context)
    assert caught.value.field == "question"
    assert "9000 tokens" in caught.value.message
