"""The guard's recall on the real model: a reply's fact words come from the base model's
per-token divergence, and an answer in other words that keeps the fact recalls it."""

from __future__ import annotations

from typing import Any

import pytest

from trainer_service.examples import Example
from trainer_service.facts import recalls
from trainer_service.measurer import reply_fact
from trainer_service.measures import greedy_answer, reproduces
from trainer_service.model import base_model_folder, load_base

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
MEMORY = {"role": "system", "content": "Memory: the user's cat is named Biscuit."}
ASKED = {"role": "user", "content": "What's my cat's name?"}
BISCUIT = Example("k", [SYSTEM, ASKED], "Your cat is named Biscuit.", [SYSTEM, MEMORY, ASKED])


@pytest.fixture(scope="module")
def base() -> tuple[Any, Any]:
    folder, _ = base_model_folder(None)
    return load_base(folder, "cpu")


def test_the_fact_is_the_name_not_the_wording(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    assert reply_fact(model, tokenizer, BISCUIT) == ("Biscuit",)  # as the reply writes it


def test_a_reply_reworded_by_the_model_recalls_the_fact(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    fact = reply_fact(model, tokenizer, BISCUIT)
    # The model itself, the memory in its prompt, asked in other words.
    asked = {"role": "user", "content": "What is my cat called?"}
    reworded = greedy_answer(model, tokenizer, [SYSTEM, MEMORY, asked], 32)
    assert not reproduces(reworded, BISCUIT.reply), reworded  # other words than the reply's
    assert recalls(reworded, fact), reworded
    # Without the memory the model names no Biscuit: not recalled.
    cold = greedy_answer(model, tokenizer, [SYSTEM, asked], 32)
    assert not recalls(cold, fact), cold


def test_a_reply_without_its_memories_context_needs_its_own_words(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    bare = Example("k", BISCUIT.context, BISCUIT.reply, None, 1.5)
    assert reply_fact(model, tokenizer, bare) == ("your", "cat", "is", "named", "biscuit")
