"""Forward passes over scoring rows that start from a kept prefix cache.

A row is one prompt of one call and the positions it asks for. A pass takes rows from any
number of calls, starts each from the longest prefix a kept cache shares with it, and runs
only the rest of its tokens, in chunks, through one padded batch.

Invariants:
- a row's log-probabilities equal those of a pass from scratch (up to float rounding): the
  reused keys and values are those its own prefix would produce, left padding is masked out,
  and each row gets its own position ids;
- log p(token[s]) needs the hidden state at s - 1, which no cache keeps, so a row reuses at
  most `first_scored - 1` tokens and that position is always recomputed;
- only the hidden states of asked positions go through the output layer, and the
  log-softmax is float32 whatever the model's dtype;
- after a pass each row's cache (its real tokens only, padding cut away) is offered to the
  prefix cache, so the next turn of the conversation starts where this one ended.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scorer_service.backends.kv_cache import CachedPrefix, PrefixCache, common_prefix
from scorer_service.backends.scheduler import ScoreJob

# A row that shares this many more tokens with another row of the same round than with any
# kept cache waits for that row's pass, then reuses its cache (the two variants share the
# conversation before the first memory).
DEFER_MIN_TOKENS = 64


class PassStopped(Exception):
    """Every call with a row in the pass was cancelled."""


@dataclass(eq=False)
class Row:
    job: ScoreJob
    index: int  # the request's index in its job
    tokens: np.ndarray
    ranges: Sequence[tuple[int, int]]
    use: int = 0  # tokens taken from `entry`
    entry: CachedPrefix | None = None
    found: dict[int, float] = field(default_factory=dict)  # position -> log p(token there)

    @property
    def first_needed(self) -> int:
        """The earliest position whose hidden state the row needs."""
        return min(start for start, _ in self.ranges) - 1

    @property
    def new_tokens(self) -> int:
        return len(self.tokens) - self.use

    def result(self) -> list[list[float]]:
        return [[self.found[p] for p in range(start, end)] for start, end in self.ranges]


def plan(rows: list[Row], cache: PrefixCache | None) -> tuple[list[Row], list[Row]]:
    """(rows to run now, rows that wait for a row of this round to store its cache)."""
    now: list[Row] = []
    later: list[Row] = []
    for row in rows:
        entry, common = cache.longest(row.tokens) if cache is not None else (None, 0)
        row.use = min(common, row.first_needed)
        row.entry = entry if row.use > 0 else None
        if cache is not None and cache.budget_bytes > 0:
            shared = max((common_prefix(row.tokens, other.tokens) for other in now), default=0)
            if min(shared, row.first_needed) - row.use >= DEFER_MIN_TOKENS:
                later.append(row)
                continue
        now.append(row)
    return now, later


def batches(rows: list[Row], new_token_budget: int, kv_token_budget: int) -> list[list[Row]]:
    """Rows grouped so a batch's padded new tokens and padded cache stay within budget."""
    ordered = sorted(rows, key=lambda row: (row.new_tokens, row.use), reverse=True)
    groups: list[list[Row]] = []
    current: list[Row] = []
    for row in ordered:
        grown = [*current, row]
        longest_new = max(r.new_tokens for r in grown)
        longest_past = max(r.use for r in grown)
        if current and (
            len(grown) * longest_new > new_token_budget
            or len(grown) * (longest_past + longest_new) > kv_token_budget
        ):
            groups.append(current)
            grown = [row]
        current = grown
    if current:
        groups.append(current)
    return groups


@dataclass
class PassModel:
    """What a pass needs of the model."""

    decoder: Any  # the transformer body: ids -> last hidden states
    head: Any  # hidden states -> logits
    cache_keyword: str  # "cache" or "past_key_values", whichever this transformers reads
    device: Any
    chunk_tokens: int  # tokens per chunk (bounds activations; moves progress)


