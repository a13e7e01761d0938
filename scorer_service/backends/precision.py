"""Which arithmetic the local engine runs in: `--dtype`.

- `float32`: everything in float32 (exact agreement with a float32 vLLM, to 1e-5).
- `mixed`: the attention's value and output projections and the MLP's three projections
  multiply bfloat16-rounded inputs and weights, accumulating and returning float32 (oneDNN's
  bfloat16 "fpmath" mode, set for each of those calls only); the attention itself takes
  bfloat16 queries, keys and values (`attention.py`, the split flash calls). The residual
  stream, the norms, the query and key projections, the output layer and the log-softmax
  stay float32. On a CPU with bfloat16 dot-product instructions (AVX512-BF16, AMX) those
  multiplies run three to four times as fast as in float32. What stays float32 was chosen by
  measuring each group's share of the error (bench/bench_dtype.py on the fixtures and the
  fact set's conversations, 137 replies):
  - a projection that *returns* bfloat16 rounds its outputs: the down projection writes the
    model's massive activations into the residual stream (up to 2.5e4 on the embedded model,
    where bfloat16 rounds by up to 64), and returning bfloat16 there moved a divergence by up
    to 0.039 nats/token. With float32 outputs only the inputs and weights are rounded (a
    relative 2^-9 per product, averaged over 1,536 products), and the down projection joins
    the bfloat16 multiplies: with it, the largest move over the 137 replies is 0.025, the
    mean 0.006, as before it joined (stop 29);
  - the query and key projections decide the attention scores: rounding them moved a
    divergence by up to 0.031 on the 137 replies with two threads and 0.042 with one, so they
    stay float32 (in bfloat16 with float32 outputs: up to 0.041, two replies past 0.03).
    So does the output layer: rounding its inputs took the largest move from 0.025 to 0.030
    and gained no speed (`bench_dtype.py`). Where the rounding falls changes with the thread
    count, so the largest move is a tail, not a bound;
  - bfloat16 weights throughout: up to 0.082, 26 of the 137 replies past 0.03 (stop 29).
- `bfloat16`, `float16`: the whole model in that dtype (GPUs); the log-softmax stays float32.
- `auto`: bfloat16 on a GPU; on a CPU `mixed` where it has bfloat16 instructions, else float32
  (emulated bfloat16 multiplies are slower than float32 ones). On a CPU without them oneDNN
  ignores the bfloat16 mode, so `mixed` asked for there multiplies in float32 (measured on
  an AVX-512 CPU without AVX512-BF16, stop 32: the same values as float32 to 2e-6).

The weights stay float32 (oneDNN rounds them as it multiplies), so a LoRA adapter loaded
later wraps a mixed layer as it wraps any `torch.nn.Linear`, and its own small multiplies are
float32.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHOICES = ("auto", "float32", "mixed", "bfloat16", "float16")
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 dot products.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# Linear layers that stay float32 in `mixed` (Llama-family names): see above.
FLOAT32_LAYERS = frozenset({"q_proj", "k_proj"})


@dataclass(frozen=True)
class Precision:
    name: str  # float32, mixed, bfloat16 or float16
    weights: Any  # the torch dtype the model is loaded in
    bf16_matmuls: bool  # most of the decoder's projections multiply in bfloat16


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
    """Make the decoder's linear layers multiply bfloat16-rounded inputs and weights into
    float32 (in place), except those whose name is in `keep`; the number changed.

    The embeddings and the output layer are left exact: the output layer's logits feed the
    log-softmax of every scored token."""
    import torch

    linear = bf16_linear_class()
    changed = 0
    for name, module in model.base_model.named_modules():
        if (
            type(module) is torch.nn.Linear
            and module is not model.get_output_embeddings()
            and name.rpartition(".")[2] not in keep
        ):
            module.__class__ = linear
            changed += 1
    return changed


@contextmanager
def bf16_fpmath() -> Iterator[None]:
    """Within: a float32 matrix multiply on the CPU rounds its inputs to bfloat16 and
    accumulates in float32 (oneDNN's fpmath mode; the native bfloat16 instructions), then the
    setting as it was. The setting is the process's: the local engine runs its model on one
    thread (`scheduler.py`), so nothing else multiplies meanwhile."""
    import torch

    matmul: Any = torch.backends.mkldnn.matmul  # type: ignore[attr-defined]
    before = matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = before


@functools.cache
def bf16_linear_class() -> type:
    import torch
    import torch.nn.functional as F

    class Bf16Linear(torch.nn.Linear):
        """A float32 linear layer that multiplies in bfloat16 with float32 accumulation and
        output (`bf16_fpmath`)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with bf16_fpmath():
                return F.linear(x, self.weight, self.bias)

    return Bf16Linear
