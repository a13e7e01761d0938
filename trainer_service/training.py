"""One training job: TRL's SFTTrainer on prompt–completion examples, under the guard.

Invariants:
- the loss is on the reply tokens only (prompt–completion examples, `completion_only_loss`);
- the base model is never changed on disk: LoRA trains an adapter beside it; `full` trains a
  copy in memory;
- the figures of every epoch are measured on the model being trained, after that epoch,
  and the guard (`guard.py`) decides; only a model the guard promoted is written, and only
  into the staging folder the caller gives (the caller renames it into place);
- float32 and no gradient checkpointing: bf16 training stalls on this CPU without an error.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .anchor import Anchor
from .examples import Example, HeldOut, JobInput
from .facts import TokenSpan, fact_words, recalls, words
from .general import GeneralCheck
from .guard import Course, EpochFigures, GuardSettings, Step, refusal
from .knowledge import statement_rows
from .measures import (
    greedy_answers,
    reply_fits,
    reply_tokens,
    token_logprobs,
    token_spans,
)
from .model import load_base
from .rehearsal import rehearsal_rows
from .self_study import paraphrased
from .teacher import teacher_rows

log = logging.getLogger(__name__)

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainingSettings:
    method: str = "lora"  # "lora" or "full"
    rank: int = 16
    alpha: int = 32
    target_modules: tuple[str, ...] = ALL_LINEAR
    # Per row of the job's own replies; an epoch with variants scales it down (see the
    # SFTConfig below), so with cold variants each step takes 5e-4, the former default.
    learning_rate: float = 1e-3
    scheduler: str = "constant"
    max_epochs: int = 16
    batch_size: int = 4
    self_study: int = 0
    # Per trained reply, up to this many teacher answers (teacher.py: the base model with
    # the memories in its prompt answers the reply's question asked anew; answers that say
    # the fact become rows without the memories). 0: none.
    teacher_answers: int = 0
    # Rehearsal rows (rehearsal.py: the base model's own answers to plain requests) per row
    # of the job's own, at most the 64 prompts shipped. 0: none.
    # Hard rehearsal made drift worse on the tuning half (anchor.py), so it is off.
    rehearsal: float = 0.0
    # Weight of the anchor (anchor.py: KL(base ‖ tuned) on the base model's own answers to
    # plain requests, added to every step's loss). 0: none. Measured on the tuning half
    # (c01, 4 facts, 4 epochs): drift 0.089 at weight 1 and 0.039 at 4, with the replies'
    # divergence the same (0.52, 0.53); without it (and with hard rehearsal) 0.2 and more
    # within 2 epochs.
    anchor: float = 4.0
    # Per trained reply, also a row asking its question in a new conversation (`Example.cold`):
    # the fact is then not tied to the earlier turns of its conversation. Measured on the four
    # fixture facts (bench/bench_training.py, eight paraphrased questions asked cold): 5/8
    # with it at lr 1e-3 against 2/8 for the former defaults (no variants, lr 5e-4); also
    # 5/8 at batch 2 or 1 (lr 5e-4) and with NEFTune, 3/8 at lr 5e-4 batch 4. Memory texts
    # recited as rows ("what do you remember about me?") made the guard refuse the job
    # (generic -0.24), and the model's own paraphrases of a question are rarely paraphrases.
    cold_variants: bool = True
    # Per trained reply, also the memory it leaned on, asked about by its subject and stated
    # to the user (knowledge.py); the guard holds a promotable epoch until the statements
    # come back too. Measured on the four fixture facts (bench/bench_training.py, seeds
    # 0-2): paraphrases 7, 6 and 5 of 8 with them, 5, 3 and 3 without; the job takes about
    # 15% longer.
    memory_statements: bool = True
    seed: int = 0
    # False only for measurements (the benchmark's baseline): train every epoch, keep the last.
    guarded: bool = True
    guard: GuardSettings = field(default_factory=GuardSettings)


DEFAULTS = TrainingSettings()


def _trainable_copy(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _restore(model: Any, kept: dict[str, Any], optimizer: Any) -> None:
    """Put the trained weights back as they were, and forget the optimizer's moments."""
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in kept:
                parameter.copy_(kept[name])
    if optimizer is not None:
        optimizer.state.clear()