def run_pass(
    model: PassModel,
    batch: list[Row],
    cache: PrefixCache | None,
    advance: Callable[[Row, int], None],
) -> None:
    """Fill `found` of every row of `batch`; offer each row's cache to `cache`.

    `advance(row, tokens)` is called after each chunk with the row's tokens it covered.
    Raises PassStopped between chunks once every row's call is cancelled.
    """
    import torch
    from transformers import DynamicCache

    rows = len(batch)
    past = max(row.use for row in batch)
    longest = max(row.new_tokens for row in batch)
    ids = torch.zeros((rows, longest), dtype=torch.long)
    for i, row in enumerate(batch):
        ids[i, : row.new_tokens] = torch.from_numpy(row.tokens[row.use :])
    starts = torch.tensor([row.use for row in batch], dtype=torch.long).unsqueeze(1)
    positions = starts + torch.arange(longest, dtype=torch.long).unsqueeze(0)
    ids, positions = ids.to(model.device), positions.to(model.device)
    # Rows reuse caches of different lengths, so their pasts are left-padded to one length and
    # the padding masked out. Right padding needs no mask: a real token sees only positions
    # before it, and the padding's outputs are never read.
    mask = None
    if any(row.use != past for row in batch):
        mask = torch.ones((rows, past + longest), dtype=torch.long)
        for i, row in enumerate(batch):
            mask[i, : past - row.use] = 0
        mask = mask.to(model.device)
    kv = _cache_holding(_padded_past(batch, past)) if past else DynamicCache()
    # (hidden index, row) for every position whose next token is scored.
    wanted = sorted(
        {
            (position - 1 - row.use, i)
            for i, row in enumerate(batch)
            for start, end in row.ranges
            for position in range(start, end)
        }
    )
    chunk = min(model.chunk_tokens, longest)
    for chunk_start in range(0, longest, chunk):
        if all(row.job.stopped() for row in batch):
            raise PassStopped
        chunk_end = min(longest, chunk_start + chunk)
        extra = {"attention_mask": mask[:, : past + chunk_end]} if mask is not None else {}
        hidden = model.decoder(
            input_ids=ids[:, chunk_start:chunk_end],
            position_ids=positions[:, chunk_start:chunk_end],
            use_cache=True,
            **{model.cache_keyword: kv},
            **extra,
        ).last_hidden_state
        here = wanted[
            bisect.bisect_left(wanted, (chunk_start, -1)) : bisect.bisect_left(
                wanted, (chunk_end, -1)
            )
        ]
        if here:
            at_rows = torch.tensor([i for _, i in here], device=model.device)
            at = torch.tensor([j for j, _ in here], device=model.device)
            logits = model.head(hidden[at_rows, at - chunk_start]).float()
            targets = ids[at_rows, at + 1]
            picked = torch.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
            for (j, i), value in zip(here, picked.tolist(), strict=True):
                batch[i].found[batch[i].use + j + 1] = value
        for row in batch:
            covered = min(row.new_tokens, chunk_end) - min(row.new_tokens, chunk_start)
            if covered:
                advance(row, covered)
    if cache is not None:
        _keep(batch, kv, past, cache)


def _cache_holding(layers: list[tuple[Any, Any]]) -> Any:
    """A DynamicCache that holds `layers` as they are. Filling it through `update` would copy
    every tensor once more (it concatenates onto an empty one); the tensors are never written
    in place, since the next update concatenates into a new tensor."""
    from transformers import DynamicCache

    cache = DynamicCache(ddp_cache_data=[(k[:, :, :0], v[:, :, :0]) for k, v in layers])
    held: list[Any] = cache.layers  # DynamicLayer: plain `keys` and `values` tensors
    for layer, (k, v) in zip(held, layers, strict=True):
        layer.keys, layer.values = k, v
    return cache


def _padded_past(batch: list[Row], past: int) -> list[tuple[Any, Any]]:

    if len(batch) == 1:
        entry = batch[0].entry
        assert entry is not None
        return [(k[:, :, :past], v[:, :, :past]) for k, v in entry.layers]
    layers: list[tuple[Any, Any]] = []
    template = next(row.entry for row in batch if row.entry is not None)
    for layer, (k0, v0) in enumerate(template.layers):
        keys = k0.new_zeros((len(batch), k0.shape[1], past, k0.shape[3]))
        values = v0.new_zeros((len(batch), v0.shape[1], past, v0.shape[3]))
        for i, row in enumerate(batch):
            if row.entry is not None and row.use:
                k, v = row.entry.layers[layer]
                keys[i, :, past - row.use :] = k[0, :, : row.use]
                values[i, :, past - row.use :] = v[0, :, : row.use]
        layers.append((keys, values))
    return layers


def _keep(batch: list[Row], kv: Any, past: int, cache: PrefixCache) -> None:
    for i, row in enumerate(batch):
        lo, hi = past - row.use, past + row.new_tokens
        whole = len(batch) == 1 and lo == 0
        layers = [
            (layer.keys, layer.values)
            if whole and hi == layer.keys.shape[2]
            else (
                layer.keys[i : i + 1, :, lo:hi].clone(),
                layer.values[i : i + 1, :, lo:hi].clone(),
            )
            for layer in kv.layers
        ]
        cache.put(row.tokens, layers)
