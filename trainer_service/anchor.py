"""The anchor: every training step also pays for moving the model's answers to plain requests.

Rows that say something about the user pull every answer towards them; measured on the fact
set's tuning half, one epoch of four facts already turned "The answer is: The elephant."
into "a bear". Training on the base model's own greedy answers as rows (hard rehearsal)
made it worse (drift 0.19 against 0.06 after an epoch): a greedy answer is a sharpened copy
of the distribution, and fitting it moves the rest. The anchor fits the distribution
itself: each step adds `weight × KL(base ‖ tuned)`, per token along the base model's own
answers to a few plain requests (`rehearsal_prompts.json`, never the general questions the
guard judges with), a rotating handful per step. That is the quantity the guard's drift
measures, on other prompts, and the regulariser the literature finds keeps a fine-tuned
model closest to its base (Shenfeld et al. 2025).

With `questions`, a second pool joins the plain requests: short questions answered with
one fact (`anchor_questions.json`, none among the general questions either). A job's rows
are questions about the user answered with a fact, and the general answers they break are
of that kind ("The capital of Ireland is Londinium"), which plain requests anchor only from
afar.

With `neighbours` (neighbours.py: the job's own questions asked about the world, "How much
dry food does a dog eat per day?"), a pool of its own joins with its own mean: the answers
a job was seen to break are near its facts, where neither pool above asks.

Invariants:
- the base distributions are taken once, before the adapter exists (no gradient), on
  exactly the token ids the tuned model is measured on;
- a step's anchor is over the next `CHUNK` sequences of each pool in turn, so every prompt
  of a pool anchors equally often, and the KL is the mean over all their answer tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .base_answers import base_answers
from .examples import Chat
from .measures import evaluating, prompt_ids
from .rehearsal import SYSTEM, prompts

# Tokens of each base answer the anchor follows, and sequences per step.
ANSWER_TOKENS = 16
CHUNK = 4


class Anchor:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        folder: Path | None = None,
        questions: bool = False,
        neighbours: list[Chat] | None = None,
    ) -> None:
        texts = [prompts(), *([anchor_questions()] if questions else [])]
        self.pad = int(tokenizer.pad_token_id)
        self.pools = [
            _Pool(model, tokenizer, folder, _asked(pool), self._logprobs) for pool in texts
        ]
        # A job's own neighbours are asked once: their answers are not kept on disk.
        near = _Pool(model, tokenizer, None, neighbours or [], self._logprobs)
        self.neighbours = near if near.sequences else None

    def loss(self, model: Any) -> Any:
        """KL(base ‖ model) per answer token on the next chunk of each pool, with gradients:
        the mean over the plain pools' tokens, plus the neighbours' own mean."""
        import torch

        plain = torch.cat([self._kl(model, pool) for pool in self.pools]).mean()
        return plain if self.neighbours is None else plain + self._kl(model, self.neighbours).mean()

    def _kl(self, model: Any, pool: _Pool) -> Any:
        chunk, base = pool.next()
        tuned, used = self._logprobs(model, chunk)
        return (base.exp() * (base - tuned)).sum(-1)[used]

    def _logprobs(self, model: Any, chunk: list[tuple[list[int], int]]) -> tuple[Any, Any]:
        import torch

        device = model.device
        width = max(len(ids) for ids, _ in chunk)
        span = max(len(ids) - start for ids, start in chunk)
        ids = torch.tensor([i + [self.pad] * (width - len(i)) for i, _ in chunk], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk])
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        hidden = inner.model(input_ids=ids, attention_mask=mask.to(device)).last_hidden_state
        rows = []
        used = torch.zeros(len(chunk), span, dtype=torch.bool, device=device)
        for row, (sequence, start) in enumerate(chunk):
            n = len(sequence) - start
            piece = hidden[row, start - 1 : start - 1 + n]
            rows.append(torch.nn.functional.pad(piece, (0, 0, 0, span - n)))
            used[row, :n] = True
        logits = model.get_output_embeddings()(torch.stack(rows)).float()
        return torch.log_softmax(logits, dim=-1), used


class _Pool:
    """One set of prompts: the base model's answers to them and its distributions along
    those answers, in chunks taken in turn."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        folder: Path | None,
        contexts: list[Chat],
        logprobs: Callable[[Any, list[tuple[list[int], int]]], tuple[Any, Any]],
    ) -> None:
        answers = (
            base_answers(model, tokenizer, folder, contexts, ANSWER_TOKENS) if contexts else []
        )
        self.sequences: list[tuple[list[int], int]] = []
        self.contexts: list[Chat] = []  # those with an answer, as `sequences`
        for context, answer in zip(contexts, answers, strict=True):
            said = tokenizer(answer, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS]
            if said:
                self.contexts.append(context)
                prompt = prompt_ids(tokenizer, context)
                self.sequences.append((prompt + [int(t) for t in said], len(prompt)))
        self._next = 0
        with evaluating(model):
            self.base = [
                logprobs(model, self.sequences[at : at + CHUNK])[0].detach()
                for at in range(0, len(self.sequences), CHUNK)
            ]

    def next(self) -> tuple[list[tuple[list[int], int]], Any]:
        at = self._next
        self._next = (self._next + 1) % len(self.base)
        return self.sequences[at * CHUNK : (at + 1) * CHUNK], self.base[at]


def _asked(texts: tuple[str, ...]) -> list[Chat]:
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}] for t in texts]


@cache
def anchor_questions() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("anchor_questions.json").read_text("utf-8")
    return tuple(json.loads(text)["questions"])
