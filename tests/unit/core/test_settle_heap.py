"""`settle_heap`: what a service loaded at start is collected once, then never walked again
by the cyclic collector (a full collection over the Review's 9,000 loaded candidates paused
every call in flight for ~45 ms; bench/bench_review.py shows the p99 it set)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from ftreview.core.server import settle_heap


class Node:
    other: object = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # other tests expect an ordinary heap


def test_objects_loaded_before_are_frozen_and_garbage_is_collected_first(unfrozen: None) -> None:
    loaded = [[index] for index in range(1000)]  # tracked containers, like the view's rows
    cycle = Node()
    cycle.other = cycle
    garbage = weakref.ref(cycle)
    del cycle
    settle_heap()
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(row) in tracked for row in loaded), "loaded rows are frozen"
    assert gc.get_freeze_count() >= len(loaded)
    assert garbage() is None, "cyclic garbage was collected, not frozen"
