"""Concurrent scoring calls share padded batches, with the results of calls run alone.

On the real embedded model in float32. Calls that arrive together run in one round; their
prompts (with different kept-cache lengths, so left-padded and masked) share one pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ftreview.conversations import parse_conversation

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import ScoringResult, score_conversation
from tests.integration.scorer.test_kv_reuse import grown

TOLERANCE = 1e-4


@pytest.fixture
async def engines(
    embedded_backend: LocalBackend,
) -> AsyncIterator[tuple[LocalBackend, LocalBackend]]:
    args = (embedded_backend.model, embedded_backend.tokenizer, embedded_backend.model_name)
    # A wide window, so that calls started together surely share a round on a busy machine.
    batched = LocalBackend(*args, kv_cache_mb=512, batch_window_s=0.5)
    alone = LocalBackend(*args, kv_cache_mb=0, batch_window_s=0)
    yield batched, alone
    await batched.aclose()
    await alone.aclose()


def conversation(index: int, turns: int) -> list[Any]:
    """Different conversations: each speaker says something of its own."""
    return [
        {**node, "content": f"[{index}] {node['content']}"} if node["role"] == "user" else node
        for node in grown(turns)
    ]


async def last_reply_scores(engine: LocalBackend, nodes: list[Any]) -> ScoringResult:
    messages = flatten(parse_conversation({"id": "c", "nodes": nodes}))
    return await score_conversation(
        messages,
        engine.tokenizer,
        engine,
        conversation_id="c",
        context_length=engine.context_length,
        only=frozenset({messages[-1].timestamp_ns}),
        # Attribution would add a second round for the candidates; this counts the first.
        attribution=False,
    )


def assert_same(a: ScoringResult, b: ScoringResult) -> None:
    tokens_a = [t for r in a.replies for t in r.tokens]
    tokens_b = [t for r in b.replies for t in r.tokens]
    assert [t.token_id for t in tokens_a] == [t.token_id for t in tokens_b]
    assert tokens_a, "nothing was scored"
    for x, y in zip(tokens_a, tokens_b, strict=True):
        assert x.logprob_with == pytest.approx(y.logprob_with, abs=TOLERANCE)
        assert x.logprob_without == pytest.approx(y.logprob_without, abs=TOLERANCE)


async def test_concurrent_calls_share_one_pass_and_equal_calls_alone(
    engines: tuple[LocalBackend, LocalBackend],
) -> None:
    batched, alone = engines
    conversations = [conversation(i, 1 + i % 3) for i in range(6)]
    passes_before = batched.passes_run
    together = await asyncio.gather(*(last_reply_scores(batched, c) for c in conversations))
    # Six calls, twelve prompts, all within the token budget: one padded pass.
    assert batched.passes_run - passes_before == 1
    for nodes, result in zip(conversations, together, strict=True):
        assert_same(result, await last_reply_scores(alone, nodes))


async def test_next_turns_with_caches_of_different_lengths_share_a_masked_pass(
    engines: tuple[LocalBackend, LocalBackend],
) -> None:
    batched, alone = engines
    # Kept caches of different lengths: 1 to 4 turns.
    for i in range(4):
        await last_reply_scores(batched, conversation(i, 1 + i))
    passes_before, tokens_before = batched.passes_run, batched.tokens_run
    grown_by_one = [conversation(i, 2 + i) for i in range(4)]
    together = await asyncio.gather(*(last_reply_scores(batched, c) for c in grown_by_one))
    assert batched.passes_run - passes_before == 1
    alone_before = alone.tokens_run
    for nodes, result in zip(grown_by_one, together, strict=True):
        assert_same(result, await last_reply_scores(alone, nodes))
    # Only the new turns ran: a fraction of what the engine without caches ran.
    assert batched.tokens_run - tokens_before < (alone.tokens_run - alone_before) / 2
