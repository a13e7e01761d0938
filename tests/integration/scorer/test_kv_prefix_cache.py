"""The prefix cache's bookkeeping: longest shared prefix, LRU eviction, bytes counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorer_service.backends.kv_cache import PrefixCache


def layers(tokens: int, n_layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(1, 3, tokens, 4), torch.zeros(1, 3, tokens, 4)) for _ in range(n_layers)]


def per_token() -> int:
    return 2 * 2 * 3 * 4 * 4  # layers x (keys, values) x heads x dims x float32 bytes


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_longest_shared_prefix_wins_and_a_prefix_entry_is_replaced() -> None:
    cache = PrefixCache(10_000)
    assert cache.longest(ids(1, 2, 3)) == (None, 0)
    assert cache.put(ids(1, 2, 3), layers(3))
    assert cache.put(ids(1, 9), layers(2))
    entry, shared = cache.longest(ids(1, 2, 3, 4))
    assert shared == 3 and entry is not None and list(entry.tokens) == [1, 2, 3]
    assert cache.longest(ids(1, 9, 9))[1] == 2
    assert cache.longest(ids(7))[1] == 0
    # The same conversation one turn on: the older, shorter entry goes.
    assert cache.put(ids(1, 2, 3, 4, 5), layers(5))
    assert len(cache) == 2
    assert cache.used_bytes == (5 + 2) * per_token()


def test_least_recently_used_goes_first_and_the_budget_holds() -> None:
    cache = PrefixCache(10 * per_token())
    cache.put(ids(1, 1, 1, 1), layers(4))
    cache.put(ids(2, 2, 2, 2), layers(4))
    cache.longest(ids(1, 1))  # 1... is now the most recently used
    cache.put(ids(3, 3, 3, 3), layers(4))
    assert cache.longest(ids(2, 2))[1] == 0  # evicted
    assert cache.longest(ids(1, 1))[1] == 2
    assert cache.used_bytes == 8 * per_token() <= cache.budget_bytes
    # Larger than the whole budget: not kept, nothing else lost.
    assert not cache.put(ids(4).repeat(11), layers(11))
    assert len(cache) == 2
    cache.clear()
    assert (len(cache), cache.used_bytes) == (0, 0)
    with pytest.raises(ValueError):
        PrefixCache(-1)
