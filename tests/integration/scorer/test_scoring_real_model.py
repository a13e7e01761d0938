"""Divergence on the real embedded model (SmolLM2-135M-Instruct), through the domain API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ftreview.conversations import load_conversations, parse_conversation

from scorer_service.backends import attention
from scorer_service.backends.base import (
    BackendInfo,
    Generation,
    ProgressCallback,
    RangeLogprobs,
    ScoreRequest,
    ScoringBackend,
    StopCheck,
)
from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import Reason, ScoringResult, score_conversation


class Recorder(ScoringBackend):
    """The real backend, with every request it is sent recorded."""

    name = "recorder"

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.requests: list[ScoreRequest] = []
        self.calls = 0

    async def score(
        self,
        requests: Sequence[ScoreRequest],
        progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RangeLogprobs]:
        self.calls += 1
        self.requests.extend(requests)
        return await self.inner.score(requests, progress, should_stop)

    async def generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        stop_token_ids: Sequence[int] = (),
        should_stop: StopCheck | None = None,
    ) -> Generation:
        return await self.inner.generate(token_ids, max_new_tokens, stop_token_ids, should_stop)

    async def info(self) -> BackendInfo:
        return await self.inner.info()


@pytest.fixture
def recorder(embedded_backend: LocalBackend) -> Recorder:
    return Recorder(embedded_backend)


async def _score(
    recorder: Recorder, conversation: Any, context_length: int = 8192, **kwargs: Any
) -> ScoringResult:
    return await score_conversation(
        flatten(conversation),
        recorder.inner.tokenizer,
        recorder,
        conversation_id=conversation.id,
        context_length=context_length,
        **kwargs,
    )


def _by_content(result: ScoringResult, start: str) -> Any:
    return next(r for r in result.replies if r.message.content.startswith(start))


@pytest.mark.parametrize(
    ("fixture", "fact", "generic"),
    [
        ("biscuit.json", "Your cat is named Biscuit", ["Hello! How can I help"]),
        (
            "build-server.json",
            "The nightly ktest run",
            ["Hello! How can I help", "A marathon is", "You're welcome"],
        ),
        ("old-log-unset-timestamps.json", "Ines is a luthier", ["I can't see a calendar"]),
    ],
)
async def test_reply_stating_a_memory_fact_scores_far_above_generic_ones(
    recorder: Recorder, fixtures_dir: Path, fixture: str, fact: str, generic: list[str]
) -> None:
    (conversation,) = load_conversations(fixtures_dir / fixture)
    result = await _score(recorder, conversation, attribution=False)
    fact_reply = _by_content(result, fact)
    assert fact_reply.scored and fact_reply.divergence > 1.0
    assert fact_reply.peak >= max(t.divergence for t in fact_reply.tokens) > 1.0
    for start in generic:
        reply = _by_content(result, start)
        assert fact_reply.divergence - reply.divergence > 1.0, (start, reply.divergence)
    assert result.max_divergence == fact_reply.divergence
    # One request per variant for the whole conversation.
    assert recorder.calls == 1 and len(recorder.requests) == 2


async def test_conversation_without_memories_scores_zero_without_a_backend_call(
    recorder: Recorder, fixtures_dir: Path
) -> None:
    (conversation,) = load_conversations(fixtures_dir / "no-memories.json")
    result = await _score(recorder, conversation)
    assert recorder.calls == 0
    (reply,) = result.replies
    assert reply.scored and reply.divergence == 0.0 and reply.peak == 0.0
    assert reply.tokens and all(t.divergence == 0.0 for t in reply.tokens)
    assert not reply.candidate and reply.reason is Reason.BELOW_THRESHOLD
    assert result.stats.responses_seen == 1 and result.stats.max_divergence == 0.0


async def test_unset_timestamps_are_scored_and_counted_but_never_candidates(
    recorder: Recorder, fixtures_dir: Path
) -> None:
    (conversation,) = load_conversations(fixtures_dir / "old-log-unset-timestamps.json")
    result = await _score(recorder, conversation)
    untracked = _by_content(result, "Ines is a luthier")
    assert untracked.scored and untracked.divergence > 1.0
    assert not untracked.candidate and untracked.reason is Reason.UNSET_TIMESTAMP
    assert result.stats.skipped_unset_timestamp == 1
    assert result.stats.max_divergence == untracked.divergence
    assert all(r.message.timestamp_ns for r in result.candidates)

    # Asking for one named reply still scores and counts the one that cannot be named.
    named = next(r.message.timestamp_ns for r in result.replies if r.message.timestamp_ns)
    again = await _score(recorder, conversation, only=frozenset({named}))
    assert all(r.scored for r in again.replies)
    assert again.stats.skipped_unset_timestamp == 1


async def test_only_new_replies_are_scored_and_trained_ones_never(
    recorder: Recorder, fixtures_dir: Path
) -> None:
    (conversation,) = load_conversations(fixtures_dir / "build-server.json")
    replies = [m for m in flatten(conversation) if m.is_reply]
    trained, fresh = replies[1].timestamp_ns, replies[3].timestamp_ns
    result = await _score(recorder, conversation, exclude=frozenset({trained}), attribution=False)
    assert _by_content(result, "The nightly").reason is Reason.ALREADY_TRAINED
    assert not _by_content(result, "The nightly").scored
    assert result.stats.skipped_already_trained == 1
    assert sorted(len(r.ranges) for r in recorder.requests) == [3, 3]

    recorder.requests.clear()
    result = await _score(
        recorder, conversation, only=frozenset({fresh}), threshold=1e-9, attribution=False
    )
    scored = [r for r in result.replies if r.scored]
    assert [r.message.timestamp_ns for r in scored] == [fresh]
    assert [len(r.ranges) for r in recorder.requests] == [1, 1]


async def test_threshold_decides_candidates(recorder: Recorder, fixtures_dir: Path) -> None:
    (conversation,) = load_conversations(fixtures_dir / "biscuit.json")
    result = await _score(recorder, conversation, threshold=1.0)
    assert [r.message.content for r in result.candidates] == ["Your cat is named Biscuit."]
    assert result.stats.responses_above_threshold == 1
    assert _by_content(result, "Hello").reason is Reason.BELOW_THRESHOLD


async def test_too_long_conversation_scores_each_reply_with_the_context_that_fits(
    recorder: Recorder,
) -> None:
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "system", "content": "Memory: the user's cat is named Biscuit.", "memory": True},
    ]
    for turn in range(6):
        nodes.append({"role": "user", "content": f"Tell me fact number {turn} about owls."})
        nodes.append(
            {
                "role": "assistant",
                "content": f"Owl fact {turn}: owls can turn their heads far.",
                "timestamp": turn + 1,
            }
        )
    nodes.append({"role": "user", "content": "What's my cat's name?"})
    nodes.append({"role": "assistant", "content": "Your cat is named Biscuit.", "timestamp": 99})
    conversation = parse_conversation({"id": "long", "nodes": nodes})
    full = await _score(recorder, conversation)
    total = len(recorder.requests[0].token_ids)

    recorder.requests.clear()
    limit = total - 40
    cut = await _score(recorder, conversation, context_length=limit)
    assert all(len(r.token_ids) <= limit for r in recorder.requests)
    assert cut.stats.truncated >= 1 and cut.stats.skipped_too_long == 0
    last = cut.replies[-1]
    assert last.scored and last.context_tokens_cut > 0
    # The memory stays in the cut context, so the fact still stands out.
    assert last.divergence > 1.0
    assert abs(last.divergence - full.replies[-1].divergence) < 0.5

    recorder.requests.clear()
    hopeless = await _score(recorder, conversation, context_length=30)
    assert hopeless.stats.skipped_too_long == len(hopeless.replies)
    assert all(r.reason is Reason.TOO_LONG for r in hopeless.replies)


async def test_chunked_range_only_logprobs_equal_full_logits(
    embedded_backend: LocalBackend, fixtures_dir: Path
) -> None:
    """Chunks through the KV cache (as on the CPU) give what one full pass of transformers'
    own attention gives: a chunk that silently lost its past, or a split attention that
    weighed its two parts wrong, would be off by far more than float noise."""
    import torch

    from scorer_service.conversation import Variant
    from scorer_service.tokenization import build_token_ids

    (conversation,) = load_conversations(fixtures_dir / "build-server.json")
    messages = flatten(conversation)
    tokenized = build_token_ids(messages, embedded_backend.tokenizer, Variant.WITH_MEMORIES)
    ranges = [(r.start, r.end) for r in tokenized.replies]
    small_chunks = LocalBackend(
        embedded_backend.model, embedded_backend.tokenizer, "smollm2", chunk_tokens=16
    )
    seen: list[tuple[int, int]] = []
    (chunked,) = await small_chunks.score(
        [ScoreRequest(tokenized.token_ids, ranges)], lambda d, t, _: seen.append((d, t))
    )
    ids = torch.tensor([tokenized.token_ids])
    # The reference is transformers' own attention in one pass: the engine's split
    # attention (backends/attention.py) is what is checked, not assumed.
    model = embedded_backend.model
    assert model.config._attn_implementation == attention.NAME
    model.set_attn_implementation("sdpa")
    try:
        with torch.inference_mode():
            full = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    finally:
        model.set_attn_implementation(attention.NAME)
    for (start, end), values in zip(ranges, chunked, strict=True):
        expected = [float(full[p - 1, tokenized.token_ids[p]]) for p in range(start, end)]
        assert max(abs(a - b) for a, b in zip(values, expected, strict=True)) < 1e-3
    # Progress counts the prompt tokens run, one step per chunk.
    length = len(tokenized.token_ids)
    assert seen == [(min(done, length), length) for done in range(16, length + 16, 16)]
