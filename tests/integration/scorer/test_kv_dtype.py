"""bfloat16 weights on the CPU against float32, on the fixtures (the real embedded model).

Measured (bench/bench_dtype.py): bfloat16 moves a divergence by up to 0.056 nats/token on
these fixtures (mean 0.018), so it misses the 0.01 the issue asked for; `--dtype auto`
therefore stays float32 on the CPU, and this test holds bfloat16 to what it does achieve:
every divergence within 0.1 of float32, candidates (above 1 nat/token) the same, and the
log-softmax taken in float32 (values are not rounded to bfloat16's 8-bit mantissa).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from ftreview.conversations import load_conversations

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.model_files import resolve_dtype
from scorer_service.scoring import ReplyScore, score_conversation

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "thesis-defense.json"


@pytest.fixture(scope="module")
async def bf16() -> AsyncIterator[LocalBackend]:
    backend = LocalBackend.load(device="cpu", dtype="bfloat16", kv_cache_mb=0)
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


def test_auto_is_float32_on_the_cpu_and_bfloat16_on_a_gpu() -> None:
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda:0") == torch.bfloat16
    with pytest.raises(ValueError, match="--dtype"):
        resolve_dtype("int8", "cpu")


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
