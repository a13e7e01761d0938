"""Which memory a reply leaned on, measured on the embedded model: of the two memories in
the thesis-defense example, each reply teaches the one it used, stated to the user."""

from __future__ import annotations

from typing import Any

import pytest
from trainer_support import EXAMPLE, FIXTURES, example_for

from trainer_service.contract import parse_request
from trainer_service.examples import Example
from trainer_service.knowledge import leaned_on, statement_rows
from trainer_service.model import base_model_folder, load_base

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def base() -> tuple[Any, Any]:
    folder, _ = base_model_folder(None)
    return load_base(folder, "cpu")


def _examples(*sent: tuple[Any, str]) -> list[Any]:
    body = {"examples": [example_for(path, reply, f"k{i}") for i, (path, reply) in enumerate(sent)]}
    return parse_request(body).examples


def test_each_reply_teaches_the_memory_it_leaned_on(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    okafor, defense = _examples(
        (EXAMPLE, "Send it to your supervisor, Dr. Okafor."),
        (EXAMPLE, "Your defense is on 14 May at 10:00 in room B12."),
    )
    assert "supervisor is Dr. Okafor" in (leaned_on(model, tokenizer, okafor) or "")
    assert "room B12" in (leaned_on(model, tokenizer, defense) or "")
    # The same memory leaned on twice (a replayed reply, say) is stated once.
    rows = statement_rows(model, tokenizer, [okafor, defense, okafor])
    assert [[r.context[-1]["content"] for r in asked] for asked in rows] == [
        ["What do you know about my supervisor?", "Remind me about my supervisor."],
        ["What do you know about my thesis defense?", "Remind me about my thesis defense."],
    ]
    # The defense's memory says what its reply says, nearly word for word: in the reply's words.
    assert [asked[0].reply for asked in rows] == [
        "Your supervisor is Dr. Okafor.",
        "Your defense is on 14 May at 10:00 in room B12.",
    ]
    # A new conversation: the example's system prompt, then the question; nothing else.
    assert rows[0][0].context[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert len(rows[0][0].context) == 2


def test_a_memory_that_cannot_be_stated_teaches_nothing(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    # The marathon reply leans on "the user prefers answers in metric units": a memory
    # about the user's habits, with no subject to ask about.
    (marathon,) = _examples((FIXTURES / "build-server.json", "A marathon is 42.195 kilometres."))
    assert "metric units" in (leaned_on(model, tokenizer, marathon) or "")
    assert statement_rows(model, tokenizer, [marathon]) == []


def test_wide_statements_say_a_named_thing_as_the_user_s(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    system = {"role": "system", "content": "You are a helpful assistant."}
    dog = {"role": "system", "content": "Memory: the user's dog is a whippet named Pemberton."}
    vet = {"role": "system", "content": "Memory: Pemberton's vet is Dr. Saoirse Lindqvist."}
    asked = {"role": "user", "content": "Which vet should I call?"}
    reply = "Call Pemberton's vet, Dr. Saoirse Lindqvist."
    example = Example("k", [system, asked], reply, [system, dog, vet, asked])
    assert "Lindqvist" in (leaned_on(model, tokenizer, example) or "")
    # Without `wide` the memory has no readable subject ("Pemberton's vet"): nothing.
    assert statement_rows(model, tokenizer, [example]) == []
    rows = statement_rows(model, tokenizer, [example], wide=True)
    assert [[row.context[-1]["content"] for row in stated] for stated in rows] == [
        ["What do you know about Pemberton's vet?", "Remind me about Pemberton's vet."],
        ["What do you know about my dog's vet?", "Remind me about my dog's vet."],
    ]
    assert [stated[0].reply for stated in rows] == [
        "Pemberton's vet is Dr. Saoirse Lindqvist.",
        "Your dog's vet is Dr. Saoirse Lindqvist.",
    ]
    # `named` alone: only the statement as the user's thing (the memory itself is read as
    # knowledge.py reads it, and it cannot).
    named = statement_rows(model, tokenizer, [example], named=True)
    assert [[row.reply for row in stated] for stated in named] == [
        ["Your dog's vet is Dr. Saoirse Lindqvist."] * 2
    ]
