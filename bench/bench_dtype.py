"""The local engine's precisions on this CPU: prompt tokens/s, and how far divergences move
from float32.

float32, mixed (the attention and MLP gate/up projections multiply in bfloat16, the rest is
float32: `scorer_service/backends/precision.py`) and bfloat16 weights throughout each
load the embedded model in this process and score the same prompts (two variants of 1,024
tokens, as a conversation's pair) and the same conversations (the shared fixtures and the
bundled example), with no kept caches. The log-softmax is float32 in all three. `--dtype
auto` picks mixed on a CPU with bfloat16 instructions; it must keep every divergence within
0.03 nats/token of float32 (issue 20; tests/integration/scorer/test_kv_dtype.py holds it to
that on the fixtures).

    .venv/bin/python bench/bench_dtype.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from ftreview.conversations import load_conversations

from scorer_service.backends import precision
from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import score_conversation

REPO = Path(__file__).resolve().parent.parent
FIXTURES = [
    *sorted((REPO / "tests" / "fixtures" / "conversations").glob("*.json")),
    REPO / "examples" / "thesis-defense.json",
]


async def tokens_per_second(backend: LocalBackend, repeat: int) -> float:
    prompt = [(13 * i) % 40000 + 100 for i in range(1024)]
    pair = [ScoreRequest(prompt, [(1000, 1024)]), ScoreRequest(prompt[::-1], [(1000, 1024)])]
    await backend.score(pair)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await backend.score(pair)
        best = min(best, time.perf_counter() - start)
    return 2 * len(prompt) / best


async def divergences(backend: LocalBackend) -> dict[str, float]:
    found: dict[str, float] = {}
    for path in FIXTURES:
        for conversation in load_conversations(path):
            result = await score_conversation(
                flatten(conversation),
                backend.tokenizer,
                backend,
                conversation_id=conversation.id,
                context_length=backend.context_length,
            )
            for reply in result.replies:
                if reply.scored:
                    found[f"{path.name}:{conversation.id}:{reply.message.node_path}"] = (
                        reply.divergence
                    )
    return found


async def main(repeat: int) -> None:
    rows = {}
    for dtype in ("float32", "mixed", "bfloat16"):
        backend = LocalBackend.load(device="cpu", dtype=dtype, kv_cache_mb=0)
        rows[dtype] = (await tokens_per_second(backend, repeat), await divergences(backend))
        await backend.aclose()
        del backend
    fp32_speed, fp32 = rows["float32"]
    print(f"--dtype auto on this CPU: {precision.resolve('auto', 'cpu').name}")
    print(
        f"{'dtype':<10}{'tokens/s':>10}{'speed-up':>10}{'max |Δdiv|':>12}{'mean |Δdiv|':>13}"
        "  worst reply"
    )
    for dtype, (speed, found) in rows.items():
        differences = {key: abs(found[key] - fp32[key]) for key in fp32}
        worst = max(differences, key=lambda key: differences[key])
        print(
            f"{dtype:<10}{speed:>10.0f}{speed / fp32_speed:>10.2f}{differences[worst]:>12.4f}"
            f"{sum(differences.values()) / len(differences):>13.4f}  {worst}"
        )
    print(f"replies compared: {len(fp32)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
