"""KV reuse on the real embedded model: scoring with kept caches equals scoring from scratch.

Two engines share the session's float32 model: one keeps caches (`reuse`), one keeps none
(`scratch`). A conversation grows turn by turn and each new reply is scored on both; the
per-token log-probabilities must agree within 1e-4 nats, while the reusing engine runs only
the new tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ftreview.conversations import parse_conversation

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import ReplyScore, score_conversation

TOLERANCE = 1e-4

QUESTIONS = [
    ("What is my cat called?", "Your cat is called Biscuit."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What colour is the sky on a clear day?", "It is blue on a clear day."),
    ("Where does my sister live?", "Your sister lives in Lisbon."),
    ("Name a prime number above ten.", "Eleven is a prime number above ten."),
    ("What did I have for breakfast?", "You had porridge with apples."),
]


def grown(turns: int, *, memory_at: int = 0, edit: dict[int, str] | None = None) -> list[Any]:
    """System, a memory (before turn `memory_at`), then `turns` user/assistant pairs."""
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant.", "timestamp": 1}
    ]
    memory = {
        "role": "system",
        "memory": True,
        "content": "Memory: the user's cat is Biscuit; the sister lives in Lisbon.",
        "timestamp": 2,
    }
    for turn in range(turns):
        if turn == memory_at:
            nodes.append(memory)
        question, answer = QUESTIONS[turn % len(QUESTIONS)]
        question = (edit or {}).get(turn, f"{question} (turn {turn})")
        nodes.append({"role": "user", "content": question, "timestamp": 10 + 2 * turn})
        nodes.append({"role": "assistant", "content": answer, "timestamp": 11 + 2 * turn})
    return nodes


@pytest.fixture
async def engines(
    embedded_backend: LocalBackend,
) -> AsyncIterator[tuple[LocalBackend, LocalBackend]]:
    model, tokenizer, name = (
        embedded_backend.model,
        embedded_backend.tokenizer,
        embedded_backend.model_name,
    )
    reuse = LocalBackend(model, tokenizer, name, kv_cache_mb=512)
    scratch = LocalBackend(model, tokenizer, name, kv_cache_mb=0)
    yield reuse, scratch
    await reuse.aclose()
    await scratch.aclose()


async def last_reply(engine: LocalBackend, nodes: list[Any]) -> ReplyScore:
    messages = flatten(parse_conversation({"id": "grown", "nodes": nodes}))
    result = await score_conversation(
        messages,
        engine.tokenizer,
        engine,
        conversation_id="grown",
        context_length=engine.context_length,
        only=frozenset({messages[-1].timestamp_ns}),
        # The token accounting below counts the two variants; attribution adds its own.
        attribution=False,
    )
    return result.replies[-1]


def assert_same(reused: ReplyScore, fresh: ReplyScore) -> None:
    assert reused.scored and fresh.scored
    assert [t.token_id for t in reused.tokens] == [t.token_id for t in fresh.tokens]
    for a, b in zip(reused.tokens, fresh.tokens, strict=True):
        assert a.logprob_with == pytest.approx(b.logprob_with, abs=TOLERANCE)
        assert a.logprob_without == pytest.approx(b.logprob_without, abs=TOLERANCE)
    assert reused.divergence == pytest.approx(fresh.divergence, abs=TOLERANCE)


async def test_turn_by_turn_reuse_equals_scratch_and_runs_only_new_tokens(
    engines: tuple[LocalBackend, LocalBackend],
) -> None:
    reuse, scratch = engines
    previous_whole = 0
    for turns in range(1, 9):
        nodes = grown(turns)
        before_reuse, before_scratch = reuse.tokens_run, scratch.tokens_run
        reused = await last_reply(reuse, nodes)
        fresh = await last_reply(scratch, nodes)
        assert_same(reused, fresh)
        ran, whole = reuse.tokens_run - before_reuse, scratch.tokens_run - before_scratch
        # Both variants run exactly the tokens the last turn added, not the history.
        assert ran == whole - previous_whole, (turns, ran, whole)
        assert turns == 1 or ran <= 2 * 40, (turns, ran, whole)
        previous_whole = whole


async def test_an_edited_middle_turn_falls_back_to_the_common_prefix(
    engines: tuple[LocalBackend, LocalBackend],
) -> None:
    reuse, scratch = engines
    for turns in range(1, 7):
        await last_reply(reuse, grown(turns))
    edited = grown(6, edit={3: "Actually, how many legs does an ant have?"})
    before_reuse, before_scratch = reuse.tokens_run, scratch.tokens_run
    reused = await last_reply(reuse, edited)
    fresh = await last_reply(scratch, edited)
    assert_same(reused, fresh)
    ran, whole = reuse.tokens_run - before_reuse, scratch.tokens_run - before_scratch
    # Turns 0-2 come from the cache; turn 3 onwards (about half of the prompt) runs again.
    assert whole * 0.25 < ran < whole * 0.75, (ran, whole)
    # And the un-edited conversation still scores right (its cache may be gone or cropped).
    assert_same(await last_reply(reuse, grown(6)), await last_reply(scratch, grown(6)))


async def test_variants_share_the_prefix_before_the_first_memory(
    engines: tuple[LocalBackend, LocalBackend],
) -> None:
    reuse, scratch = engines
    nodes = grown(6, memory_at=4)  # the memory comes after four turns
    before_reuse, before_scratch = reuse.tokens_run, scratch.tokens_run
    reused = await last_reply(reuse, nodes)
    fresh = await last_reply(scratch, nodes)
    assert_same(reused, fresh)
    ran, whole = reuse.tokens_run - before_reuse, scratch.tokens_run - before_scratch
    # The four shared turns ran once, not once per variant.
    assert ran < whole * 0.75, (ran, whole)


async def test_eviction_keeps_the_budget_and_least_recently_used_goes_first(
    embedded_backend: LocalBackend,
) -> None:
    engine = LocalBackend(
        embedded_backend.model, embedded_backend.tokenizer, embedded_backend.model_name
    )
    try:
        first = grown(4)
        await last_reply(engine, first)
        per_conversation = engine.kv_cache.used_bytes
        assert len(engine.kv_cache) == 2  # one entry per variant
        # 30 layers x (keys + values) x 3 heads x 64 dims x 4 bytes per token, in float32.
        assert per_conversation == engine.kv_cache.cached_tokens * 30 * 2 * 3 * 64 * 4
        # Room for this conversation and a bit, not for two.
        engine.kv_cache.budget_bytes = int(per_conversation * 1.5)
        other = [{**n, "content": "Other: " + n["content"]} for n in first]
        await last_reply(engine, other)
        assert engine.kv_cache.used_bytes <= engine.kv_cache.budget_bytes
        before = engine.tokens_run
        await last_reply(engine, grown(5))  # the first conversation's cache was evicted
        assert engine.tokens_run - before > 100
        before = engine.tokens_run
        await last_reply(engine, grown(6))  # ... and now it is back
        assert engine.tokens_run - before < 80
        assert engine.kv_cache.used_bytes <= engine.kv_cache.budget_bytes
    finally:
        await engine.aclose()
