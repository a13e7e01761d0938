"""Bytes on the wire to score one conversation: `vllm` (every position) vs `vllm-score`.

A 4,000-token context with 5 assistant replies of 20 tokens spread over it, scored the way
the Scorer does it: one request per variant (with memories: 4,000 tokens; without: the
300 memory tokens removed). Both adapters run their real HTTP stack against the in-test vLLM
stand-in (tests/support/fake_vllm.py), which counts the body bytes of every request and
answer. Upstream vLLM must send an entry for every prompt position; `/score` with
`score_ranges` sends the 100 scored values only.

Run: .venv/bin/python bench/bench_wire_bytes.py
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

# Run as a script, so the repository root (home of tests.support) is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.vllm import VllmBackend, VllmServerBackend
from scorer_service.backends.vllm_score import VllmScoreBackend
from tests.support.fake_vllm import MODEL, FakeVllm

CONTEXT_TOKENS = 4_000
MEMORY_TOKENS = 300
REPLIES = 5
REPLY_TOKENS = 20


def conversation_requests() -> list[ScoreRequest]:
    """The with- and without-memories prompts of one conversation, replies at the same
    relative places, the memories at the front (as a system message would be)."""
    rng = random.Random(4000)
    tokens = [rng.randrange(100, 49_000) for _ in range(CONTEXT_TOKENS)]
    tokens[0] = 1  # BOS
    step = (CONTEXT_TOKENS - MEMORY_TOKENS) // REPLIES
    starts = [MEMORY_TOKENS + step * (index + 1) - REPLY_TOKENS for index in range(REPLIES)]
    with_memories = ScoreRequest(
        token_ids=tokens, ranges=[(start, start + REPLY_TOKENS) for start in starts]
    )
    without = [tokens[0], *tokens[1 + MEMORY_TOKENS :]]
    shift = MEMORY_TOKENS
    without_memories = ScoreRequest(
        token_ids=without,
        ranges=[(start - shift, start - shift + REPLY_TOKENS) for start in starts],
    )
    return [with_memories, without_memories]


async def measure(
    kind: type[VllmServerBackend], requests: list[ScoreRequest]
) -> tuple[int, int, int, list[list[list[float]]]]:
    with FakeVllm() as server:
        backend = kind([server.url], MODEL)
        try:
            results = await backend.score(requests)
        finally:
            await backend.aclose()
        exchanges = server.exchanges
    sent = sum(exchange.request_bytes for exchange in exchanges)
    received = sum(exchange.response_bytes for exchange in exchanges)
    return len(exchanges), sent, received, results


async def main() -> None:
    requests = conversation_requests()
    scored = sum(end - start for request in requests for start, end in request.ranges)
    positions = sum(len(request.token_ids) for request in requests)
    rows = {kind.name: await measure(kind, requests) for kind in (VllmBackend, VllmScoreBackend)}
    full, ranged = rows["vllm"], rows["vllm-score"]
    if full[3] != ranged[3]:
        raise SystemExit("the two adapters returned different log-probabilities")

    print(
        f"one conversation: {CONTEXT_TOKENS}-token context, {REPLIES} replies x {REPLY_TOKENS} "
        f"tokens, 2 variants ({positions} prompt positions, {scored} scored)"
    )
    print(f"{'backend':<12}{'requests':>9}{'request B':>12}{'response B':>13}{'total B':>12}")
    for name, (count, sent, received, _) in rows.items():
        print(f"{name:<12}{count:>9}{sent:>12,}{received:>13,}{sent + received:>12,}")
    print(
        f"response bytes per prompt position (vllm): {full[2] / positions:.0f}; "
        f"per scored value: vllm {full[2] / scored:.0f}, vllm-score {ranged[2] / scored:.0f}"
    )
    print(f"vllm / vllm-score, response bytes: {full[2] / ranged[2]:.1f}x")
    print(
        f"vllm / vllm-score, total bytes:    {(full[1] + full[2]) / (ranged[1] + ranged[2]):.1f}x"
    )
    print("log-probabilities identical between the two adapters: yes")


if __name__ == "__main__":
    asyncio.run(main())
