"""One training job: TRL's SFTTrainer on prompt–completion examples, under the guard.

Invariants:
- the loss is on the reply tokens only (prompt–completion examples, `completion_only_loss`);
- the base model is never changed on disk: LoRA trains an adapter beside it; `full` trains a
  copy in memory;
- the figures of every epoch are measured on the model being trained, after that epoch,
  and the guard (`guard.py`) decides; only a model the guard promoted is written, and only
  into the staging folder the caller gives (the caller renames it into place);
- float32 and no gradient checkpointing: bf16 training stalls on this CPU without an error;
- with a `Plan` (`lasting.py`), a learn job continues from the served adapter and a
  consolidation starts from the base model; either checks its sample of earlier learnt
  keys before training and on every epoch the guard measures retention on
  (`retention.py`); a learn job's lost facts are the guard's, a consolidation promotes only
  under `lasting.consolidation_problem`.
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
from .examples import Example, JobInput
from .general import GeneralCheck
from .guard import Course, EpochFigures, Step, refusal
from .knowledge import statement_rows
from .lasting import CONSOLIDATE, Checked, Plan, consolidation_problem, lost_summary
from .lengths import training_row
from .measurer import ExampleProof, Measurer, Snapshot
from .model import load_base
from .neighbours import neighbour_contexts
from .rehearsal import rehearsal_rows
from .retention import RetentionCheck, starting_model
from .self_study import paraphrased
from .settings import TrainingSettings
from .teacher import teacher_rows

log = logging.getLogger(__name__)


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
    # The plan's checked keys: as the promoted epoch left them, else as before the job.
    checked: list[Checked] = field(default_factory=list)
    # The continued adapter's drift from the base model as the job started (None: from
    # the base model); the job's own `drift` is measured from the model it started from.
    start_drift: float | None = None

    @property
    def after(self) -> EpochFigures | None:
        if self.chosen is not None:
            return self.chosen
        return self.history[-1] if self.history else None

    @property
    def learnt_keys(self) -> list[str]:
        return [p.key for p in self.per_example if p.learnt] if self.promoted else []


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


def sft_config(settings: TrainingSettings, scratch: str, device: str, learning_rate: float) -> Any:
    """TRL's configuration of a job's trainer: `settings`' epochs, batch, schedule and seed at
    `learning_rate`, float32 without checkpointing, the loss on the replies, nothing saved."""
    from trl import SFTConfig  # type: ignore[attr-defined]

    return SFTConfig(
        # TRL wants a folder of its own; nothing is saved there (save_strategy "no").
        output_dir=scratch,
        num_train_epochs=settings.max_epochs,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=learning_rate,
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
        # Rows are trimmed to ROW_TOKENS (lengths.trimmed); one that cannot be is trained
        # whole rather than cut from its end, which would cut its reply.
        max_length=None,
        completion_only_loss=True,
        dataloader_num_workers=0,
    )


def train_job(
    job: JobInput,
    settings: TrainingSettings,
    base_folder: Path,
    device: str,
    staging: Path,
    report: Callable[[Progress], None],
    plan: Plan | None = None,
) -> Outcome:
    """Train `job` from the base model, or as `plan` says; write the promoted model into
    `staging` or nothing."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTTrainer  # type: ignore[attr-defined]

    started = time.monotonic()
    torch.manual_seed(settings.seed)
    model, tokenizer = load_base(base_folder, device)
    progress = Progress(detail="measuring the base model")
    report(progress)
    statements = (
        statement_rows(
            model,
            tokenizer,
            job.examples + job.replay,
            settings.what_questions,
            settings.wide_statements,
            settings.named_statements,
        )
        if settings.memory_statements
        else []
    )
    measurer = Measurer(
        tokenizer,
        job.examples,
        job.held_out,
        settings.guard,
        GeneralCheck(tokenizer),
        cold=settings.learnt_cold,
    )
    base = measurer.take_base(model, str(base_folder))
    check = RetentionCheck(tokenizer, plan.checks if plan else [])
    replayed_keys = {e.key for e in job.replay}
    replayed = {i for i, k in enumerate(check.checks) if k.key in replayed_keys}
    check.take_base(model)
    consolidating = plan is not None and plan.kind == CONSOLIDATE
    stated = [e for asked in statements for e in asked]
    trained = training_examples(job, settings) + stated
    if settings.teacher_answers:
        progress.detail = f"teacher answers: up to {settings.teacher_answers} per reply"
        report(progress)
        trained += teacher_rows(
            model, tokenizer, job.examples, measurer.facts, settings.teacher_answers, settings.seed
        )
    rows = [training_row(e, tokenizer) for e in trained]
    rehearsed = []
    if settings.rehearsal:
        count = round(settings.rehearsal * len(rows))
        rehearsed = [
            training_row(e, tokenizer)
            for e in rehearsal_rows(model, tokenizer, count, settings.seed, str(base_folder))
        ]
    if settings.self_study:
        progress.detail = f"self-study: {settings.self_study} paraphrases per reply"
        report(progress)
        for example in job.examples:
            for variant in paraphrased(
                model, tokenizer, example, settings.self_study, settings.seed
            ):
                rows.append(training_row(variant, tokenizer))
    anchor = (
        Anchor(
            model,
            tokenizer,
            base_folder,
            settings.anchor_questions,
            (
                neighbour_contexts(stated + job.examples + job.replay, settings.neighbour_subjects)
                if settings.neighbours
                else None
            ),
        )
        if settings.anchor
        else None
    )
    if anchor is not None and anchor.neighbours is not None:
        asked = [chat[-1]["content"] for chat in anchor.neighbours.contexts]
        log.debug("anchoring %d neighbours: %s", len(asked), asked)
    # The step size is set by the job's own rows (see the `sft_config` call below); rehearsal rows
    # ride along.
    learning_rows = len(rows)
    rows += rehearsed
    if plan is not None and plan.checks:
        progress.detail = f"checking {len(plan.checks)} earlier learnt keys"
        report(progress)
    model, served_general = starting_model(
        model, plan, check, measurer.general, lambda m: _wrap(m, settings)
    )
    steps_per_epoch = math.ceil(len(rows) / settings.batch_size)
    progress.total_steps = steps_per_epoch * settings.max_epochs
    progress.detail = (
        f"training: {learning_rows} rows and {len(rehearsed)} of rehearsal an epoch, "
        f"up to {settings.max_epochs} epochs"
    )
    report(progress)
    history: list[EpochFigures] = []
    snapshots: list[Snapshot] = []
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
            lost: list[int] = []
            if course.worth_retention(snapshot.figures):
                snapshot.figures = measurer.with_retention(model, snapshot.figures)
                if check.checks:
                    lost = check.measure(model, epoch)
                    if not consolidating:  # a consolidation is held to its own rule
                        snapshot.figures = replace(snapshot.figures, lost=len(lost))
            history.append(snapshot.figures)
            snapshots.append(snapshot)
            step = course.after(snapshot.figures)
            progress.epoch = epoch
            progress.detail = f"epoch {epoch}/{settings.max_epochs}: {snapshot.figures.line()}"
            if lost:
                facts = [check.facts[i] for i in lost]
                progress.detail += f" ({lost_summary(facts, [i in replayed for i in lost])})"
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
            elif step is Step.HOLD:
                progress.detail += "; lost earlier facts: not promotable, training on"
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
    config = sft_config(
        settings,
        scratch,
        device,
        # Cold variants and self-study add rows to an epoch; the step size shrinks by as
        # much, so that one epoch moves the model about as far as without them and the guard,
        # which looks once per epoch, does not step over the window where it may promote
        # (measured: at the plain rate, 2 paraphrases per reply went from recall 3/4 to
        # generic -0.60 in one epoch).
        settings.learning_rate * len(job.examples + job.replay) / learning_rows,
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
    checked = check.results(model, chosen.epoch) if promoted and chosen else check.unchanged()
    problem = ""
    if promoted and consolidating and chosen is not None:
        general = (chosen.kept, chosen.known) if chosen.kept is not None else None
        problem = consolidation_problem(checked, served_general, general)
        if problem:
            promoted, checked = False, check.unchanged()
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
        anew = measurer.answers_anew(model, list(range(len(job.examples))))
        last.cold_answers = [anew.get(i, "") for i in range(len(job.examples))]
    proofs = [
        ExampleProof(
            key=example.key,
            divergence_before=before_div,
            divergence_after=last.divergences[i] if last else None,
            answer_before=before_answer,
            answer_after=last.answers[i] if last else "",
            fact=measurer.facts[i],
            learnt=promoted and last is not None and last.figures.learnt[i],
            answer_cold=last.cold_answers[i] if last else "",
        )
        for i, (example, before_div, before_answer) in enumerate(
            zip(job.examples, base.divergences, base.answers, strict=True)
        )
    ]
    return Outcome(
        promoted=promoted,
        chosen=chosen if promoted else None,
        error=""
        if promoted
        else problem or (refusal(history, settings.guard) if history else "no epoch ran"),
        before=base.figures,
        history=history,
        per_example=proofs,
        seconds=time.monotonic() - started,
        checked=checked,
        start_drift=measurer.general.start_drift,
    )
