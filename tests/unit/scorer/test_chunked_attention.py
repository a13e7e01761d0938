"""The split attention of `backends/attention.py` against one attention over every key with
the full mask (bottom-right causal and padding), written out in plain tensor algebra."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scorer_service.backends.attention import (
    bf16_chunked_attention,
    chunked_attention,
    padding_mask,
)


def reference(query, key, value, padding, scale):
    """softmax(q k^T * scale + mask) v over all P + L keys, per query head."""
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    length, total = query.shape[2], key.shape[2]
    scores = (query @ key.transpose(-1, -2)) * scale
    rows = torch.arange(length)[:, None] + (total - length)
    allowed = (torch.arange(total)[None, :] <= rows)[None, None]
    if padding is not None:
        allowed = allowed & padding[:, None, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ value).transpose(1, 2)


@st.composite
def shapes(draw):
    batch = draw(st.integers(1, 3))
    kv_heads = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    past = draw(st.integers(0, 40))
    length = draw(st.integers(1, 40))
    # Left padding of each row's past, as passes.py lays out rows that reuse caches of
    # different lengths (all of it: a row that starts from no cache).
    pads = draw(st.lists(st.integers(0, past), min_size=batch, max_size=batch))
    return batch, kv_heads, groups, past, length, pads


def case(shape, seed):
    """Random queries, keys and values of `shape`, the mask `padding_mask` makes of its
    padding, a module with its head groups, and the scale."""
    batch, kv_heads, groups, past, length, pads = shape
    generator = torch.Generator().manual_seed(seed)
    dim = 16
    query = torch.randn(batch, kv_heads * groups, length, dim, generator=generator)
    key = torch.randn(batch, kv_heads, past + length, dim, generator=generator)
    value = torch.randn(batch, kv_heads, past + length, dim, generator=generator)
    padding = torch.ones(batch, past + length, dtype=torch.bool)
    for row, pad in enumerate(pads):
        padding[row, :pad] = False
    mask = padding_mask(batch, length, past + length, attention_mask=padding)
    module = type("Attention", (), {"num_key_value_groups": groups})()
    return query, key, value, mask, module, 1 / math.sqrt(dim)


@settings(max_examples=150, deadline=None)
@given(shapes(), st.integers(0, 2**16))
def test_split_attention_equals_one_masked_attention(shape, seed):
    query, key, value, mask, module, scale = case(shape, seed)
    if not any(shape[-1]):
        assert mask is None
    out, weights = chunked_attention(module, query, key, value, mask, scaling=scale)
    assert weights is None
    assert out.shape == (query.shape[0], query.shape[2], query.shape[1], query.shape[3])
    expected = reference(query, key, value, mask, scale)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(shapes(), st.integers(0, 2**16))
def test_bfloat16_split_attention_is_float32_out_and_within_bfloat16_rounding(shape, seed):
    """The mixed precision's attention: bfloat16 into the kernel, float32 out, as close to
    the float32 reference as rounding the inputs to bfloat16 allows."""
    query, key, value, mask, module, scale = case(shape, seed)
    out, _ = bf16_chunked_attention(module, query, key, value, mask, scaling=scale)
    assert out.dtype == torch.float32
    expected = reference(query, key, value, mask, scale)
    # What bfloat16 inputs alone move the exact result by, and a margin of the same order
    # for the kernel's bfloat16 softmax weights; a wrong merge or mask is off by O(1).
    rounded = reference(*(x.bfloat16().float() for x in (query, key, value)), mask, scale)
    bound = (rounded - expected).abs().max().item() + 0.02
    assert (out - expected).abs().max().item() <= bound


def test_install_picks_the_attention_of_the_precision():
    from transformers import LlamaConfig, LlamaForCausalLM

    from scorer_service.backends import attention

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config)
    assert attention.install(model)
    assert model.config._attn_implementation == attention.NAME
    assert attention.install(model, bfloat16=True)
    assert model.config._attn_implementation == attention.NAME_BF16
    ids = torch.tensor([[1, 5, 9, 3, 7]])
    with torch.no_grad():
        bf16 = model(ids).logits
        attention.install(model)
        fp32 = model(ids).logits
    assert bf16.dtype == torch.float32
    assert not torch.equal(bf16, fp32)  # it ran in bfloat16
    assert torch.allclose(bf16, fp32, atol=0.05)


def test_padding_among_the_new_tokens_takes_the_full_mask():
    """Left-padded generation batches pad the new tokens themselves: the split does not
    apply, and the one masked call gives the same as the reference."""
    generator = torch.Generator().manual_seed(1)
    query = torch.randn(2, 4, 6, 8, generator=generator)
    key = torch.randn(2, 2, 6, 8, generator=generator)
    value = torch.randn(2, 2, 6, 8, generator=generator)
    padding = torch.ones(2, 6, dtype=torch.bool)
    padding[1, :3] = False
    module = type("Attention", (), {"num_key_value_groups": 2})()
    out, _ = chunked_attention(module, query, key, value, padding, scaling=0.3)
    expected = reference(query, key, value, padding, 0.3)
    # The padded query rows of row 1 attend to nothing; only real positions are compared.
    assert torch.allclose(out[1, 3:], expected[1, 3:], atol=1e-5)
    assert torch.allclose(out[0], expected[0], atol=1e-5)


@pytest.mark.parametrize("offset", [0, 3])
def test_the_mask_is_the_padding_over_the_keys(offset):
    attention = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]])
    mask = padding_mask(2, 2, 8 - offset, kv_offset=offset, attention_mask=attention)
    if offset:
        assert mask is None  # the padded key lies before the window
    else:
        assert mask.dtype == torch.bool and mask.shape == (2, 8)
        assert mask.tolist()[0] == [False] + [True] * 7
    assert padding_mask(2, 2, 8, attention_mask=None) is None


def test_only_plain_causal_attention_is_replaced():
    from transformers import GemmaConfig, LlamaConfig, MistralConfig, Qwen2Config

    from scorer_service.backends.attention import fits

    assert fits(LlamaConfig())  # SmolLM2, the embedded model
    assert fits(Qwen2Config())  # no sliding window by default
    assert fits(MistralConfig(sliding_window=None))
    assert not fits(MistralConfig(sliding_window=4096))  # a window the split would ignore
    assert not fits(Qwen2Config(use_sliding_window=True, sliding_window=512, max_window_layers=0))
    assert not fits(GemmaConfig())  # another family: its own attention stays
