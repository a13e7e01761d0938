"""Measuring the model a job trains: the guard's figures after each epoch, and each reply's
proof.

Invariants:
- every figure is taken on the model being trained, against base values taken once before
  training (the replies' log-likelihood without memories, their fact words, the general
  questions), so an epoch's figures compare with the base model and with each other;
- a reply's fact words come from the base model's per-token divergence (`facts.py`), the
  quantity the Scorer reports;
- generation is the costly part: a reply is generated only where its answer can decide
  (see `Measurer`), and retention only where an epoch would become the best (`guard.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from .examples import Example, HeldOut
from .facts import TokenSpan, fact_words, recalls, supplied, words
from .general import GeneralCheck
from .guard import EpochFigures, GuardSettings
from .measures import greedy_answers, reply_fits, reply_tokens, token_logprobs, token_spans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExampleProof:
    key: str
    divergence_before: float
    divergence_after: float | None
    answer_before: str
    answer_after: str
    # The words its memories supplied (facts.py), which an answer must say.
    fact: tuple[str, ...] = ()
    learnt: bool = False
    # Its question asked anew (`Example.cold`), where the guard asks it too; "" otherwise.
    answer_cold: str = ""

    @property
    def reason(self) -> str:
        """Why the reply was not learnt, in one line ("" when it was)."""
        if self.learnt:
            return ""
        after = "not measured" if self.divergence_after is None else f"{self.divergence_after:.2f}"
        said = _clip(self.answer_after)
        wanted = " ".join(self.fact) or "(the reply's words)"
        why = f'not learnt: divergence {after}, fact "{wanted}", answer "{said}"'
        if self.answer_cold:
            anew = _clip(self.answer_cold)
            why += f', asked anew "{anew}"'
        return why

    def to_json(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "divergence_before": self.divergence_before,
            "divergence_after": self.divergence_after,
            "answer_before": self.answer_before,
            "answer_after": self.answer_after,
            "fact": list(self.fact),
            "learnt": self.learnt,
            "reason": self.reason,
        }


@dataclass
class Snapshot:
    """One measurement of the model: the guard's figures and each reply's own values."""

    figures: EpochFigures
    divergences: list[float]
    answers: list[str]
    # Per reply, its question asked anew, where the guard asked it ("" where not).
    cold_answers: list[str] = field(default_factory=list)


class Measurer:
    """Measures a model against the base values taken once, before training.

    A reply's fact is recalled when the greedy answer without memories says its fact words.
    A reply whose every token is already the argmax (read off the forward pass made for
    divergence) is recalled without generating; the others are generated only once their
    divergence is below the target, the only time recall can decide whether it is learnt.

    With `cold`, a reply is learnt only when its question asked anew (`Example.cold`: the
    leading system messages and the question, no earlier turns) also brings its fact
    words back: how a user asks again another day. That answer is generated only for a
    reply that passed every other test, so it costs a generation per reply about to be
    learnt.
    """

    def __init__(
        self,
        tokenizer: Any,
        examples: list[Example],
        held_out: list[HeldOut],
        settings: GuardSettings,
        general: GeneralCheck,
        cold: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.examples = examples
        # Per reply, its question asked anew where the guard asks it too.
        self.cold: list[Example | None] = [e.cold() if cold else None for e in examples]
        self.held_out = held_out
        self.settings = settings
        self.general = general
        self.base_without: list[float] = []
        self.base_generic: list[float] = []
        self.facts: list[tuple[str, ...]] = []
        self.budget = max((reply_tokens(tokenizer, e.reply) for e in examples), default=0) + 8

    def take_base(self, model: Any, key: str) -> Snapshot:
        self.facts = [self._fact(model, e) for e in self.examples]
        pairs = [(e.context, e.reply) for e in self.examples]
        pairs += [(h.context, h.reply) for h in self.held_out]
        fits = reply_fits(model, self.tokenizer, pairs)
        self.base_without = [f.logprob for f in fits[: len(self.examples)]]
        self.base_generic = [f.logprob for f in fits[len(self.examples) :]]
        base = self.general.take_base(model, key)
        snapshot = self.measure(model, 0, answer_all=True)
        snapshot.figures = replace(snapshot.figures, kept=base.kept, known=base.known)
        return snapshot

    def _fact(self, model: Any, example: Example) -> tuple[str, ...]:
        return reply_fact(model, self.tokenizer, example)

    def answers(self, model: Any, which: list[int]) -> dict[int, str]:
        contexts = [self.examples[i].context for i in which]
        texts = greedy_answers(model, self.tokenizer, contexts, self.budget)
        return dict(zip(which, texts, strict=True))

    def measure(self, model: Any, epoch: int, answer_all: bool = False) -> Snapshot:
        # One batched pass over every reply without memories, with them, and the generic
        # held-out replies.
        with_memories = [e for e in self.examples if e.context_with_memories is not None]
        pairs = [(e.context, e.reply) for e in self.examples]
        pairs += [(e.context_with_memories or [], e.reply) for e in with_memories]
        pairs += [(h.context, h.reply) for h in self.held_out]
        fits = reply_fits(model, self.tokenizer, pairs)
        without = fits[: len(self.examples)]
        full = iter(fits[len(self.examples) : len(self.examples) + len(with_memories)])
        generic_fits = fits[len(self.examples) + len(with_memories) :]
        divergences: list[float] = []
        greedy = [fit.greedy for fit in without]
        for example, fit, base in zip(self.examples, without, self.base_without, strict=True):
            if example.context_with_memories is not None:
                divergences.append(next(full).logprob - fit.logprob)
            else:
                # Without the memories' context, the Review's figure minus what the reply
                # gained without memories estimates what is left.
                assert example.divergence is not None  # contract.py requires one of them
                divergences.append(example.divergence - (fit.logprob - base))
        close = [d < self.settings.target_divergence for d in divergences]
        wanted = [
            i for i in range(len(self.examples)) if answer_all or (close[i] and not greedy[i])
        ]
        answers = self.answers(model, wanted) if wanted else {}
        recalled = [
            greedy[i] or (i in answers and recalls(answers[i], self.facts[i]))
            for i in range(len(self.examples))
        ]
        anew = self.answers_anew(
            model, [i for i, c in enumerate(close) if answer_all or (c and recalled[i])]
        )
        learnt = [
            c and r and (self.cold[i] is None or recalls(anew.get(i, ""), self.facts[i]))
            for i, (c, r) in enumerate(zip(close, recalled, strict=True))
        ]
        generic = [
            fit.logprob - base for fit, base in zip(generic_fits, self.base_generic, strict=True)
        ]
        figures = EpochFigures(
            epoch=epoch,
            divergence=_mean(divergences),
            learnt=tuple(learnt),
            generic=_mean(generic),
            drift=self.general.drift(model) if epoch else 0.0,
            to_go=_mean([max(d - self.settings.target_divergence, 0.0) for d in divergences]),
        )
        texts = [answers.get(i, "") for i in range(len(self.examples))]
        cold = [anew.get(i, "") for i in range(len(self.examples))]
        return Snapshot(figures, divergences, texts, cold)

    def answers_anew(self, model: Any, which: list[int]) -> dict[int, str]:
        """The greedy answers to the questions of `which` asked anew, where the guard asks."""
        asked = [i for i in which if self.cold[i] is not None]
        contexts = [c.context for i in asked if (c := self.cold[i]) is not None]
        texts = greedy_answers(model, self.tokenizer, contexts, self.budget) if asked else []
        return dict(zip(asked, texts, strict=True))

    def with_retention(self, model: Any, figures: EpochFigures) -> EpochFigures:
        kept, known = self.general.retention(model)
        for question, before, now in self.general.lost:
            log.debug("epoch %d lost %r: base %r, now %r", figures.epoch, question, before, now)
        return replace(figures, kept=kept, known=known)


def reply_fact(model: Any, tokenizer: Any, example: Example) -> tuple[str, ...]:
    """The reply's fact words (facts.py), from `model`'s per-token divergence (the base
    model's, as the Scorer reports it); without the context with memories, every word of
    the reply (its exact wording, the only fact there is to go by)."""
    if example.context_with_memories is None:
        return tuple(words(example.reply))
    spans = token_spans(tokenizer, example.reply)
    with_memories = token_logprobs(model, tokenizer, example.context_with_memories, example.reply)
    without = token_logprobs(model, tokenizer, example.context, example.reply)
    tokens = [
        TokenSpan(a, b, w - o) for (a, b), w, o in zip(spans, with_memories, without, strict=True)
    ]
    brought = supplied(
        (m.get("content") or "" for m in example.context_with_memories),
        (m.get("content") or "" for m in example.context),
    )
    return fact_words(example.reply, tokens, brought)


def _clip(text: str) -> str:
    return text if len(text) <= 80 else text[:79] + "…"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
