"""Which arithmetic the local engine runs in: `--dtype`.

- `float32`: everything in float32 (exact agreement with a float32 vLLM, to 1e-5).
- `mixed`: the attention's value and output projections, the MLP's gate and up projections
  and the attention itself (`attention.py`, the split flash calls) take bfloat16 inputs; the
  residual stream, the norms, the query and key projections, the MLP's down projection, the
  output layer and the log-softmax stay float32. On a CPU with bfloat16 dot-product
  instructions (AVX512-BF16, AMX) those multiplies run two to three times as fast as in
  float32. What stays float32 was chosen by measuring each group's share of the error
  (bench/bench_dtype.py on the fixtures and the fact set's conversations, 137 replies):
  - the down projection writes the model's massive activations into the residual stream
    (outputs up to 2.5e4 on the embedded model, where bfloat16 rounds by up to 64); in
    bfloat16 it moved a divergence by up to 0.039 nats/token on the fixtures;
  - the query and key projections: rounding their inputs, weights and outputs moved the
    attention scores most; with them in bfloat16 (and the attention in float32) a divergence
    moved by up to 0.031 on the 137 replies with two threads and 0.042 with one (3 replies
    past 0.03), with them in float32 and the attention in bfloat16 by up to 0.024 and 0.036
    (one short reply past 0.03 with one thread; the mean 0.006). Where the rounding falls
    changes with the thread count, so the largest move is a tail, not a bound;
  - bfloat16 weights throughout: up to 0.063.
- `bfloat16`, `float16`: the whole model in that dtype (GPUs); the log-softmax stays float32.
- `auto`: bfloat16 on a GPU; on a CPU `mixed` where it has bfloat16 instructions, else float32
  (emulated bfloat16 multiplies are slower than float32 ones).

A LoRA adapter loaded later wraps the mixed layers as it wraps any `torch.nn.Linear`; its own
small multiplies follow its weights' dtype.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHOICES = ("auto", "float32", "mixed", "bfloat16", "float16")
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 dot products.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# Linear layers that stay float32 in `mixed` (Llama-family names): see above.
FLOAT32_LAYERS = frozenset({"q_proj", "k_proj", "down_proj"})


@dataclass(frozen=True)
class Precision:
    name: str  # float32, mixed, bfloat16 or float16
    weights: Any  # the torch dtype the model is loaded in
    bf16_matmuls: bool  # the decoder's projections multiply in bfloat16


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively (read from the kernel's CPU flags; False
    where there are none to read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not BF16_FLAGS.isdisjoint(line.partition(":")[2].split())
    return False


def resolve(dtype: str, device: str) -> Precision:
    import torch

    if dtype not in CHOICES:
        raise ValueError(f"--dtype must be one of {', '.join(CHOICES)}, not {dtype!r}")
    if dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16"
        else:
            dtype = "mixed" if cpu_has_bf16() else "float32"
    if dtype == "mixed":
        return Precision("mixed", torch.float32, True)
    return Precision(dtype, getattr(torch, dtype), False)


def bf16_matmuls(model: Any, keep: frozenset[str] = FLOAT32_LAYERS) -> int:
    """Make the decoder's linear layers multiply in bfloat16 (in place), except those whose
    name is in `keep`; the number changed.

    The embeddings and the output layer are left in float32: the output layer's logits feed
    the log-softmax, and rounding them to 8 bits of mantissa would show in every value."""
    import torch

    linear = bf16_linear_class()
    changed = 0
    for name, module in model.base_model.named_modules():
        if (
            type(module) is torch.nn.Linear
            and module is not model.get_output_embeddings()
            and name.rpartition(".")[2] not in keep
        ):
            module.weight.data = module.weight.data.to(torch.bfloat16)
            if module.bias is not None:
                module.bias.data = module.bias.data.to(torch.bfloat16)
            module.__class__ = linear
            changed += 1
    return changed


@functools.cache
def bf16_linear_class() -> type:
    import torch
    import torch.nn.functional as F

    class Bf16Linear(torch.nn.Linear):
        """A linear layer with bfloat16 weights that takes and returns the caller's dtype."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)

    return Bf16Linear
