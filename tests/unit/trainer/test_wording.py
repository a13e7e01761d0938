"""Wide memory statements: memories about the user, with any verb, with names."""

from __future__ import annotations

import pytest

from trainer_service.knowledge import ABOUT_ME, statement
from trainer_service.wording import aliased, aliases, said, second_person


@pytest.mark.parametrize(
    ("verb", "said_to_you"),
    [
        ("is", "are"),
        ("was", "were"),
        ("has", "have"),
        ("does", "do"),
        ("works", "work"),
        ("lives", "live"),
        ("watches", "watch"),
        ("wishes", "wish"),
        ("goes", "go"),
        ("flies", "fly"),
        ("plays", "play"),
        ("uses", "use"),
        ("switched", "switched"),
        ("chose", "chose"),
        ("can", "can"),
    ],
)
def test_a_verb_of_the_user_is_said_to_you(verb: str, said_to_you: str) -> None:
    assert second_person(verb) == said_to_you


@pytest.mark.parametrize(
    ("memory", "subject", "answer"),
    [
        (
            "Memory: the user works at Veltrane Logistics as a data engineer.",
            "me",
            "You work at Veltrane Logistics as a data engineer.",
        ),
        (
            "Memory: the user is travelling to Lisbon with their friend Rosalind Achterberg.",
            "me",
            "You are travelling to Lisbon with your friend Rosalind Achterberg.",
        ),
        (
            "Memory: the user usually takes the 7:40 train",
            "me",
            "You usually take the 7:40 train.",
        ),
        (
            "Memory: the user's dog eats 180 grams of dry food a day.",
            "my dog",
            "Your dog eats 180 grams of dry food a day.",
        ),
        (
            "Memory: the user's husband, Bartholomew, is vegetarian.",
            "my husband",
            "Your husband, Bartholomew, is vegetarian.",
        ),
        (
            "Memory: the user's daughter Isolde turns 9 on 27 July.",
            "my daughter",
            "Your daughter Isolde turns 9 on 27 July.",
        ),
        (
            "Memory: the user's sister recommended the clinic's hygienist.",
            "my sister",
            "Your sister recommended the clinic's hygienist.",
        ),
        (
            "Memory: the user's mechanic at Pennock & Daughters Garage is Rhodri Fenwick.",
            "my mechanic at Pennock & Daughters Garage",
            "Your mechanic at Pennock & Daughters Garage is Rhodri Fenwick.",
        ),
        (
            "Memory: Pemberton's vet is Dr. Saoirse Lindqvist at Fernhill Veterinary.",
            "Pemberton's vet",
            "Pemberton's vet is Dr. Saoirse Lindqvist at Fernhill Veterinary.",
        ),
        (
            "Memory: the garage quoted £346 for new front brake pads.",
            "the garage",
            "The garage quoted £346 for new front brake pads.",
        ),
    ],
)
def test_a_memory_with_any_verb_is_said_to_the_user(memory: str, subject: str, answer: str) -> None:
    assert said(memory) == (subject, answer)


@pytest.mark.parametrize(
    "memory",
    [
        "Memory: likes tea",  # no subject
        "Memory: Der Nutzer wohnt in Görlitz.",  # a language the rules do not read
        "Memory: dentists should ask the user first.",  # the user, but not as the subject
        "Memory: the user",
        "Memory:",
    ],
)
def test_a_memory_the_rules_cannot_read_says_nothing(memory: str) -> None:
    assert said(memory) is None
    assert statement(memory, wide=True) is None


def test_wide_statements_only_add_to_what_knowledge_reads() -> None:
    memory = "Memory: the user prefers answers in metric units."
    assert statement(memory) is None
    wide = statement(memory, wide=True)
    assert wide is not None
    assert (wide.questions, wide.answer) == (ABOUT_ME, "You prefer answers in metric units.")
    # What knowledge.py already reads is stated as before, wide or not.
    supervisor = "Memory: the user's supervisor is Dr. Okafor."
    assert statement(supervisor, wide=True) == statement(supervisor)


def test_a_thing_named_in_another_memory_is_said_as_the_user_s() -> None:
    memories = [
        "Memory: the user's dog is a whippet named Pemberton.",
        "Memory: the user's husband, Bartholomew, is vegetarian.",
        "Memory: the user's daughter Isolde turns 9 on 27 July.",
        "Memory: the user's flight to Lisbon is TP 1357.",  # a place, not a thing's name
    ]
    names = aliases(memories)
    assert names == {
        "Pemberton": "your dog",
        "Bartholomew": "your husband",
        "Isolde": "your daughter",
    }
    vet = aliased("Memory: Pemberton's vet is Dr. Lindqvist.", names)
    assert vet == "your dog's vet is Dr. Lindqvist."
    stated = statement(vet or "", wide=True)
    assert stated is not None
    assert stated.questions[0] == "What do you know about my dog's vet?"
    assert stated.answer == "Your dog's vet is Dr. Lindqvist."
    # No possessive of a known name: nothing to say again.
    assert aliased("Memory: Pemberton sleeps all day.", names) is None
    assert aliased("Memory: Orla's cat is grey.", names) is None
