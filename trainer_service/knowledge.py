"""Memory statements: the memory a reply leaned on, said to the user as an answer of its own.

A reply carries its fact in the words its question called for: "Send it to your supervisor,
Dr. Okafor." Trained on that alone, the model asked "Who is my supervisor?" without memories
names somebody else (bench/bench_training.py). The memory behind the reply states the fact
plainly ("the user's supervisor is Dr. Okafor"), so each trained reply adds rows: questions
about that memory's subject, asked in a new conversation, answered by the memory in the
second person ("Your supervisor is Dr. Okafor.").

Invariants:
- a reply teaches only the memory it leaned on: the one whose absence alone costs the reply
  the most log-likelihood on the base model, and only when that costs at least half of what
  removing every memory costs (a reply that needed two memories together teaches neither);
- a memory whose subject cannot be read ("<subject> is|are|was|were|has|have ...") gets no
  row: a row never pairs a fact with a question it does not answer;
- a memory is stated once per job, however many replies leaned on it;
- a statement that says what its reply says, in nearly the same words (`SAME_WORDS` of
  their words shared), is said in the reply's words: two wordings of one fact compete for
  the same question, and recall asks for the reply's.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .examples import Chat, Example
from .measures import normalise, reply_logprob
from .wording import aliased, aliases, plain, said

_SUBJECT = re.compile(
    r"^(?P<subject>(?:the|your|a|an)\s[\w' -]{1,60}?)\s(?P<verb>is|are|was|were|has|have)\s",
    re.IGNORECASE,
)
# Leaning on one memory means at least this share of the reply's whole divergence.
SHARE = 0.5
# A statement sharing at least this share of its words with its reply (Jaccard) says the same.
SAME_WORDS = 0.75
# The questions each statement answers; two wordings, so the fact is not tied to one.
QUESTIONS = ("What do you know about {}?", "Remind me about {}.")
# The same two for a memory about the user itself (`wide`: wording.py).
ABOUT_ME = ("What do you know about me?", "What do you remember about me?")
# With `what`, a statement whose verb is a form of "be" is also asked the way a user asks
# for the value itself: "What is my membership number at the Brightwater Dental Clinic?".
WHAT = "What {} {}?"


@dataclass(frozen=True)
class Statement:
    questions: tuple[str, ...]
    answer: str


def statement(memory: str, what: bool = False, wide: bool = False) -> Statement | None:
    """The memory said to the user, and questions about its subject (with `what`, also
    `WHAT` where its verb is a form of "be"; with `wide`, also the memories wording.py
    reads beyond "<subject> is|has ..."); None if unreadable."""
    found = _be_or_have(memory, what)
    if found is not None or not wide:
        return found
    wider = said(memory)
    if wider is None:
        return None
    subject, answer = wider
    if subject == "me":
        return Statement(ABOUT_ME, answer)
    return Statement(tuple(q.format(subject) for q in QUESTIONS), answer)


def _be_or_have(memory: str, what: bool) -> Statement | None:
    text = plain(memory)
    if re.search(r"\bthe user\b", text, re.IGNORECASE) or not text:
        return None  # "the user prefers ..." needs a verb changed: not guessed
    match = _SUBJECT.match(text)
    if match is None:
        return None
    subject = match.group("subject").strip()
    asked = re.sub(r"^your\b", "my", subject, flags=re.IGNORECASE)
    asked = asked[0].lower() + asked[1:]
    answer = text[0].upper() + text[1:]
    if not answer.endswith((".", "!", "?")):
        answer += "."
    questions = tuple(q.format(asked) for q in QUESTIONS)
    verb = match.group("verb").lower()
    if what and verb in ("is", "are", "was", "were"):
        questions += (WHAT.format(verb, asked),)
    return Statement(questions, answer)


def subject_asked(question: str) -> str | None:
    """The subject a statement's question asks about ("What do you know about a dog?" ->
    "a dog"), or None for any other question."""
    for template in QUESTIONS:
        head, _, tail = template.partition("{}")
        if question.startswith(head) and question.endswith(tail):
            subject = question[len(head) : len(question) - len(tail)].strip()
            if subject:
                return subject
    return None


def same_words(a: str, b: str) -> bool:
    """Whether two texts share at least `SAME_WORDS` of their (normalised) words."""
    x, y = set(normalise(a).split()), set(normalise(b).split())
    return bool(x | y) and len(x & y) / len(x | y) >= SAME_WORDS


def memories_of(example: Example) -> Chat:
    """The messages of the context with memories that the plain context lacks."""
    if example.context_with_memories is None:
        return []
    without = Counter((m["role"], m["content"]) for m in example.context)
    out: Chat = []
    for message in example.context_with_memories:
        key = (message["role"], message["content"])
        if without[key] > 0:
            without[key] -= 1
        else:
            out.append(message)
    return out


def leaned_on(model: Any, tokenizer: Any, example: Example) -> str | None:
    """The memory the reply leaned on (see the module's invariants), or None."""
    memories = memories_of(example)
    if not memories or example.context_with_memories is None:
        return None
    if len(memories) == 1:
        return memories[0]["content"]
    full = reply_logprob(model, tokenizer, example.context_with_memories, example.reply)
    without_all = reply_logprob(model, tokenizer, example.context, example.reply)
    drops = []
    for memory in memories:
        rest = [m for m in example.context_with_memories if m is not memory]
        drops.append((full - reply_logprob(model, tokenizer, rest, example.reply), memory))
    drop, memory = max(drops, key=lambda d: d[0])
    return memory["content"] if drop >= SHARE * (full - without_all) else None


def statement_rows(
    model: Any,
    tokenizer: Any,
    examples: list[Example],
    what: bool = False,
    wide: bool = False,
    named: bool = False,
) -> list[list[Example]]:
    """Per memory that an example leaned on and that has a readable subject, its rows: one
    per question (`statement`'s). A memory several replies leaned on is stated once. With
    `named` (or `wide`), a memory about a thing of the user's by its name ("Pemberton's
    vet") is also stated as the user's ("Your dog's vet"), read as `wide` reads, when the
    example's memories give the name."""
    rows: list[list[Example]] = []
    stated: set[str] = set()
    for example in examples:
        memory = leaned_on(model, tokenizer, example)
        if memory is None:
            continue
        texts = [(memory, wide)]
        if wide or named:
            names = aliases([m["content"] for m in memories_of(example)])
            texts += [(t, True) for t in [aliased(memory, names)] if t is not None]
        for text, wider in texts:
            found = statement(text, what, wider)
            if found is None or found.answer in stated:
                continue
            stated.add(found.answer)
            answer = example.reply if same_words(found.answer, example.reply) else found.answer
            rows.append([example.asked_anew(question, answer) for question in found.questions])
    return rows
