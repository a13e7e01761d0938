"""Self-study: the model rewrites a reply's question itself, with the memories present.

Invariant: a paraphrase is only kept when it is a single question different from the
original (normalised), so a variant never trains the reply on an unrelated prompt. It
needs the context with memories; an example without one gets no variants.
"""

from __future__ import annotations

from typing import Any

from .examples import Example
from .measures import normalise, sampled_answers

_ASK = (
    'Rewrite this question in different words, keeping its meaning: "{question}" '
    "Answer with the rewritten question only."
)


def paraphrased(
    model: Any, tokenizer: Any, example: Example, count: int, seed: int
) -> list[Example]:
    question = example.last_question()
    if example.context_with_memories is None or not question:
        return []
    context = [
        *example.context_with_memories,
        {"role": "user", "content": _ASK.format(question=question)},
    ]
    seen = {normalise(question)}
    kept: list[Example] = []
    for text in sampled_answers(model, tokenizer, context, count * 2, 40, seed):
        line = text.strip().strip('"').splitlines()[0].strip().strip('"') if text.strip() else ""
        if not line.endswith("?") or normalise(line) in seen or len(line) > 200:
            continue
        seen.add(normalise(line))
        kept.append(example.with_question(line))
        if len(kept) == count:
            break
    return kept
