"""The guard's recall asked anew (`TrainingSettings.learnt_cold`), on the real model: a reply
whose fact the conversation's earlier turns told the model is recalled in its own context,
and is learnt only when the question asked in a new conversation brings the fact back too."""

from __future__ import annotations

from typing import Any

import pytest

from trainer_service.examples import Example
from trainer_service.general import GeneralCheck
from trainer_service.guard import GuardSettings
from trainer_service.measurer import ExampleProof, Measurer
from trainer_service.measures import greedy_answer
from trainer_service.model import base_model_folder, load_base

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TOLD = [
    SYSTEM,
    {"role": "user", "content": "My cat is called Biscuit."},
    {"role": "assistant", "content": "What a lovely name for a cat!"},
    {"role": "user", "content": "What's my cat's name?"},
]


@pytest.fixture(scope="module")
def base() -> tuple[Any, Any, str]:
    folder, _ = base_model_folder(None)
    model, tokenizer = load_base(folder, "cpu")
    return model, tokenizer, str(folder)


def test_a_fact_the_conversation_told_is_learnt_only_when_it_comes_back_asked_anew(
    base: tuple[Any, Any, str],
) -> None:
    model, tokenizer, folder = base
    # The base model's own answer in the conversation, so that in its context it is
    # recalled as said; as a reply without memories, its fact is every word of it.
    reply = greedy_answer(model, tokenizer, TOLD, 24)
    assert "biscuit" in reply.lower(), reply
    example = Example("k", TOLD, reply, None, divergence=0.05)
    plain, anew = (
        Measurer(
            tokenizer, [example], [], GuardSettings(), GeneralCheck(tokenizer), cold=cold
        ).take_base(model, folder)
        for cold in (False, True)
    )
    assert plain.figures.learnt == (True,)
    assert plain.cold_answers == [""]  # not asked anew unless the setting says so
    assert anew.figures.learnt == (False,)
    said = anew.cold_answers[0]
    assert said and "biscuit" not in said.lower(), said


def test_a_reply_already_asked_in_a_new_conversation_is_judged_once(
    base: tuple[Any, Any, str],
) -> None:
    model, tokenizer, folder = base
    asked = [SYSTEM, TOLD[-1]]
    example = Example("k", asked, "Your cat is named Biscuit.", None, divergence=0.05)
    measurer = Measurer(
        tokenizer, [example], [], GuardSettings(), GeneralCheck(tokenizer), cold=True
    )
    assert measurer.cold == [None]  # its context is a new conversation already
    snapshot = measurer.take_base(model, folder)
    assert snapshot.cold_answers == [""]


def test_the_reason_names_the_answer_asked_anew() -> None:
    proof = ExampleProof(
        key="k",
        divergence_before=1.2,
        divergence_after=0.04,
        answer_before="I don't know.",
        answer_after="Your cat is Biscuit.",
        fact=("Biscuit",),
        answer_cold="I'm sorry, I don't know your cat's name.",
    )
    assert proof.reason == (
        'not learnt: divergence 0.04, fact "Biscuit", answer "Your cat is Biscuit.", '
        "asked anew \"I'm sorry, I don't know your cat's name.\""
    )
