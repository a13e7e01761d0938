"""Attention caches of recently scored prompts, kept by token prefix within a memory budget.

Invariants:
- an entry holds, for every layer, the keys and values of exactly the tokens in its key
  (batch 1, no padding), so any prefix of it is the cache of that prefix: a prompt that
  shares its first k tokens with an entry may start its forward pass at token k;
- the entries' tensors are never written after they are stored (a pass that reuses one
  copies it into its own batch), so a reader needs no lock on the tensors themselves;
- the bytes held (keys and values, counted from the tensors) never exceed the budget: the
  least recently used entries go first, and an entry larger than the whole budget is not
  kept;
- an entry that is a prefix of a newer one is dropped when the newer one is stored: the
  newer one answers every lookup the older one could.

Entries are not keyed by conversation: the two variants of a conversation (with and without
memories) find each other's shared prefix (the tokens before the first memory), and a turn
that was edited falls back to the longest prefix any entry still shares.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Sized for a 24 GiB, 2-core machine: SmolLM2-135M keeps 45 KiB per token in float32, so this
# holds both variants of about four 2,700-token conversations.
DEFAULT_KV_CACHE_MB = 1024

# Keys and values of one layer, each (1, kv_heads, tokens, head_dim).
LayerKV = tuple[Any, Any]


@dataclass(frozen=True)
class CachedPrefix:
    tokens: np.ndarray  # int64, the tokens the cache was computed on
    layers: list[LayerKV]
    nbytes: int

    def __len__(self) -> int:
        return len(self.tokens)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def kv_nbytes(layers: Sequence[LayerKV]) -> int:
    return sum(int(k.nbytes) + int(v.nbytes) for k, v in layers)


class PrefixCache:
    """LRU of `CachedPrefix` entries within `budget_bytes`. Thread-safe."""

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"the KV cache budget must be >= 0 bytes, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[int, CachedPrefix] = OrderedDict()
        self._next_id = 0
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return self._used

    @property
    def cached_tokens(self) -> int:
        """Tokens held over all entries (what `used_bytes` pays for)."""
        with self._lock:
            return sum(len(entry) for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, tokens: np.ndarray) -> tuple[CachedPrefix | None, int]:
        """The entry sharing the longest prefix with `tokens`, and how many tokens it shares
        (0 and None when no entry shares any). The entry becomes the most recently used."""
        with self._lock:
            best_id, best, best_length = -1, None, 0
            for entry_id, entry in self._entries.items():
                length = common_prefix(entry.tokens, tokens)
                if length > best_length:
                    best_id, best, best_length = entry_id, entry, length
            if best is not None:
                self._entries.move_to_end(best_id)
            return best, best_length

    def put(self, tokens: np.ndarray, layers: list[LayerKV]) -> bool:
        """Keep `layers` as the cache of `tokens`; False when it is larger than the budget."""
        nbytes = kv_nbytes(layers)
        if nbytes > self.budget_bytes or len(tokens) == 0:
            return False
        entry = CachedPrefix(np.array(tokens, dtype=np.int64), layers, nbytes)
        with self._lock:
            for entry_id, old in list(self._entries.items()):
                if len(old) <= len(entry) and common_prefix(old.tokens, entry.tokens) == len(old):
                    self._drop(entry_id)
            while self._entries and self._used + nbytes > self.budget_bytes:
                self._drop(next(iter(self._entries)))
            self._entries[self._next_id] = entry
            self._next_id += 1
            self._used += nbytes
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used = 0

    def _drop(self, entry_id: int) -> None:
        self._used -= self._entries.pop(entry_id).nbytes
