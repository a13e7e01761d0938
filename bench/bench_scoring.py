"""Scoring a conversation on the local backend: this service's way against the per-reply way.

This service: both variants of the whole conversation in one batched pass, log-probabilities
only at the reply positions. The baseline is how likelihood-based data-selection tools score
replies: for every reply, two forward passes (with and without memories), each over that
reply's own context, computing full logits. Both run on the same model in the same process,
and must agree on every divergence.

    .venv/bin/python bench/bench_scoring.py [--replies 5 10 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import torch
from ftreview.conversations import parse_conversation

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import Message, Variant, flatten
from scorer_service.scoring import score_conversation
from scorer_service.tokenization import build_token_ids


def conversation(replies: int) -> list[Message]:
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "system", "content": "Memory: the user's cat is named Biscuit.", "memory": True},
        {"role": "system", "content": "Memory: the build server is called fennec.", "memory": True},
    ]
    for turn in range(replies):
        nodes.append({"role": "user", "content": f"Question {turn}: what should I know today?"})
        nodes.append(
            {
                "role": "assistant",
                "content": f"Answer {turn}: your cat Biscuit is fine and fennec ran the tests.",
                "timestamp": turn + 1,
            }
        )
    return flatten(parse_conversation(nodes))


def per_reply(backend: LocalBackend, messages: list[Message]) -> list[float]:
    """Two full forward passes per reply, each over the reply's own context."""
    model, tokenizer = backend.model, backend.tokenizer
    device = next(model.parameters()).device
    divergences = []
    for index, message in enumerate(messages):
        if not message.is_reply:
            continue
        means = []
        for variant in Variant:
            tokenized = build_token_ids(messages[: index + 1], tokenizer, variant)
            reply = tokenized.replies[-1]
            ids = torch.tensor([tokenized.token_ids], device=device)
            with torch.inference_mode():
                logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            targets = ids[0, reply.start : reply.end]
            picked = logprobs[reply.start - 1 : reply.end - 1].gather(1, targets.unsqueeze(1))
            means.append(picked.squeeze(1))
        divergences.append(float((means[0] - means[1]).mean()))
    return divergences


async def ours(backend: LocalBackend, messages: list[Message]) -> list[float]:
    result = await score_conversation(
        messages,
        backend.tokenizer,
        backend,
        conversation_id="bench",
        context_length=backend.context_length,
    )
    return [r.divergence for r in result.replies]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, nargs="+", default=[5, 10, 20])
    args = parser.parse_args()
    backend = LocalBackend.load(device="cpu", dtype="float32")
    asyncio.run(ours(backend, conversation(2)))  # warm-up
    print(f"local backend, {backend.model_name}, CPU threads: {torch.get_num_threads()}")
    print(f"{'replies':>7} {'tokens':>7} {'ftreview s':>11} {'per-reply s':>12} {'ratio':>6}")
    for replies in args.replies:
        messages = conversation(replies)
        tokens = len(build_token_ids(messages, backend.tokenizer, Variant.WITH_MEMORIES).token_ids)
        start = time.perf_counter()
        fast = asyncio.run(ours(backend, messages))
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        slow = per_reply(backend, messages)
        baseline_s = time.perf_counter() - start
        worst = max(abs(a - b) for a, b in zip(fast, slow, strict=True))
        assert worst < 1e-3, f"the two ways disagree by {worst}"
        print(
            f"{replies:>7} {tokens:>7} {ours_s:>11.2f} {baseline_s:>12.2f} "
            f"{baseline_s / ours_s:>5.1f}x"
        )


if __name__ == "__main__":
    main()
