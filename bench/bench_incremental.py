"""Scoring after each turn: what a new turn costs with kept KV caches and without.

A conversation with two memories grows turn by turn to 41 turns (about 2,700 tokens per
variant); after each turn its new reply is scored, as the Review asks. Two engines share the
embedded float32 model in this process: one keeps caches (`--kv-cache-mb`, default 1024),
one keeps none (the baseline: every turn runs the whole history again). Both are compared
with scoring a one-turn conversation from scratch, measured in the same run. Then the
budget is filled with further long conversations and the process's peak RSS is read.

Target (issue 9): turn 41 costs at most 2x a one-turn conversation (it was 22x).

    .venv/bin/python bench/bench_incremental.py [--turns 41] [--kv-cache-mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from typing import Any

from ftreview.conversations import parse_conversation

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import score_conversation

TOPICS = ["the garden", "the build server", "the thesis", "the cat", "the trip to Porto"]


def nodes(turns: int, tag: str = "") -> list[dict[str, Any]]:
    conversation: list[dict[str, Any]] = [
        {"role": "system", "content": f"You are a helpful assistant.{tag}", "timestamp": 1},
        {
            "role": "system",
            "memory": True,
            "timestamp": 2,
            "content": "Memory: the cat is Biscuit.",
        },
        {"role": "system", "memory": True, "timestamp": 3, "content": "Memory: fennec builds."},
    ]
    for turn in range(turns):
        topic = TOPICS[turn % len(TOPICS)]
        conversation.append(
            {
                "role": "user",
                "timestamp": 10 + 2 * turn,
                "content": f"Turn {turn}: tell me one thing about {topic} in a sentence or two.",
            }
        )
        conversation.append(
            {
                "role": "assistant",
                "timestamp": 11 + 2 * turn,
                "content": f"About {topic}: everything is on track for turn {turn}, and "
                f"nothing needs your attention today beyond the usual checks.",
            }
        )
    return conversation


async def score_last(engine: LocalBackend, conversation: list[dict[str, Any]]) -> float:
    messages = flatten(parse_conversation({"id": "bench", "nodes": conversation}))
    start = time.perf_counter()
    await score_conversation(
        messages,
        engine.tokenizer,
        engine,
        conversation_id="bench",
        context_length=engine.context_length,
        only=frozenset({messages[-1].timestamp_ns}),
    )
    return time.perf_counter() - start


async def main(turns: int, kv_cache_mb: int) -> None:
    shared = LocalBackend.load(device="cpu", dtype="float32", kv_cache_mb=0)
    args = (shared.model, shared.tokenizer, shared.model_name)
    reuse = LocalBackend(*args, kv_cache_mb=kv_cache_mb)
    scratch = LocalBackend(*args, kv_cache_mb=0)
    for warm_up in range(3):
        await score_last(scratch, nodes(1, f" (warm-up {warm_up})"))
    one_turn_times = [await score_last(scratch, nodes(1, f" ({i})")) for i in range(5)]
    text = shared.tokenizer.apply_chat_template(
        [{"role": n["role"], "content": n["content"]} for n in nodes(turns)], tokenize=False
    )
    prompt_tokens = len(shared.tokenizer(text, add_special_tokens=False)["input_ids"])
    print(f"{turns}-turn conversation: {prompt_tokens} tokens with memories")
    sample = {1, 2, 5, 10, 20, 30, turns - 1, turns}
    rows = []
    for turn in range(1, turns + 1):
        with_reuse = await score_last(reuse, nodes(turn))
        if turn in sample:
            rows.append((turn, with_reuse, await score_last(scratch, nodes(turn))))
    # The baseline again after the turns: the machine's load may have changed meanwhile.
    one_turn_times += [await score_last(scratch, nodes(1, f" (after {i})")) for i in range(5)]
    one_turn = statistics.median(one_turn_times)
    print(
        f"one-turn conversation from scratch: median {one_turn:.3f} s "
        f"(min {min(one_turn_times):.3f}, max {max(one_turn_times):.3f}, n={len(one_turn_times)})"
    )
    print(f"{'turn':>5}{'with reuse s':>14}{'x one-turn':>12}{'no reuse s':>12}{'x one-turn':>12}")
    for turn, with_reuse, without in rows:
        print(
            f"{turn:>5}{with_reuse:>14.3f}{with_reuse / one_turn:>12.2f}"
            f"{without:>12.3f}{without / one_turn:>12.2f}"
        )
    # Fill the budget with other long conversations, then read the peak.
    tag = 0
    while reuse.kv_cache.used_bytes < 0.9 * reuse.kv_cache.budget_bytes and tag < 20:
        tag += 1
        await score_last(reuse, nodes(turns, f" (filler {tag})"))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nKV budget {kv_cache_mb} MiB: {reuse.kv_cache.used_bytes / 2**20:.0f} MiB held in "
        f"{len(reuse.kv_cache)} entries after {tag} filler conversations; "
        f"peak RSS {peak_mib:.0f} MiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=41)
    parser.add_argument("--kv-cache-mb", type=int, default=1024)
    options = parser.parse_args()
    asyncio.run(main(options.turns, options.kv_cache_mb))