def _scale_learning_rate(optimizer: Any, scheduler: Any, factor: float) -> None:
    if optimizer is not None:
        for group in optimizer.param_groups:
            group["lr"] *= factor
    if scheduler is not None and hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


@dataclass
class Progress:
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    loss: float | None = None
    detail: str = ""


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

    @property
    def reason(self) -> str:
        """Why the reply was not learnt, in one line ("" when it was)."""
        if self.learnt:
            return ""
        after = "not measured" if self.divergence_after is None else f"{self.divergence_after:.2f}"
        said = self.answer_after if len(self.answer_after) <= 80 else self.answer_after[:79] + "…"
        wanted = " ".join(self.fact) or "(the reply's words)"
        return f'not learnt: divergence {after}, fact "{wanted}", answer "{said}"'

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
class Outcome:
    promoted: bool
    error: str
    before: EpochFigures
    history: list[EpochFigures]
    per_example: list[ExampleProof]
    seconds: float
    # The promoted epoch's figures (an earlier, best epoch can be promoted), or None.
    chosen: EpochFigures | None = None

    @property
    def after(self) -> EpochFigures | None:
        if self.chosen is not None:
            return self.chosen
        return self.history[-1] if self.history else None

    @property
    def learnt_keys(self) -> list[str]:
        return [p.key for p in self.per_example if p.learnt] if self.promoted else []


@dataclass
class _Snapshot:
    """One measurement of the model: the guard's figures and each reply's own values."""

    figures: EpochFigures
    divergences: list[float]
    answers: list[str]


class _Measurer:
    """Measures a model against the base values taken once, before training.

    A reply's fact is recalled when the greedy answer without memories says its fact words.
    A reply whose every token is already the argmax (read off the forward pass made for
    divergence) is recalled without generating; the others are generated only once their
    divergence is below the target, the only time recall can decide whether it is learnt.
    """

    def __init__(
        self,
        tokenizer: Any,
        examples: list[Example],
        held_out: list[HeldOut],
        settings: GuardSettings,
        general: GeneralCheck,
    ) -> None:
        self.tokenizer = tokenizer
        self.examples = examples
        self.held_out = held_out
        self.settings = settings
        self.general = general
        self.base_without: list[float] = []
        self.base_generic: list[float] = []
        self.facts: list[tuple[str, ...]] = []
        self.budget = max((reply_tokens(tokenizer, e.reply) for e in examples), default=0) + 8

    def take_base(self, model: Any, key: str) -> _Snapshot:
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

    def measure(self, model: Any, epoch: int, answer_all: bool = False) -> _Snapshot:
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
        generic = [
            fit.logprob - base for fit, base in zip(generic_fits, self.base_generic, strict=True)
        ]
        figures = EpochFigures(
            epoch=epoch,
            divergence=_mean(divergences),
            learnt=tuple(c and r for c, r in zip(close, recalled, strict=True)),
            generic=_mean(generic),
            drift=self.general.drift(model) if epoch else 0.0,
        )
        texts = [answers.get(i, "") for i in range(len(self.examples))]
        return _Snapshot(figures, divergences, texts)

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
    return fact_words(example.reply, tokens)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _row(example: Example) -> dict[str, Any]:
    return {
        "prompt": example.context,
        "completion": [{"role": "assistant", "content": example.reply}],
    }


def training_examples(job: JobInput, settings: TrainingSettings) -> list[Example]:
    """What one epoch trains on, before self-study: the job's examples and the replay, then
    the variants `settings` asks for."""
    trained = job.examples + job.replay
    out = list(trained)
    if settings.cold_variants:
        out += [cold for e in trained if (cold := e.cold()) is not None]
    return out


