"""The MLP's element-wise work without the allocations, for the local engine's inference.

A Llama-family MLP computes `down(silu(gate(x)) * up(x))`. Written that way it allocates
two more tensors of the intermediate size per layer and chunk (2 x 2,048 x 1,536 floats,
25 MB each, on the embedded model), and on a CPU a fresh allocation that large is fresh
pages, faulted in one at a time. Here the activation and the product overwrite the gate's
output. The arithmetic is the same, in the same order, so the values are the same bit for
bit; with gradients enabled (never in the Scorer) the stock form runs.
"""

from __future__ import annotations

from typing import Any


def lean_mlps(model: Any) -> int:
    """Give every SiLU-gated MLP of `model` the in-place form (in place); the number changed.

    An MLP is recognised by its three projections and a SiLU activation; any other is left
    as it is."""
    import torch
    from transformers.activations import SiLUActivation

    changed = 0
    for module in model.modules():
        if (
            all(hasattr(module, name) for name in ("gate_proj", "up_proj", "down_proj"))
            and type(getattr(module, "act_fn", None)) in (SiLUActivation, torch.nn.SiLU)
            and not getattr(type(module), "lean", False)
        ):
            stock = type(module)
            if stock not in _LEAN:
                _LEAN[stock] = _lean_class(stock)
            module.__class__ = _LEAN[stock]
            changed += 1
    return changed


# The lean class of each stock MLP class (made once, so every layer's MLP shares it).
_LEAN: dict[type, type] = {}


def _lean_class(stock: Any) -> type:
    import torch
    import torch.nn.functional as F

    def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            stock_output: torch.Tensor = stock.forward(self, x)
            return stock_output
        hidden = self.gate_proj(x)
        F.silu(hidden, inplace=True)
        hidden.mul_(self.up_proj(x))
        output: torch.Tensor = self.down_proj(hidden)
        return output

    return type(f"Lean{stock.__name__}", (stock,), {"forward": forward, "lean": True})
