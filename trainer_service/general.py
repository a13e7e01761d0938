"""General knowledge no job trains on: what a job must not make the model forget.

`general_questions.json` (shipped with the trainer, written for it, never trained) holds
plain questions with the short answers a right answer contains. A job measures the base
model on them once, before training, and the model being trained after each epoch:

- **retention**: of the questions the base model *knows* (answers right at once, an
  accepted answer among the first `ANSWER_TOKENS` tokens of its greedy answer, under each
  of the `SYSTEMS` prompts), the share the tuned model still answers right (among its
  first `RIGHT_TOKENS`, asked with the first prompt). It is the user-visible loss (a fact
  the model knew and no longer says), and the guard's floor (98%). What counts as known is
  measured: the 135M base model names many answers only late in a rambling reply ("a
  deep, rich colour, often with a hint of red"), and some only under one wording of its
  system prompt ("The answer is: The elephant." turns into "a bear" when the prompt says
  "friendly"); exactly those flipped after one epoch of any setting on the tuning half,
  at drift 0.008 as at 0.2. Knowledge that a trivial change of prompt already loses is
  not knowledge a job can be held to keep; the 76 of 200 questions the embedded model
  answers directly under all three prompts are;
- **drift**: the mean per-token KL(base ‖ tuned) of the next-token distributions along the
  base model's own greedy answers to the same questions (teacher forced). Forgetting
  follows this divergence more closely than any task score in the literature (Shenfeld et
  al. 2025, "RL's Razor": forward KL on the base's own outputs predicts forgetting across
  methods), and unlike retention it moves before a single answer flips, so the guard can
  stop an epoch early and back off instead of finding the damage afterwards.

Invariants:
- the base model's answers and distributions are taken before the adapter exists, once per
  base model in a process (`key`: the base never changes on disk, so every later job of
  the trainer reuses them; about `items / DRIFT_STRIDE × ANSWER_TOKENS × vocabulary`
  floats, 240 MB for the embedded model); the tuned model is measured on exactly the same
  token ids, so the KL is over the same positions every epoch;
- every measurement runs without gradients in eval mode (`measures.evaluating`);
- the questions are asked as a new conversation with the trainer's plain system prompt, the
  way the trained replies' cold variants are asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .base_answers import base_answers
from .examples import Chat
from .facts import words
from .measures import evaluating, greedy_answers, prompt_ids

# Drift follows the base model's greedy answer for this many tokens: the first tokens of an
# answer carry what it says; later ones repeat the question's words.
ANSWER_TOKENS = 12
# An answer is judged right on this many tokens: a tuned model that says "The capital city
# of France is the lovely city of Paris" still knows it, and 12 tokens would cut the name.
RIGHT_TOKENS = 32
# Drift is measured on every `DRIFT_STRIDE`-th question (100 of the 200 shipped), every
# epoch: one forward pass over them costs about as much as an epoch of a 4-reply job here.
DRIFT_STRIDE = 2
# Sequences per forward pass (memory: batch × answer length × vocabulary floats).
BATCH = 25
SYSTEM = "You are a helpful assistant."
# The base model knows a question when it answers it right under each of these.
SYSTEMS = (
    SYSTEM,
    "You are a helpful assistant. Answer briefly.",
    "You are a friendly and helpful assistant.",
)


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]

    def context(self, system: str = SYSTEM) -> Chat:
        return [{"role": "system", "content": system}, {"role": "user", "content": self.question}]

    def right(self, answer: str) -> bool:
        said = " ".join(words(answer))
        return any(_contains(said, " ".join(words(a))) for a in self.answers)


def _contains(text: str, phrase: str) -> bool:
    return bool(phrase) and f" {phrase} " in f" {text} "


@cache
def questions() -> tuple[Question, ...]:
    text = resources.files(__package__).joinpath("general_questions.json").read_text("utf-8")
    items = json.loads(text)["items"]
    return tuple(Question(i["question"], tuple(i["answers"])) for i in items)


# What `take_base` measured, per base model (its folder), for the life of the process.
_BASES: dict[str, tuple[list[str], list[int], list[tuple[list[int], int]], list[Any]]] = {}


@dataclass(frozen=True)
class GeneralFigures:
    # Share of the base model's right answers the model still gets right (1.0 when the base
    # model got none right: nothing to lose).
    retention: float
    kept: int
    known: int
    # Mean KL(base ‖ model) per answer token, nats.
    drift: float


class GeneralCheck:
    """The base model's answers and distributions, and the same measured on a tuned model."""

    def __init__(self, tokenizer: Any, items: tuple[Question, ...] | None = None) -> None:
        self.tokenizer = tokenizer
        self.items = items if items is not None else questions()
        self.known: list[int] = []  # indices the base model answers right
        # (question, base model's answer, the last measured model's answer) of the known
        # questions the last `retention` found answered wrong: what a person reads to see
        # what was forgotten.
        self.lost: list[tuple[str, str, str]] = []
        self._base_answers: list[str] = []
        self._sequences: list[tuple[list[int], int]] = []  # (ids, answer start)
        self._base: list[tuple[Any, Any]] = []  # per batch: (base log-probs, used positions)
        # A continued adapter's drift from the base model, measured as a job starts from it
        # (`rebase`); None for a job from the base model.
        self.start_drift: float | None = None

    def take_base(self, model: Any, key: str = "") -> GeneralFigures:
        """Measure the base model (or reuse what was measured for `key`, its folder, in this
        process; its answers are also kept on disk: base_answers.py)."""
        if key and key in _BASES:
            self._base_answers, self.known, self._sequences, self._base = _BASES[key]
            return GeneralFigures(1.0, len(self.known), len(self.known), 0.0)
        self._measure_base(model, Path(key) if key else None)
        if key:
            _BASES[key] = (self._base_answers, self.known, self._sequences, self._base)
        return GeneralFigures(1.0, len(self.known), len(self.known), 0.0)

    def _measure_base(self, model: Any, folder: Path | None) -> None:
        known = set(range(len(self.items)))
        for system in SYSTEMS:
            contexts = [q.context(system) for q in self.items]
            said = base_answers(model, self.tokenizer, folder, contexts, RIGHT_TOKENS)
            known &= {
                i
                for i, (q, a) in enumerate(zip(self.items, said, strict=True))
                if q.right(self._opening(a))
            }
            if system == SYSTEM:
                answers = said
        self._base_answers = answers
        self.known = sorted(known)
        self._sequences = []
        for question, answer in list(zip(self.items, answers, strict=True))[::DRIFT_STRIDE]:
            prompt = prompt_ids(self.tokenizer, question.context())
            said = self.tokenizer(answer, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS]
            if said:
                self._sequences.append((prompt + [int(t) for t in said], len(prompt)))
        self._base = self._logprobs(model)

    def _opening(self, answer: str) -> str:
        """The first `ANSWER_TOKENS` tokens of `answer`."""
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS]
        return str(self.tokenizer.decode(ids))

    def drift(self, model: Any) -> float:
        """Mean KL(reference ‖ model) per answer token, nats: the reference is the base
        model, or the model a job started from once `rebase` was called."""
        return _kl(self._base, self._logprobs(model))

    def rebase(self, model: Any) -> float:
        """Measure drift from `model` (the adapter a job continues) from now on; returns its
        own drift from the base model. A job is judged by how far it moves the model it
        was given: drift from the base model adds up over incremental jobs (each
        continues the last), and that sum is what a consolidation resets
        (`lasting.drift_reason`), while general retention stays judged against the base
        model's answers."""
        start = self._logprobs(model)
        from_base = _kl(self._base, start)
        self._base = start
        return from_base

    def retention(self, model: Any) -> tuple[int, int]:
        """(still right, right on the base model)."""
        if not self.known:
            return 0, 0
        contexts = [self.items[i].context() for i in self.known]
        answers = greedy_answers(model, self.tokenizer, contexts, RIGHT_TOKENS)
        self.lost = [
            (self.items[i].question, self._base_answers[i], a)
            for i, a in zip(self.known, answers, strict=True)
            if not self.items[i].right(a)
        ]
        return len(self.known) - len(self.lost), len(self.known)

    def figures(self, model: Any) -> GeneralFigures:
        kept, known = self.retention(model)
        return GeneralFigures(kept / known if known else 1.0, kept, known, self.drift(model))

    def _logprobs(self, model: Any) -> list[tuple[Any, Any]]:
        """Per batch: (log-probs at the positions that predict answer tokens, batch × longest
        answer × vocabulary; which of those positions hold an answer token)."""
        import torch

        out = []
        pad = int(self.tokenizer.pad_token_id)
        with evaluating(model):
            for at in range(0, len(self._sequences), BATCH):
                batch = self._sequences[at : at + BATCH]
                width = max(len(ids) for ids, _ in batch)
                span = max(len(ids) - start for ids, start in batch)
                ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch])
                mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
                # The backbone's last (normed) hidden states, and the head only where an
                # answer token is predicted: the head over every prompt position would cost
                # more than the model.
                hidden = _backbone(model)(
                    input_ids=ids.to(model.device), attention_mask=mask.to(model.device)
                ).last_hidden_state
                chosen = torch.zeros(len(batch), span, hidden.shape[-1], device=model.device)
                used = torch.zeros(len(batch), span, dtype=torch.bool, device=model.device)
                for row, (sequence, start) in enumerate(batch):
                    n = len(sequence) - start
                    chosen[row, :n] = hidden[row, start - 1 : start - 1 + n]
                    used[row, :n] = True
                head = model.get_output_embeddings()
                out.append((torch.log_softmax(head(chosen).float(), dim=-1), used))
        return out


def _kl(reference: list[tuple[Any, Any]], tuned: list[tuple[Any, Any]]) -> float:
    """Mean KL(reference ‖ tuned) per used position, over batches of (log-probs, used)."""
    total, count = 0.0, 0
    for (base, used), (other, _) in zip(reference, tuned, strict=True):
        kl = (base.exp() * (base - other)).sum(-1)
        total += float(kl[used].sum())
        count += int(used.sum())
    return total / count if count else 0.0


def _backbone(model: Any) -> Any:
    """The transformer under the language-model head (through a peft wrapper: its LoRA
    layers sit inside it, so they apply)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.model
