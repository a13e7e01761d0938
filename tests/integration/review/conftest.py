"""Fixtures for the Review's integration tests (helpers live in review_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from review_support import (
    Receiver,
    ReviewUnderTest,
    RunningFakeScorer,
    serve_fake_scorer,
    serve_receiver,
)


@pytest.fixture
async def fake_scorer() -> AsyncIterator[RunningFakeScorer]:
    async with serve_fake_scorer() as running:
        yield running


@pytest.fixture
async def review(tmp_path: Path, fake_scorer: RunningFakeScorer) -> AsyncIterator[ReviewUnderTest]:
    running = ReviewUnderTest(tmp_path / "home", fake_scorer.address)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as state:
        yield state
