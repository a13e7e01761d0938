"""Does `torch.compile` make the local engine's `mixed` scoring faster on this CPU?

The profile of a scoring (docs/design.md §5) puts about a quarter of the time in element-wise
work (the norms, the rotary embedding, the residual adds, the casts around the attention),
which inductor can fuse. Each row loads the embedded model with `--dtype mixed` in this
process and scores pairs of prompts of three lengths (a conversation's two variants, no kept
cache), the way `bench_dtype.py` does:

- as it runs today (the baseline, in the same run);
- the RMS norms and `apply_rotary_pos_emb` compiled (dynamic shapes): the element-wise
  parts only, the multiplies and the attention as today;
- every decoder layer compiled whole (dynamic shapes).

Reported per row and prompt length: the first call's seconds (what a Scorer's start pays,
compiling included) and the best of three later calls in prompt tokens/s. Lengths change
between calls, as chunks of conversations do, so recompiles show up in the first call of
each length.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_compile.py [--lengths 1024,700,1500]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scorer_service.backends.base import ScoreRequest  # noqa: E402
from scorer_service.backends.local import LocalBackend  # noqa: E402

ROWS = ("as today", "norms + rotary compiled", "decoder layers compiled")


def compile_parts(model: Any, row: str) -> None:
    import torch
    from transformers.models.llama import modeling_llama

    if row == "norms + rotary compiled":
        for module in model.modules():
            if type(module).__name__.endswith("RMSNorm"):
                module.forward = torch.compile(module.forward, dynamic=True)
        modeling_llama.apply_rotary_pos_emb = torch.compile(
            modeling_llama.apply_rotary_pos_emb, dynamic=True
        )
    elif row == "decoder layers compiled":
        layers = model.model.layers
        for i, layer in enumerate(layers):
            layers[i] = torch.compile(layer, dynamic=True)


async def timed(backend: LocalBackend, length: int, repeat: int) -> tuple[float, float]:
    """(first call s, best later call prompt tokens/s) on a pair of `length`-token prompts."""
    prompt = [(13 * i) % 40000 + 100 for i in range(length)]
    scored = [(length - 24, length)]
    pair = [ScoreRequest(prompt, scored), ScoreRequest(prompt[::-1], scored)]
    start = time.perf_counter()
    await backend.score(pair)
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await backend.score(pair)
        best = min(best, time.perf_counter() - start)
    return first, 2 * length / best


async def main(lengths: list[int], repeat: int) -> None:
    from transformers.models.llama import modeling_llama

    stock_rotary = modeling_llama.apply_rotary_pos_emb
    results: dict[str, list[tuple[float, float]]] = {}
    for row in ROWS:
        modeling_llama.apply_rotary_pos_emb = stock_rotary
        backend = LocalBackend.load(device="cpu", dtype="mixed", kv_cache_mb=0)
        compile_parts(backend.model, row)
        results[row] = [await timed(backend, length, repeat) for length in lengths]
        await backend.aclose()
        del backend
    modeling_llama.apply_rotary_pos_emb = stock_rotary
    head = "".join(f"{f'{n}: first s':>16}{'tok/s':>7}" for n in lengths)
    print(f"{'local mixed':<26}{head}{'tok/s vs today':>16}")
    today = results[ROWS[0]]
    for row, found in results.items():
        cells = "".join(f"{first:>16.1f}{speed:>7.0f}" for first, speed in found)
        ratio = sum(s for _, s in found) / sum(s for _, s in today)
        print(f"{row:<26}{cells}{ratio:>15.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1024,700,1500")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main([int(n) for n in args.lengths.split(",")], args.repeat))
