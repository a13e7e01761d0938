"""Rehearsal: the base model's own answers to plain requests, trained beside a job's replies.

A job's rows all say something about the user; trained alone, they pull every answer
towards them (measured on the fact set's tuning half: one epoch of nine facts, and 15% of
the general questions the base model answered right were answered wrong). Rows in which
the model answers plain requests the way it already did (`rehearsal_prompts.json`, none
about the user and none among the general questions the guard judges with) hold the rest
of its behaviour in place: self-distillation as a replay buffer (Yang et al. 2024, "Self-
Distillation Bridges Distribution Gap in Language Model Fine-Tuning").

Invariants:
- the answers are the base model's greedy ones, taken before training (once per base model
  in a process: `key`), so a rehearsal row never teaches anything the base model did not
  already say;
- which prompts a job rehearses depends only on the seed;
- the prompts are never the guard's general questions (`general_questions.json`): what
  forgetting is judged with is never trained.
"""

from __future__ import annotations

import json
import random
from functools import cache
from importlib import resources
from typing import Any

from .examples import Example
from .measures import greedy_answers

SYSTEM = "You are a helpful assistant."
ANSWER_TOKENS = 64


@cache
def prompts() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("rehearsal_prompts.json").read_text("utf-8")
    return tuple(json.loads(text)["prompts"])


# The base model's answer to every prompt, per base model (its folder), for the process.
_ANSWERS: dict[str, list[str]] = {}


def rehearsal_rows(
    model: Any, tokenizer: Any, count: int, seed: int, key: str = ""
) -> list[Example]:
    """Up to `count` rows: plain requests answered as the base model answers them."""
    contexts = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}] for p in prompts()
    ]
    answers = _ANSWERS.get(key) if key else None
    if answers is None:
        answers = greedy_answers(model, tokenizer, contexts, ANSWER_TOKENS)
        if key:
            _ANSWERS[key] = answers
    rows = [
        Example(f"rehearsal-{i}", context, answer)
        for i, (context, answer) in enumerate(zip(contexts, answers, strict=True))
        if answer
    ]
    random.Random(seed).shuffle(rows)
    return rows[:count]
