"""A cancelled call stops its forward passes between chunks (the real embedded model)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.local import LocalBackend
from scorer_service.errors import WorkCancelled

# A long prompt in small chunks: about 60 chunks to stop between.
LENGTH, CHUNK = 1900, 32


@pytest.fixture
async def engine(embedded_backend: LocalBackend) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(
        embedded_backend.model,
        embedded_backend.tokenizer,
        embedded_backend.model_name,
        chunk_tokens=CHUNK,
        kv_cache_mb=0,
    )
    yield backend
    await backend.aclose()


def long_request() -> ScoreRequest:
    return ScoreRequest([(7 * i) % 5000 + 10 for i in range(LENGTH)], [(LENGTH - 5, LENGTH)])


async def test_a_cancelled_task_stops_the_pass_at_the_next_chunk(engine: LocalBackend) -> None:
    started = threading.Event()
    task = asyncio.create_task(engine.score([long_request()], lambda done, total, _: started.set()))
    assert await asyncio.to_thread(started.wait, 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker is free again well before the long pass would have ended.
    short = ScoreRequest([10, 11, 12, 13], [(1, 4)])
    (values,) = await asyncio.wait_for(engine.score([short]), 120)
    assert len(values[0]) == 3
    assert engine.tokens_run < LENGTH / 2


async def test_should_stop_ends_score_and_generate_with_work_cancelled(
    engine: LocalBackend,
) -> None:
    stop = threading.Event()
    with pytest.raises(WorkCancelled):
        await engine.score(
            [long_request()], lambda done, total, _: stop.set(), should_stop=stop.is_set
        )
    assert engine.tokens_run <= 2 * CHUNK
    # Generation checks between tokens: a set signal stops it before its first token.
    with pytest.raises(WorkCancelled):
        await engine.generate([10, 11, 12], 50, should_stop=stop.is_set)
