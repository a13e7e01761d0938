"""Long and large conversations: planning costs one rendering per variant, the event loop
stays free while the Scorer works, oversized input is refused, and a cancelled call stops.

The engine here is the real `vllm` adapter talking to the in-test vLLM stand-in
(`tests/support/fake_vllm.py`, vLLM's documented wire format), so that hundreds of prompts
cost milliseconds; the tokenizer and chat template are the embedded model's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from ftreview.conversations import parse_conversation
from ftreview.core.defaults import MAX_CONTENT_CHARS
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scorer_service.backends.local import LocalBackend
from scorer_service.backends.vllm import VllmBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import Reason, score_conversation
from scorer_service.tokenization import render
from tests.support.fake_vllm import MODEL, FakeVllm

SYSTEM = "You are a helpful assistant."
MEMORY = "Memory: the user's cat is named Biscuit."


def _turns(count: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "system", "content": MEMORY, "memory": True},
    ]
    for turn in range(count):
        nodes.append({"role": "user", "content": f"Question {turn}: tell me about owls."})
        nodes.append(
            {
                "role": "assistant",
                "content": f"Answer {turn}: owls hunt at night.",
                "timestamp": turn + 1,
            }
        )
    return {"id": f"turns-{count}", "nodes": nodes}


class CountingTokenizer:
    """The embedded tokenizer, counting how often the chat template is rendered."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.renders = 0

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        self.renders += 1
        return self.inner.apply_chat_template(conversation, **kwargs)

    def __call__(self, text: str, **kwargs: Any) -> Any:
        return self.inner(text, **kwargs)

    def decode(self, token_ids: Any, **kwargs: Any) -> str:
        return str(self.inner.decode(token_ids, **kwargs))


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with FakeVllm() as server:
        yield server


@pytest.fixture
async def engine(fake: FakeVllm) -> AsyncIterator[VllmBackend]:
    backend = VllmBackend([fake.url], model=MODEL, backoff=0.0)
    yield backend
    await backend.aclose()


async def test_1500_turns_score_in_bounded_time_with_one_rendering_per_variant(
    embedded_backend: LocalBackend, fake: FakeVllm, engine: VllmBackend
) -> None:
    tokenizer = CountingTokenizer(embedded_backend.tokenizer)
    messages = flatten(parse_conversation(_turns(1500)))
    context = 1024

    started = time.monotonic()
    result = await score_conversation(
        messages,
        tokenizer,
        engine,
        conversation_id="long",
        context_length=context,
        attribution=False,
    )
    elapsed = time.monotonic() - started

    assert elapsed < 60, elapsed
    # Two renderings per variant (text and placeholders) and one check of the cut.
    assert tokenizer.renders <= 6
    assert all(r.scored for r in result.replies), {r.reason for r in result.replies}
    assert result.stats.skipped_too_long == 0 and result.stats.truncated > 1000
    prompts = [x.request["prompt"] for x in fake.requests_to("/v1/completions")]
    assert all(len(p) <= context for p in prompts)
    # Windows, not one prompt pair per reply.
    assert len(prompts) < 300
    # Each reply keeps at least half the context (less the memory and system messages).
    assert max(r.context_tokens_cut for r in result.replies) > 0
    # A spliced prompt is what rendering its messages gives.
    for prompt in prompts[2::37]:
        text = embedded_backend.tokenizer.decode(prompt)
        # Every content is unique, so the prompt's text says which messages it kept.
        kept = [m for m in messages if m.content in text]
        rendered = embedded_backend.tokenizer(
            render(embedded_backend.tokenizer, kept), add_special_tokens=False
        )["input_ids"]
        assert list(rendered[: len(prompt)]) == prompt
        assert not kept[0].memory and any(m.role == "user" for m in kept)


async def test_a_cancelled_call_sends_no_further_prompts(
    embedded_backend: LocalBackend, fake: FakeVllm, engine: VllmBackend
) -> None:
    messages = flatten(parse_conversation(_turns(600)))
    task = asyncio.create_task(
        score_conversation(
            messages,
            embedded_backend.tokenizer,
            engine,
            conversation_id="cancelled",
            context_length=512,
            attribution=False,
        )
    )
    deadline = time.monotonic() + 60
    while len(fake.requests_to("/v1/completions")) < 4:
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sent = len(fake.requests_to("/v1/completions"))

    await asyncio.sleep(0)  # nothing is left running that could send more
    assert len(fake.requests_to("/v1/completions")) == sent
    # Far fewer than the whole conversation needs.
    assert sent <= 8


async def test_a_reply_with_a_huge_first_message_is_too_long_not_stuck(
    embedded_backend: LocalBackend, engine: VllmBackend
) -> None:
    conversation = parse_conversation(
        {
            "id": "huge-first",
            "nodes": [
                {"role": "user", "content": "owl " * 20_000},
                {"role": "system", "content": MEMORY, "memory": True},
                {"role": "assistant", "content": "Your cat is Biscuit.", "timestamp": 5},
            ],
        }
    )
    result = await score_conversation(
        flatten(conversation),
        embedded_backend.tokenizer,
        engine,
        conversation_id="huge-first",
        context_length=2048,
    )
    (reply,) = result.replies
    assert reply.reason is Reason.TOO_LONG and result.stats.skipped_too_long == 1


def _megabyte_conversation() -> scorer_pb2.ScoreConversationRequest:
    conversation = parse_conversation(
        {
            "id": "megabyte",
            "nodes": [
                {"role": "system", "content": SYSTEM},
                {"role": "system", "content": MEMORY, "memory": True},
                {"role": "user", "content": "The cat sat on the mat. " * 43_000},
                {"role": "user", "content": "What's my cat's name?"},
                {"role": "assistant", "content": "Your cat is named Biscuit.", "timestamp": 7},
            ],
        }
    )
    return scorer_pb2.ScoreConversationRequest(conversation=conversation)


async def test_health_answers_within_a_second_while_a_megabyte_conversation_is_scored(
    scorer_address: str,
) -> None:
    request = _megabyte_conversation()
    assert len(request.SerializeToString()) > 1_000_000
    async with grpc.aio.insecure_channel(scorer_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        call = asyncio.ensure_future(
            scorer_pb2_grpc.ScorerStub(channel).ScoreConversation(request, timeout=300)
        )
        probes = 0
        while not call.done():
            started = time.monotonic()
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            assert time.monotonic() - started < 1.0
            probes += 1
            await asyncio.sleep(0.05)
        response = await call
    assert probes >= 3  # the probes really ran while the call worked
    (reply,) = response.replies
    # The megabyte turn is left out of the reply's context; the memory stays.
    assert reply.scored and reply.context_tokens_cut > 100_000 and reply.divergence > 1.0


async def test_a_conversation_over_the_size_limit_is_invalid_argument(
    scorer_address: str,
) -> None:
    conversation = parse_conversation(
        {
            "id": "too-big",
            "nodes": [
                {"role": "user", "content": "x" * (MAX_CONTENT_CHARS + 1)},
                {"role": "assistant", "content": "ok", "timestamp": 1},
            ],
        }
    )
    async with grpc.aio.insecure_channel(scorer_address) as channel:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        score = scorer_pb2.ScoreConversationRequest(conversation=conversation)
        tokenize = scorer_pb2.TokenizeRequest(conversation=conversation)
        for call, request in ((stub.ScoreConversation, score), (stub.Tokenize, tokenize)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(request, timeout=30)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert f"limit of {MAX_CONTENT_CHARS}" in (caught.value.details() or "")
