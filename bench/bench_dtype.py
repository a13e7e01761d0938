"""The local engine's precisions on this CPU: prompt tokens/s, and how far divergences move
from float32.

Each row loads the embedded model in this process and scores the same prompts (two
variants of 1,024 tokens, as a conversation's pair) and the same conversations (the
fixtures, the bundled example and every conversation of the fact set, both halves), with
no kept caches. The log-softmax is float32 in all of them.

- float32;
- mixed: `--dtype mixed` as it is now (`scorer_service/backends/precision.py`);
- mixed as it was until stop 28, the baseline: bfloat16 weights and bfloat16 *outputs* in
  the value, output, gate and up projections, the down projection float32;
- two rows that show why the rest stays float32: mixed with the output layer in bfloat16
  too, and mixed with the query and key projections in bfloat16 too (both with float32
  outputs, as mixed);
- bfloat16 weights throughout.

`--dtype auto` picks mixed on a CPU with bfloat16 instructions; it must keep every
divergence within 0.03 nats/token of float32 (issue 20; tests/integration/scorer/
test_kv_dtype.py holds it to that on the fixtures).

    .venv/bin/python bench/bench_dtype.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from ftreview.conversations import load_conversations, parse_conversation
from ftreview.v1 import conversation_pb2 as pb

from scorer_service.backends import precision
from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.model_files import load_model
from scorer_service.scoring import score_conversation

REPO = Path(__file__).resolve().parent.parent
FIXTURES = [
    *sorted((REPO / "tests" / "fixtures" / "conversations").glob("*.json")),
    REPO / "examples" / "thesis-defense.json",
]
FACT_SET = REPO / "bench" / "learning" / "facts.json"
EARLIER_MIXED = "mixed until stop 28"
WITH_OUTPUT = "mixed + output layer"
WITH_QK = "mixed + query, key"


def conversations() -> list[tuple[str, pb.Conversation]]:
    """(where it comes from, conversation) of every conversation compared."""
    found: list[tuple[str, pb.Conversation]] = [
        (path.name, conversation) for path in FIXTURES for conversation in load_conversations(path)
    ]
    for raw in json.loads(FACT_SET.read_text(encoding="utf-8"))["conversations"]:
        conversation = {"id": raw["id"], "nodes": raw["nodes"]}
        found.append((f"facts.json:{raw['split']}", parse_conversation(conversation, raw["id"])))
    return found


def earlier_mixed(kv_cache_mb: int = 0) -> LocalBackend:
    """The mixed precision until stop 28: the value, output, gate and up projections with
    bfloat16 weights, taking and returning bfloat16 (their outputs rounded); the query, key
    and down projections float32; the attention in bfloat16 as now."""
    import torch
    import torch.nn.functional as F

    class RoundingLinear(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)

    model, tokenizer, name = load_model(None, "cpu", torch.float32)
    for layer in model.model.layers:
        for module in (
            layer.self_attn.v_proj,
            layer.self_attn.o_proj,
            layer.mlp.gate_proj,
            layer.mlp.up_proj,
        ):
            module.weight.data = module.weight.data.to(torch.bfloat16)
            module.__class__ = RoundingLinear
    return LocalBackend(model, tokenizer, name, kv_cache_mb=kv_cache_mb, precision_name="mixed")


def mixed_and(more: str) -> LocalBackend:
    """Today's mixed, with the output layer or the query and key projections in bfloat16 too."""
    import torch

    model, tokenizer, name = load_model(None, "cpu", torch.float32)
    if more == WITH_OUTPUT:
        precision.bf16_matmuls(model)
        model.get_output_embeddings().__class__ = precision.bf16_linear_class()
    else:
        precision.bf16_matmuls(model, keep=frozenset())
    return LocalBackend(model, tokenizer, name, kv_cache_mb=0, precision_name="mixed")


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
    for where, conversation in conversations():
        result = await score_conversation(
            flatten(conversation),
            backend.tokenizer,
            backend,
            conversation_id=conversation.id,
            context_length=backend.context_length,
        )
        for reply in result.replies:
            if reply.scored:
                key = f"{where}:{conversation.id}:{reply.message.node_path}"
                found[key] = reply.divergence
    return found


async def main(repeat: int) -> None:
    rows = {}
    for dtype in ("float32", "mixed", EARLIER_MIXED, WITH_OUTPUT, WITH_QK, "bfloat16"):
        if dtype == EARLIER_MIXED:
            backend = earlier_mixed()
        elif dtype in (WITH_OUTPUT, WITH_QK):
            backend = mixed_and(dtype)
        else:
            backend = LocalBackend.load(device="cpu", dtype=dtype, kv_cache_mb=0)
        rows[dtype] = (await tokens_per_second(backend, repeat), await divergences(backend))
        await backend.aclose()
        del backend
    fp32_speed, fp32 = rows["float32"]
    print(f"--dtype auto on this CPU: {precision.resolve('auto', 'cpu').name}")
    print(
        f"{'dtype':<22}{'tokens/s':>9}{'speed-up':>9}{'max |Δdiv|':>11}{'mean':>7}{'> 0.03':>7}"
        "  worst reply"
    )
    for dtype, (speed, found) in rows.items():
        differences = {key: abs(found[key] - fp32[key]) for key in fp32}
        worst = max(differences, key=lambda key: differences[key])
        over = sum(value > 0.03 for value in differences.values())
        print(
            f"{dtype:<22}{speed:>9.0f}{speed / fp32_speed:>9.2f}{differences[worst]:>11.4f}"
            f"{sum(differences.values()) / len(differences):>7.4f}{over:>7}  {worst}"
        )
    print(f"replies compared: {len(fp32)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
