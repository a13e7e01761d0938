"""The local backend on a GPU: correctness against full logits, bfloat16 against float32,
speed and peak memory of range-only log-probabilities against full logits.

The model is SmolLM2-135M's architecture (its config.json) with random weights: the
embedded weights (a 98 MB GGUF) do not travel to the GPU machine, and every check here is
about the code path, not the values: both ways must agree on the same weights.

    python bench/gpu_check.py MODEL_FOLDER    # config.json + tokenizer files
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_scoring import ours, per_reply  # the script folder is on sys.path
from ftreview.conversations import parse_conversation
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import Message, flatten


def conversation(replies: int, filler: int = 0) -> list[Message]:
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "system", "content": "Memory: the user's cat is named Biscuit.", "memory": True},
    ]
    for turn in range(replies):
        nodes.append({"role": "user", "content": f"Question {turn}? " + "Tell me more. " * filler})
        nodes.append(
            {
                "role": "assistant",
                "content": f"Answer {turn}: Biscuit is fine.",
                "timestamp": turn + 1,
            }
        )
    return flatten(parse_conversation(nodes))


def main() -> None:
    folder = Path(sys.argv[1])
    assert torch.cuda.is_available(), "no GPU"
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    torch.manual_seed(0)
    fp32 = AutoModelForCausalLM.from_config(config).to("cuda").eval()
    bf16 = AutoModelForCausalLM.from_config(config).to("cuda", torch.bfloat16).eval()
    bf16.load_state_dict({k: v.to(torch.bfloat16) for k, v in fp32.state_dict().items()})

    messages = conversation(20)
    fast32 = LocalBackend(fp32, tokenizer, "random-smollm2")
    fast16 = LocalBackend(bf16, tokenizer, "random-smollm2")
    ours32 = asyncio.run(ours(fast32, messages))
    ours16 = asyncio.run(ours(fast16, messages))
    baseline = per_reply(fast32, messages)
    worst = max(abs(a - b) for a, b in zip(ours32, baseline, strict=True))
    worst16 = max(abs(a - b) for a, b in zip(ours16, ours32, strict=True))
    spread = max(baseline) - min(baseline)
    print(f"20 replies: fp32 range-only vs full logits, max |diff| = {worst:.2e} nats/token")
    print(f"20 replies: bf16 vs fp32, max |diff| = {worst16:.2e} (divergence spread {spread:.2e})")
    assert worst < 1e-3, "range-only log-probs disagree with full logits on the GPU"

    # Speed and memory on one long prompt: range-only chunks vs one full-logits pass.
    long_ids = list(torch.randint(0, config.vocab_size, (8000,)).tolist())
    ranges = [(s, s + 20) for s in range(1000, 8000, 1400)]
    request = ScoreRequest(long_ids, ranges)
    for label, model in (("fp32", fp32), ("bf16", bf16)):
        backend = LocalBackend(model, tokenizer, "random-smollm2")
        asyncio.run(backend.score([request, request]))  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(5):
            asyncio.run(backend.score([request, request]))
        torch.cuda.synchronize()
        ours_s = (time.perf_counter() - start) / 5
        ours_mem = torch.cuda.max_memory_allocated() / 2**20
        ids = torch.tensor([long_ids, long_ids], device="cuda")
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(5):
            with torch.inference_mode():
                torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)
        torch.cuda.synchronize()
        full_s = (time.perf_counter() - start) / 5
        full_mem = torch.cuda.max_memory_allocated() / 2**20
        print(
            f"8000-token prompt x2, {label}: range-only {ours_s * 1000:.0f} ms, "
            f"peak {ours_mem:.0f} MiB | full logits {full_s * 1000:.0f} ms, "
            f"peak {full_mem:.0f} MiB | {2 * 8000 / ours_s:,.0f} prompt tokens/s"
        )
    generation = asyncio.run(fast16.generate(long_ids[:50], 16))
    print(f"greedy generation on the GPU: {generation.token_count} tokens")


if __name__ == "__main__":
    main()