def _wrap(model: Any, settings: TrainingSettings) -> Any:
    if settings.method == "full":
        model.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def train_job(
    job: JobInput,
    settings: TrainingSettings,
    base_folder: Path,
    device: str,
    staging: Path,
    report: Callable[[Progress], None],
) -> Outcome:
    """Train `job` from the base model; write the promoted model into `staging` or nothing."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    started = time.monotonic()
    torch.manual_seed(settings.seed)
    model, tokenizer = load_base(base_folder, device)
    progress = Progress(detail="measuring the base model")
    report(progress)
    statements = (
        statement_rows(model, tokenizer, job.examples + job.replay)
        if settings.memory_statements
        else []
    )
    measurer = _Measurer(
        tokenizer, job.examples, job.held_out, settings.guard, GeneralCheck(tokenizer)
    )
    base = measurer.take_base(model, str(base_folder))
    trained = training_examples(job, settings) + [e for asked in statements for e in asked]
    if settings.teacher_answers:
        progress.detail = f"teacher answers: up to {settings.teacher_answers} per reply"
        report(progress)
        trained += teacher_rows(
            model, tokenizer, job.examples, measurer.facts, settings.teacher_answers, settings.seed
        )
    rows = [_row(e) for e in trained]
    rehearsed = []
    if settings.rehearsal:
        count = round(settings.rehearsal * len(rows))
        rehearsed = [
            _row(e)
            for e in rehearsal_rows(model, tokenizer, count, settings.seed, str(base_folder))
        ]
    if settings.self_study:
        progress.detail = f"self-study: {settings.self_study} paraphrases per reply"
        report(progress)
        for example in job.examples:
            for variant in paraphrased(
                model, tokenizer, example, settings.self_study, settings.seed
            ):
                rows.append(_row(variant))
    anchor = Anchor(model, tokenizer) if settings.anchor else None
    # The step size is set by the job's own rows (see the SFTConfig below); rehearsal rows
    # ride along.
    learning_rows = len(rows)
    rows += rehearsed
    model = _wrap(model, settings)
    steps_per_epoch = math.ceil(len(rows) / settings.batch_size)
    progress.total_steps = steps_per_epoch * settings.max_epochs
    progress.detail = (
        f"training: {learning_rows} rows and {len(rehearsed)} of rehearsal an epoch, "
        f"up to {settings.max_epochs} epochs"
    )
    report(progress)
    history: list[EpochFigures] = []
    snapshots: list[_Snapshot] = []
    course = Course(settings.guard, settings.max_epochs, settings.guarded)

    class Guard(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "loss" in logs:
                progress.loss = float(logs["loss"])
                report(progress)

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            progress.step = int(state.global_step)
            progress.total_steps = int(state.max_steps)
            report(progress)

        def __init__(self) -> None:
            # The last good epoch's weights; before the first, the untrained adapter (the base
            # model): an epoch that forgot too much goes back to it with half the step.
            self.kept: dict[str, Any] | None = _trainable_copy(model)
            self.best: dict[str, Any] | None = None  # the best epoch's, kept aside

        def on_epoch_end(
            self, args: Any, state: Any, control: Any, optimizer: Any = None,
            lr_scheduler: Any = None, **_: Any,
        ) -> None:  # fmt: skip
            epoch = len(history) + 1
            snapshot = measurer.measure(model, epoch)
            if course.worth_retention(snapshot.figures):
                snapshot.figures = measurer.with_retention(model, snapshot.figures)
            history.append(snapshot.figures)
            snapshots.append(snapshot)
            step = course.after(snapshot.figures)
            progress.epoch = epoch
            progress.detail = f"epoch {epoch}/{settings.max_epochs}: {snapshot.figures.line()}"
            if step in (Step.GO_ON, Step.BEST):
                self.kept = _trainable_copy(model)
            if step is Step.BEST:
                self.best = self.kept
                progress.detail += "; the best so far, kept"
            elif step is Step.BACK_OFF:
                assert self.kept is not None
                _restore(model, self.kept, optimizer)
                _scale_learning_rate(optimizer, lr_scheduler, 0.5)
                progress.detail += "; forgot too much: back one epoch, learning rate halved"
            elif step is Step.PROMOTE_BEST:
                assert course.promoted is not None
                if course.promoted is not snapshot.figures:
                    assert self.best is not None
                    _restore(model, self.best, None)
                progress.detail += f"; promoting epoch {course.promoted.epoch}"
            report(progress)
            if step.stops:
                control.should_training_stop = True

    scratch_dir = tempfile.TemporaryDirectory(prefix="ftreview-trainer-")
    scratch = scratch_dir.name
    config = SFTConfig(
        # TRL wants a folder of its own; nothing is saved there (save_strategy "no").
        output_dir=scratch,
        num_train_epochs=settings.max_epochs,
        per_device_train_batch_size=settings.batch_size,
        # Cold variants and self-study add rows to an epoch; the step size shrinks by as
        # much, so that one epoch moves the model about as far as without them and the guard,
        # which looks once per epoch, does not step over the window where it may promote
        # (measured: at the plain rate, 2 paraphrases per reply went from recall 3/4 to
        # generic -0.60 in one epoch).
        learning_rate=settings.learning_rate * len(job.examples + job.replay) / learning_rows,
        lr_scheduler_type=settings.scheduler,
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        use_cpu=device == "cpu",
        seed=settings.seed,
        data_seed=settings.seed,
        disable_tqdm=True,
        max_length=1024,
        completion_only_loss=True,
        dataloader_num_workers=0,
    )

    class Anchored(SFTTrainer):
        """SFT plus, per step, the anchor's KL to the base model (anchor.py)."""

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:  # fmt: skip
            result = super().compute_loss(  # type: ignore[no-untyped-call]
                model, inputs, return_outputs, num_items_in_batch
            )
            if anchor is None or not model.training:
                return result
            extra = settings.anchor * anchor.loss(model)
            if return_outputs:
                return result[0] + extra, result[1]
            return result + extra

    trainer = Anchored(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[Guard()],
    )
    # The job's progress goes to the ledger, not to stdout.
    trainer.remove_callback(PrinterCallback)
    with scratch_dir:
        trainer.train()
    chosen = course.promoted
    promoted = chosen is not None and (any(chosen.learnt) or not settings.guarded)
    if promoted:
        model.save_pretrained(str(staging))
        if settings.method == "full":
            tokenizer.save_pretrained(str(staging))
    # One snapshot per epoch, in order: the promoted one, or the last one measured.
    at = chosen.epoch if chosen is not None else len(snapshots)
    last = snapshots[at - 1] if snapshots else None
    if last is not None:
        # The proof shows what the model (promoted, or as training left it) says, asked
        # without memories.
        said = measurer.answers(model, list(range(len(job.examples))))
        last.answers = [said[i] for i in range(len(job.examples))]
    proofs = [
        ExampleProof(
            key=example.key,
            divergence_before=before_div,
            divergence_after=last.divergences[i] if last else None,
            answer_before=before_answer,
            answer_after=last.answers[i] if last else "",
            fact=measurer.facts[i],
            learnt=promoted and last is not None and last.figures.learnt[i],
        )
        for i, (example, before_div, before_answer) in enumerate(
            zip(job.examples, base.divergences, base.answers, strict=True)
        )
    ]
    return Outcome(
        promoted=promoted,
        chosen=chosen if promoted else None,
        error="" if promoted else refusal(history, settings.guard) if history else "no epoch ran",
        before=base.figures,
        history=history,
        per_example=proofs,
        seconds=time.monotonic() - started,
    )
