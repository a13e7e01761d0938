"""Fixtures of the review-screen tests: a fresh Review service per test (see `harness`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import ReviewProcess


@pytest.fixture
def review(tmp_path: Path, scorer_address: str) -> Iterator[ReviewProcess]:
    service = ReviewProcess(home=tmp_path / "home", scorer_address=scorer_address)
    service.home.mkdir()
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def unique_base_ns() -> int:
    """A reply-time base no other test uses (replies are identified by their time)."""
    return time.time_ns() // 1000 * 1000
