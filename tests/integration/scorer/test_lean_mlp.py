"""The local engine's in-place MLP (`scorer_service/backends/lean.py`) on the real embedded
model: every MLP is changed, and its values are the stock form's, bit for bit."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers.activations import SiLUActivation

from scorer_service.backends import lean
from scorer_service.backends.local import LocalBackend
from tests.support.adapters import random_adapter


def stock_forward(mlp: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return type(mlp).__mro__[1].forward(mlp, x)


def test_every_mlp_of_the_engine_is_lean_once(embedded_backend: LocalBackend) -> None:
    mlps = [layer.mlp for layer in embedded_backend.model.model.layers]
    assert len(mlps) == 30
    assert all(type(mlp).__name__ == "LeanLlamaMLP" for mlp in mlps)
    assert lean.lean_mlps(embedded_backend.model) == 0  # already lean: nothing to change


def test_an_mlp_with_another_activation_is_left_alone() -> None:
    class GeluMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate_proj = self.up_proj = torch.nn.Linear(4, 8)
            self.down_proj = torch.nn.Linear(8, 4)
            self.act_fn = torch.nn.GELU()

    class SiluMLP(GeluMLP):
        def __init__(self) -> None:
            super().__init__()
            self.act_fn = SiLUActivation()

    model = torch.nn.Sequential(GeluMLP(), SiluMLP())
    assert lean.lean_mlps(model) == 1
    assert type(model[0]) is GeluMLP
    assert type(model[1]).__name__ == "LeanSiluMLP"


def test_the_lean_mlp_gives_the_stock_values_bit_for_bit(embedded_backend: LocalBackend) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 300, 576)
    for layer in (0, 17, 29):
        mlp = embedded_backend.model.model.layers[layer].mlp
        with torch.inference_mode():
            assert torch.equal(mlp(x), stock_forward(mlp, x))
    # With gradients (the trainer's case) the stock form runs, and gradients flow.
    mlp = embedded_backend.model.model.layers[0].mlp
    wanted = x.clone().requires_grad_()
    mlp(wanted).sum().backward()
    assert wanted.grad is not None and wanted.grad.abs().sum() > 0


async def test_an_adapter_wraps_the_lean_mlp_and_its_values_stay_the_stock_ones(
    embedded_backend: LocalBackend, tmp_path: Path
) -> None:
    folder = random_adapter(
        embedded_backend.model, tmp_path / "v1", targets=("gate_proj", "up_proj", "down_proj")
    )
    assert await embedded_backend.load_adapter(str(folder), "v1") == "v1"
    try:
        torch.manual_seed(1)
        x = torch.randn(1, 64, 576)
        mlp = embedded_backend.model.model.layers[3].mlp
        assert hasattr(mlp.gate_proj, "get_base_layer")  # the adapter wraps its projections
        with torch.inference_mode():
            assert torch.equal(mlp(x), stock_forward(mlp, x))
    finally:
        await embedded_backend.load_adapter("", "")
