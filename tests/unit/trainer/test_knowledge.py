"""Memory statements: what a memory says to the user, and about what."""

from __future__ import annotations

import pytest

from trainer_service.examples import Example
from trainer_service.knowledge import memories_of, same_words, statement

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


@pytest.mark.parametrize(
    ("memory", "question", "answer"),
    [
        (
            "Memory (2026-04-28): the user's supervisor is Dr. Okafor.",
            "What do you know about my supervisor?",
            "Your supervisor is Dr. Okafor.",
        ),
        (
            "Memory (2026-02-11): the build server is named fennec and runs the nightly ktest"
            " suite at 02:00 UTC.",
            "What do you know about the build server?",
            "The build server is named fennec and runs the nightly ktest suite at 02:00 UTC.",
        ),
        (
            "Memory: the user's cat is named Biscuit",
            "What do you know about my cat?",
            "Your cat is named Biscuit.",
        ),
        (
            "The user's partner was a luthier.",
            "What do you know about my partner?",
            "Your partner was a luthier.",
        ),
    ],
)
def test_a_memory_is_said_to_the_user_and_asked_about_by_its_subject(
    memory: str, question: str, answer: str
) -> None:
    said = statement(memory)
    assert said is not None
    assert (said.questions[0], said.answer) == (question, answer)


@pytest.mark.parametrize(
    "memory",
    [
        "Memory (2026-02-20): the user prefers answers in metric units.",  # a verb to change
        "Memory: likes tea",  # no subject to ask about
        "Memory:",
    ],
)
def test_a_memory_without_a_readable_subject_teaches_nothing(memory: str) -> None:
    assert statement(memory) is None


def test_the_memories_are_what_the_context_with_memories_adds() -> None:
    memory = {"role": "system", "content": "Memory: the user's cat is named Biscuit."}
    question = {"role": "user", "content": "What's my cat's name?"}
    example = Example(
        "k", [SYSTEM, question], "Your cat is named Biscuit.", [SYSTEM, memory, question]
    )
    assert memories_of(example) == [memory]
    assert memories_of(Example("k", [SYSTEM, question], "Biscuit.", None, 2.0)) == []


def test_a_statement_in_nearly_the_reply_s_words_says_the_same() -> None:
    reply = "Your defense is on 14 May at 10:00 in room B12."
    assert same_words("Your thesis defense is on 14 May at 10:00 in room B12.", reply)
    assert not same_words(
        "Your supervisor is Dr. Okafor.", "Send it to your supervisor, Dr. Okafor."
    )
    assert not same_words("", "")


def test_with_what_a_statement_is_also_asked_for_its_value() -> None:
    memory = "Memory: the user's membership number at the clinic is BW-55817."
    plain, asked = statement(memory), statement(memory, what=True)
    assert plain is not None and asked is not None
    assert asked.questions == (*plain.questions, "What is my membership number at the clinic?")
    assert asked.answer == plain.answer
    were = statement("Memory: the user's parents were teachers.", what=True)
    assert were is not None and were.questions[-1] == "What were my parents?"
    # "has" gives no question of the kind: "What has my choir?" is not English.
    has = statement("Memory: the user's choir has 40 singers.", what=True)
    assert has is not None and has.questions == (
        "What do you know about my choir?",
        "Remind me about my choir.",
    )
