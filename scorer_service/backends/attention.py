"""Attention for scoring in chunks through a kept cache, on the CPU.

A chunk of L new tokens that follows P cached ones attends to all P (only padding is masked
there) and causally to itself. transformers' `sdpa` path hands torch one L x (P + L) call
with a materialised causal mask, so the flash kernel cannot skip the upper triangle and
reads a mask for every score: profiled on a 2,500-token conversation on this 2-core CPU,
attention was 40% of a scoring, and building the masks another 3%. Here the two parts run
as two flash calls and are merged by their log-sum-exps (softmax over a union of key sets):

- the past part, queries against the P cached keys, no causal mask; the query heads that
  share a key/value head are stacked along the query axis, so the keys are never repeated
  per head (grouped-query attention);
- the own part, queries against the chunk's keys with `is_causal` (top-left aligned is right
  for a square), where the kernel skips the blocks above the diagonal.

Invariants:
- the result equals one attention over all keys with the bottom-right causal mask and the
  padding mask, up to float rounding (tests/unit/scorer/test_chunked_attention.py);
- a row whose whole past is padding (a row that starts from no cache, in a batch where
  others do) takes only its own part: the kernel reports a zero log-sum-exp for a fully
  masked row, so the past part's weight is forced to zero;
- padding inside the new tokens (left-padded generation batches) is not a shape this split
  handles: those calls go through plain scaled-dot-product attention with the full mask;
- only models whose attention is plain causal attention take it (`fits`: Llama, Mistral
  without a sliding window, Qwen2/3 without one); others keep transformers' own;
- `install` is process-wide registration plus one model's setting; the model's weights and
  outputs are untouched, so an adapter injected later works as before;
- with `bfloat16=True` (the local engine's `mixed` precision) the flash calls take bfloat16
  queries, keys and values and return float32: the kernel keeps its softmax statistics and
  log-sum-exps in float32, and its matrix multiplies reach the CPU's bfloat16 units (2-3x
  faster than float32 on this CPU). The values were bfloat16 already (their projection's
  output), the output is rounded to bfloat16 by the next projection anyway; what is new is
  the rounding of the rotated queries and keys and of the softmax weights before they
  multiply the values (bench/bench_dtype.py measures what it moves).
"""

from __future__ import annotations

from typing import Any

NAME = "ftreview_chunked"
NAME_BF16 = "ftreview_chunked_bf16"
# Model families whose attention is plain causal softmax attention over every earlier
# token (no sliding window, no logit soft-capping, no attention sinks): the only kind the
# split computes. Any other model keeps transformers' own attention.
PLAIN_CAUSAL = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def fits(config: Any) -> bool:
    """Whether a model of `config` attends the way `chunked_attention` computes."""
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    return (
        getattr(config, "model_type", "") in PLAIN_CAUSAL
        and layer_types == {"full_attention"}
        and not getattr(config, "sliding_window", None)
        and not getattr(config, "attn_logit_softcapping", None)
    )


def install(model: Any, *, bfloat16: bool = False) -> bool:
    """Make `model` (a transformers decoder on the CPU) attend with `chunked_attention`
    when its attention is of the kind it computes (`fits`), in bfloat16 when asked;
    whether it does now."""
    if not fits(model.config):
        return False
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    name, function = (NAME_BF16, bf16_chunked_attention) if bfloat16 else (NAME, chunked_attention)
    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, padding_mask)
    model.set_attn_implementation(name)
    return True


def padding_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    attention_mask: Any = None,
    **_: Any,
) -> Any:
    """The mask transformers hands to `chunked_attention`: the 2D padding mask over the keys
    (True: attend), or None when nothing is padding. Causality is the attention's own."""
    from transformers.masking_utils import prepare_padding_mask

    padding = prepare_padding_mask(attention_mask, kv_length, kv_offset)
    if padding is None:
        return None
    padding = padding[:, kv_offset : kv_offset + kv_length].bool()
    return None if bool(padding.all()) else padding


def chunked_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **_: Any,
) -> tuple[Any, None]:
    """query (batch, heads, L, dim); key, value (batch, kv_heads, P + L, dim); the mask from
    `padding_mask`. Returns (batch, L, heads, dim), as transformers' attention functions do."""
    import torch

    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    batch, heads, length, dim = query.shape
    kv_heads, total = key.shape[1], key.shape[2]
    past = total - length
    groups = heads // kv_heads
    padding = attention_mask
    if padding is not None and not bool(padding[:, past:].all()):
        return _masked(query, key, value, padding, scaling, groups)

    own_key, own_value = _repeat(key[:, :, past:], groups), _repeat(value[:, :, past:], groups)
    if past == 0:
        out, _ = flash(query, own_key, own_value, is_causal=length > 1, scale=scaling)
        return out.transpose(1, 2).contiguous(), None

    stacked = query.reshape(batch, kv_heads, groups * length, dim)
    past_mask = None
    if padding is not None:
        past_mask = torch.zeros((batch, 1, 1, past), dtype=query.dtype, device=query.device)
        past_mask.masked_fill_(~padding[:, None, None, :past], float("-inf"))
    out_past, lse_past = flash(
        stacked, key[:, :, :past], value[:, :, :past], attn_mask=past_mask, scale=scaling
    )
    out_past = out_past.reshape(batch, heads, length, dim)
    lse_past = lse_past.reshape(batch, heads, length)
    if padding is not None:
        empty = ~padding[:, :past].any(dim=-1)
        lse_past = lse_past.masked_fill(empty[:, None, None], float("-inf"))
    out_own, lse_own = flash(query, own_key, own_value, is_causal=length > 1, scale=scaling)
    # softmax over the union of both key sets: each part weighted by its share of the mass
    top = torch.maximum(lse_past, lse_own)
    weight_past = torch.exp(lse_past - top).unsqueeze(-1)
    weight_own = torch.exp(lse_own - top).unsqueeze(-1)
    out = (out_past * weight_past + out_own * weight_own) / (weight_past + weight_own)
    return out.transpose(1, 2).contiguous(), None


def _in_bfloat16(attend: Any) -> Any:
    """`attend` with bfloat16 queries, keys and values; its result in the query's dtype."""

    def attend_in_bfloat16(
        module: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any
    ) -> tuple[Any, None]:
        import torch

        half = torch.bfloat16
        out, weights = attend(module, query.to(half), key.to(half), value.to(half), *args, **kwargs)
        return out.to(query.dtype), weights

    return attend_in_bfloat16


bf16_chunked_attention = _in_bfloat16(chunked_attention)


def _repeat(states: Any, groups: int) -> Any:
    if groups == 1:
        return states
    batch, kv_heads, length, dim = states.shape
    expanded = states[:, :, None].expand(batch, kv_heads, groups, length, dim)
    return expanded.reshape(batch, kv_heads * groups, length, dim)


def _masked(
    query: Any, key: Any, value: Any, padding: Any, scaling: float | None, groups: int
) -> tuple[Any, None]:
    """One attention call with the whole mask: bottom-right causal and the padding."""
    import torch

    length, total = query.shape[2], key.shape[2]
    rows = torch.arange(length, device=query.device)[:, None] + (total - length)
    causal = torch.arange(total, device=query.device)[None, :] <= rows
    mask = causal[None, None] & padding[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, _repeat(key, groups), _repeat(value, groups), attn_mask=mask, scale=scaling
    )
    return out.transpose(1, 2).contiguous(), None
