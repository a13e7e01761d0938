"""Teacher answers: context distillation at the sequence level.

The teacher is the base model with the memories in its prompt; the student is the model
being trained, which will be asked without them. For each trained reply the teacher is
asked the reply's question in a new conversation (its leading system messages, the
memories, the question) and answers greedily and by sampling; each answer that says the
reply's fact words (`facts.py`) becomes a row: the same question, without the memories,
answered as the teacher did. The student then learns the teacher's own wordings of the
fact, not only the one reply, which is what context distillation does to carry a fact to
questions it was not trained on (Snell et al. 2022; Padmanabhan et al. 2023).

Invariants:
- a teacher answer is kept only when it says every fact word and differs from the reply
  (normalised): a row never trains an answer that lost or changed the fact;
- a reply without its context with memories, or without a question, adds no row;
- at most `count` rows per reply, one per distinct answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .examples import Example
from .facts import recalls
from .knowledge import memories_of
from .measures import greedy_answers, normalise, reply_tokens, sampled_answers


def teacher_rows(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    facts: Sequence[tuple[str, ...]],
    count: int,
    seed: int,
) -> list[Example]:
    rows: list[Example] = []
    for example, fact in zip(examples, facts, strict=True):
        question = example.last_question()
        memories = memories_of(example)
        if not question or not memories or not fact:
            continue
        context = [
            *example.leading_system(),
            *memories,
            {"role": "user", "content": question},
        ]
        budget = reply_tokens(tokenizer, example.reply) + 24
        said = greedy_answers(model, tokenizer, [context], budget)
        said += sampled_answers(model, tokenizer, context, count * 2, budget, seed)
        seen = {normalise(example.reply)}
        for answer in said:
            if normalise(answer) in seen or not recalls(answer, fact):
                continue
            seen.add(normalise(answer))
            rows.append(example.asked_anew(question, answer))
            if len(seen) > count:
                break
    return rows
