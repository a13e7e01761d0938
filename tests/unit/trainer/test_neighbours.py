"""Neighbours: the job's questions asked about the world, never half about the user."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainer_service.examples import Example
from trainer_service.knowledge import statement, subject_asked
from trainer_service.neighbours import ABOUT, LIMIT, generalised, neighbour_contexts


@pytest.mark.parametrize(
    ("question", "neighbour"),
    [
        ("How much dry food does my dog eat per day?", "How much dry food does a dog eat per day?"),
        ("What is my dog's name?", "What is a dog's name?"),
        (
            "Which local anaesthetic am I allergic to?",
            "Which local anaesthetic is one allergic to?",
        ),
        ("Which company do I work for?", "Which company does one work for?"),
        ("What is my home address?", "What is a home address?"),
        ("My flight to Lisbon, when does it leave?", "A flight to Lisbon, when does it leave?"),
        (
            "Which paint colour did I choose for my living room?",
            "Which paint colour did one choose for a living room?",
        ),
        ("Wie heißt meine Brieffreundin?", "Wie heißt eine Brieffreundin?"),
        (
            "Um wie viel Uhr fährt mein Zug nach Görlitz ab?",
            "Um wie viel Uhr fährt ein Zug nach Görlitz ab?",
        ),
        ("我的猫叫什么名字？", "猫叫什么名字？"),
        ("I'm filling in a form for a dog sitter.", "One is filling in a form for a dog sitter."),
        ("What do you know about my dog?", "What do you know about a dog?"),
        ("What do you know about my old flat?", "What do you know about an old flat?"),
        ("Is a university near my office?", "Is a university near an office?"),
    ],
)
def test_a_question_about_the_user_is_asked_about_the_world(question: str, neighbour: str) -> None:
    assert generalised(question) == neighbour


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",  # nothing of the user's: not a neighbour
        "Where are we meeting on Friday?",  # "we": not rewritten
        "Remind me what I told you yesterday.",  # "I told": a verb form not rewritten
        "Wann besuche ich meine Brieffreundin?",  # "ich besuche": conjugation not guessed
        "我明天去哪里？",  # 我 without 的
        "I我的猫",  # an English "I" in a Chinese question
        "How much food does he get each day?",  # "he" is the user's dog: nothing to rewrite
        "",
    ],
)
def test_a_question_it_cannot_rewrite_whole_has_no_neighbour(question: str) -> None:
    assert generalised(question) is None


@given(
    st.text(alphabet=st.sampled_from(list("my I me am do we Meine ich 我的猫 ?.'")), max_size=40)
)
def test_a_neighbour_never_keeps_a_reference_to_the_user(text: str) -> None:
    out = generalised(text)
    if out is not None:
        assert out != text.strip()
        assert not re.search(r"\b(I|me|my|mine|we|us|our|ich|mich|mir|mein\w*)\b", out, re.I)
        assert "我" not in out


def test_contexts_are_distinct_capped_and_asked_under_the_examples_system_messages() -> None:
    system = {"role": "system", "content": "You are Ada's assistant."}

    def example(i: int, question: str) -> Example:
        earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
        return Example(f"k{i}", [system, *earlier, {"role": "user", "content": question}], "r")

    examples = [
        example(0, "What is my dog's name?"),
        example(1, "What is my dog's name?"),
        example(2, "What is the capital of France?"),
    ]
    examples += [example(10 + i, f"Where is my house number {i}?") for i in range(2 * LIMIT)]
    contexts = neighbour_contexts(examples)
    assert contexts[0] == [system, {"role": "user", "content": "What is a dog's name?"}]
    assert len(contexts) == LIMIT
    assert len({c[-1]["content"] for c in contexts}) == LIMIT


def test_a_statement_question_names_its_subject_and_no_other_question_does() -> None:
    said = statement("Memory: the user's dog is a whippet named Pemberton.")
    assert said is not None
    asked = [generalised(q) for q in said.questions]
    assert subject_asked(asked[0] or "") == "a dog"
    assert subject_asked("What do you know about?") is None
    assert subject_asked("What is a dog's name?") is None


def test_with_subjects_a_statement_brings_its_subjects_questions_once() -> None:
    system = {"role": "system", "content": "You are a helpful assistant."}

    def example(question: str) -> Example:
        return Example(question, [system, {"role": "user", "content": question}], "r")

    examples = [
        example("What do you know about my dog?"),
        example("How much food does my dog get?"),
        example("What do you know about my dog?"),
    ]
    plain = [c[-1]["content"] for c in neighbour_contexts(examples)]
    assert plain == ["What do you know about a dog?", "How much food does a dog get?"]
    wide = [c[-1]["content"] for c in neighbour_contexts(examples, subjects=True)]
    about = [q.format("a dog") for q in ABOUT]
    assert wide == [plain[0], *about, plain[1]]
    many = [example(f"What do you know about my house number {i}?") for i in range(LIMIT)]
    assert len(neighbour_contexts(many, subjects=True)) == LIMIT
