"""The local engine's precisions on the CPU against float32, on the fixtures (the real
embedded model).

Measured (bench/bench_dtype.py, the fixtures and the fact set's conversations, 137 replies):
bfloat16 weights throughout move a divergence by up to 0.082 nats/token; `mixed` (bfloat16
multiplies with float32 accumulation and outputs in the attention's value and output
projections and the MLP's three projections, the attention itself in bfloat16, float32
elsewhere: `scorer_service/backends/precision.py`) by 0.006 on average (the largest move:
the module docstring there). `--dtype auto` picks mixed on a CPU with bfloat16
instructions, so mixed is held to what issue 20 asks of a fast default on the fixtures:
every divergence within 0.03 of float32, the same candidates, a float32 log-softmax, and a
LoRA adapter loaded onto it and off again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from ftreview.conversations import load_conversations

from scorer_service.backends import attention, precision
from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import ReplyScore, score_conversation
from tests.support.adapters import random_adapter

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "thesis-defense.json"


@pytest.fixture(scope="module")
async def bf16() -> AsyncIterator[LocalBackend]:
    backend = LocalBackend.load(device="cpu", dtype="bfloat16", kv_cache_mb=0)
    yield backend
    await backend.aclose()


@pytest.fixture(scope="module")
async def mixed() -> AsyncIterator[LocalBackend]:
    backend = LocalBackend.load(device="cpu", dtype="mixed", kv_cache_mb=0)
    yield backend
    await backend.aclose()


async def replies(backend: LocalBackend, path: Path) -> list[ReplyScore]:
    found = []
    for conversation in load_conversations(path):
        result = await score_conversation(
            flatten(conversation),
            backend.tokenizer,
            backend,
            conversation_id=conversation.id,
            context_length=backend.context_length,
        )
        found.extend(r for r in result.replies if r.scored)
    return found


def test_auto_is_bfloat16_on_a_gpu_and_mixed_only_on_a_cpu_with_bfloat16_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_bf16 = tmp_path / "with"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n")
    without = tmp_path / "without"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert precision.cpu_has_bf16(with_bf16)
    assert not precision.cpu_has_bf16(without)
    assert not precision.cpu_has_bf16(tmp_path / "absent")  # not Linux: no flags to read

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve("auto", "cpu") == precision.Precision("mixed", torch.float32, True)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve("auto", "cpu") == precision.Precision("float32", torch.float32, False)
    assert precision.resolve("auto", "cuda:0").weights == torch.bfloat16
    assert precision.resolve("float32", "cpu").bf16_matmuls is False
    with pytest.raises(ValueError, match="--dtype must be one of auto, float32, mixed"):
        precision.resolve("int8", "cpu")


def test_a_mixed_layer_rounds_to_bfloat16_and_accumulates_and_returns_float32() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(1536, 64)
    x = torch.randn(8, 1536)
    exact = F.linear(x, layer.weight, layer.bias)
    layer.__class__ = precision.bf16_linear_class()
    before = torch.backends.mkldnn.matmul.fp32_precision
    y = layer(x)
    assert y.dtype == torch.float32
    assert torch.backends.mkldnn.matmul.fp32_precision == before  # set for the call only
    assert F.linear(x, layer.weight, layer.bias).equal(exact)  # the next plain call is exact

    def rounded(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.bfloat16).double()

    # Rounded inputs and weights, summed in float32 (not rounded again to bfloat16): within
    # float32 accumulation of the exact sum of the rounded products.
    reference = rounded(x) @ rounded(layer.weight).T + layer.bias.double()
    assert (exact.double() - reference).abs().max().item() > 1e-3  # rounding shows
    if precision.cpu_has_bf16():
        assert (y.double() - reference).abs().max().item() < 1e-4
    else:
        # oneDNN has no bfloat16 kernel here and ignores the mode: float32, as `auto` picks
        # on such a CPU (the mode changes nothing but the name).
        assert (y - exact).abs().max().item() < 1e-5
    # A bfloat16 output would be off by up to half a bfloat16 step of the value.
    assert not torch.equal(y, y.to(torch.bfloat16).float())

    class Failing(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with precision.bf16_fpmath():
                raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        Failing(2, 2)(torch.ones(1, 2))
    assert torch.backends.mkldnn.matmul.fp32_precision == before


async def test_mixed_multiplies_in_bfloat16_and_keeps_the_rest_float32(
    mixed: LocalBackend,
) -> None:
    layer = mixed.model.model.layers[0]
    attention_layer, mlp = layer.self_attn, layer.mlp
    rounding = precision.bf16_linear_class()
    for projection in (
        attention_layer.v_proj,
        attention_layer.o_proj,
        mlp.gate_proj,
        mlp.up_proj,
        mlp.down_proj,
    ):
        assert type(projection) is rounding
    for projection in (attention_layer.q_proj, attention_layer.k_proj):
        assert type(projection) is torch.nn.Linear
    assert all(p.dtype == torch.float32 for p in mixed.model.parameters())
    assert type(mixed.model.get_output_embeddings()) is torch.nn.Linear
    assert mixed.model.config._attn_implementation == attention.NAME_BF16
    assert mixed.precision == "mixed"
    assert (await mixed.info()).notes == ["computes in mixed (--dtype)"]


async def test_mixed_divergences_stay_within_0_03_of_float32(
    mixed: LocalBackend, embedded_backend: LocalBackend, fixtures_dir: Path
) -> None:
    differences: list[float] = []
    values: list[float] = []
    for path in [*sorted(fixtures_dir.glob("*.json")), EXAMPLE]:
        fast, full = await replies(mixed, path), await replies(embedded_backend, path)
        assert [r.message.node_path for r in fast] == [r.message.node_path for r in full]
        for a, b in zip(fast, full, strict=True):
            differences.append(abs(a.divergence - b.divergence))
            assert differences[-1] <= 0.03, (path.name, a.message.node_path)
            assert (a.divergence > 1.0) == (b.divergence > 1.0)
            values.extend(t.logprob_with for t in a.tokens)
    assert len(differences) >= 10
    # Not float32 by accident: the multiplies did round.
    assert max(differences) > 1e-4
    off_grid = [v for v in values if v != float(torch.tensor(v).to(torch.bfloat16))]
    assert len(off_grid) > len(values) / 2


async def test_an_adapter_loads_onto_mixed_layers_and_off_again(
    mixed: LocalBackend, tmp_path: Path, fixtures_dir: Path
) -> None:
    base = [r.divergence for r in await replies(mixed, fixtures_dir / "biscuit.json")]
    folder = random_adapter(mixed.model, tmp_path / "v1")
    assert await mixed.load_adapter(str(folder), "v1") == "v1"
    try:
        attention_layer = mixed.model.model.layers[0].self_attn
        assert type(attention_layer.v_proj.get_base_layer()) is precision.bf16_linear_class()
        assert type(attention_layer.q_proj.get_base_layer()) is torch.nn.Linear
        adapted = [r.divergence for r in await replies(mixed, fixtures_dir / "biscuit.json")]
        assert max(abs(a - b) for a, b in zip(adapted, base, strict=True)) > 1e-3
    finally:
        await mixed.load_adapter("", "")
    again = [r.divergence for r in await replies(mixed, fixtures_dir / "biscuit.json")]
    assert again == base


async def test_bfloat16_divergences_stay_near_float32(
    bf16: LocalBackend, embedded_backend: LocalBackend, fixtures_dir: Path
) -> None:
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    compared = 0
    values: list[float] = []
    for path in [*sorted(fixtures_dir.glob("*.json")), EXAMPLE]:
        low, full = await replies(bf16, path), await replies(embedded_backend, path)
        assert [r.message.node_path for r in low] == [r.message.node_path for r in full]
        for a, b in zip(low, full, strict=True):
            assert a.divergence == pytest.approx(b.divergence, abs=0.1), (path, a.message.node_path)
            assert (a.divergence > 1.0) == (b.divergence > 1.0)
            values.extend(t.logprob_with for t in a.tokens)
            compared += 1
    assert compared >= 10
    # A float32 log-softmax: most values do not sit on bfloat16's coarse grid.
    off_grid = [v for v in values if v != float(torch.tensor(v).to(torch.bfloat16))]
    assert len(off_grid) > len(values) / 2
