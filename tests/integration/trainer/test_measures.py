"""The guard's batched measurements agree with the one-at-a-time ones they replace."""

from __future__ import annotations

from typing import Any

import pytest

from trainer_service.measures import reply_fit, reply_fits
from trainer_service.model import base_model_folder, load_base

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


@pytest.fixture(scope="module")
def base() -> tuple[Any, Any]:
    folder, _ = base_model_folder(None)
    return load_base(folder, "cpu")


def test_batched_fits_match_single_fits_whatever_the_lengths(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    pairs = [
        ([SYSTEM, {"role": "user", "content": "Hi there!"}], "Hello! How can I help you today?"),
        (
            [
                SYSTEM,
                {"role": "system", "content": "Memory: the user's cat is named Biscuit."},
                {"role": "user", "content": "I was wondering about something from last week."},
                {"role": "assistant", "content": "Of course, what is it?"},
                {"role": "user", "content": "What's my cat's name?"},
            ],
            "Your cat is named Biscuit.",
        ),
        ([SYSTEM, {"role": "user", "content": "2+2?"}], "4"),
    ]
    batched = reply_fits(model, tokenizer, pairs, batch=2)
    for (context, reply), fit in zip(pairs, batched, strict=True):
        single = reply_fit(model, tokenizer, context, reply)
        assert fit.logprob == pytest.approx(single.logprob, abs=1e-4)
        assert fit.greedy == single.greedy


def test_the_anchor_is_zero_at_the_base_model_and_grows_as_the_adapter_moves() -> None:
    import torch

    from trainer_service.anchor import Anchor
    from trainer_service.settings import DEFAULTS
    from trainer_service.training import _wrap

    folder, _ = base_model_folder(None)
    model, tokenizer = load_base(folder, "cpu")  # a copy of its own: the adapter changes it
    system = {"role": "system", "content": "You are a helpful assistant."}
    near = [
        [system, {"role": "user", "content": q}]
        for q in ("What is a dog's name?", "How much does a dog eat a day?")
    ]
    anchor = Anchor(model, tokenizer, questions=True, neighbours=near)
    assert [len(pool.sequences) for pool in anchor.pools] == [64, 64]
    assert anchor.neighbours is not None and anchor.neighbours.contexts == near
    assert len(anchor.neighbours.sequences) == 2
    tuned = _wrap(model, DEFAULTS)
    tuned.train()
    at_base = anchor.loss(tuned)
    assert at_base.requires_grad and float(at_base) == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():
        for name, parameter in tuned.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    for pool in anchor.pools:
        pool._next = 0
    near_kl = anchor._kl(tuned, anchor.neighbours).mean()
    assert float(near_kl) > 1e-3  # the neighbours' own mean is part of the loss
    moved = anchor.loss(tuned)
    assert float(moved) > float(near_kl)
    moved.backward()
    grads = [p.grad for n, p in tuned.named_parameters() if "lora_B" in n]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
