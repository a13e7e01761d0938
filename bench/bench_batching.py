"""Twenty conversations scored at once: shared padded passes against one call at a time.

The baseline is the engine as it was: calls queue behind one another and each runs its own
pass (its two variants batched together). Batched: the twenty calls arrive together and the
engine's scheduler runs their forty prompts in shared passes within the token budget. Same
model, same process, no kept caches (so only batching differs); the results must agree.

    .venv/bin/python bench/bench_batching.py [--conversations 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from ftreview.conversations import load_conversations
from ftreview.v1 import conversation_pb2

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import ScoringResult, score_conversation

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO / "tests" / "fixtures" / "conversations"
SOURCES = [*sorted(SHARED.glob("*.json")), REPO / "examples" / "thesis-defense.json"]


def conversations(count: int) -> list[conversation_pb2.Conversation]:
    """`count` different conversations: the fixtures, each user turn tagged per copy."""
    found = [c for path in SOURCES for c in load_conversations(path) if len(c.nodes) > 2]
    made = []
    for index in range(count):
        copy = conversation_pb2.Conversation()
        copy.CopyFrom(found[index % len(found)])
        copy.id = f"{copy.id}-{index}"
        for node in copy.nodes:
            if node.HasField("leaf") and node.leaf.content and not node.memory:
                node.leaf.content = f"(#{index}) {node.leaf.content}"
                break
        made.append(copy)
    return made


async def score(engine: LocalBackend, conversation: conversation_pb2.Conversation) -> ScoringResult:
    return await score_conversation(
        flatten(conversation),
        engine.tokenizer,
        engine,
        conversation_id=conversation.id,
        context_length=engine.context_length,
    )


def logprobs(result: ScoringResult) -> list[float]:
    return [
        v for r in result.replies for t in r.tokens for v in (t.logprob_with, t.logprob_without)
    ]


async def main(count: int) -> None:
    engine = LocalBackend.load(device="cpu", dtype="float32", kv_cache_mb=0)
    batch = conversations(count)
    await score(engine, batch[0])  # warm-up
    start = time.perf_counter()
    alone = [await score(engine, conversation) for conversation in batch]
    sequential = time.perf_counter() - start
    passes = engine.passes_run
    start = time.perf_counter()
    together = await asyncio.gather(*(score(engine, conversation) for conversation in batch))
    batched = time.perf_counter() - start
    shared_passes = engine.passes_run - passes
    difference = max(
        abs(a - b)
        for x, y in zip(alone, together, strict=True)
        for a, b in zip(logprobs(x), logprobs(y), strict=True)
    )
    prompts = sum(2 for r in alone if r.backend_requests)
    print(f"{count} conversations, {prompts} prompts")
    print(f"{'mode':<28}{'wall s':>8}{'passes':>8}{'speed-up':>10}")
    print(f"{'one call at a time':<28}{sequential:>8.2f}{passes - 1:>8}{1.0:>10.2f}")
    print(
        f"{'at once, shared passes':<28}{batched:>8.2f}{shared_passes:>8}"
        f"{sequential / batched:>10.2f}"
    )
    print(f"largest log-probability difference, batched vs alone: {difference:.2e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20)
    asyncio.run(main(parser.parse_args().conversations))
