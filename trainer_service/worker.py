"""Runs jobs one at a time on a thread of its own, so the HTTP loop stays responsive.

Invariants:
- one job at a time, oldest queued first; training blocks this thread only;
- a job's progress (step, loss, the guard's figures per epoch) is written to the ledger as
  it happens, so `GET /v1/ftreview/jobs/{id}` shows it while the job runs;
- promotion order: the guard promotes -> the staging folder becomes `vN` and
  `current.json` points at it -> the Scorer is told (`LoadAdapter`) -> the ledger marks the
  job succeeded and the keys its adapter learnt trained, in one transaction. A crash at any
  point before the last step leaves the job `running`, and `recover` queues it again from
  the start;
- a job promotes what it learnt (`guard.py`): its other keys stay untrained, each with its
  reason in `per_example`, and a later request that sends one again puts it in a new job; a
  job that learnt nothing fails and promotes nothing;
- an exception in a job fails that job with its message; the worker goes on with the next;
- what a job trains and checks is planned as it starts (`lasting.plan_job`) from the
  ledger's served adapter (its last promotion), not from `current.json`: a trainer killed
  between the rename and the ledger's write re-runs that job from the same start, never
  from its own unrecorded promotion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .adapters import AdapterVersions
from .examples import BUILT_IN_GENERIC, JobInput
from .lasting import CONSOLIDATE, Checked, drift_reason, facts_figures, plan_job
from .ledger import JobLedger
from .rebuild import untrained_adapter
from .settings import TrainingSettings
from .training import Outcome, Progress, train_job

log = logging.getLogger(__name__)

# Tells the Scorer about a promoted adapter: (path, name) -> "" or why it was not told.
ScorerNotice = Callable[[str, str], str]

# Progress is written at most this often (seconds), and always at an epoch's end.
PROGRESS_EVERY = 0.25


def settings_for(base: TrainingSettings, overrides: dict[str, Any]) -> TrainingSettings:
    guard = replace(
        base.guard,
        target_divergence=float(overrides.get("target_divergence", base.guard.target_divergence)),
        max_drift=float(overrides.get("max_drift", base.guard.max_drift)),
        min_retention=float(overrides.get("min_retention", base.guard.min_retention)),
        max_lost_facts=int(overrides.get("max_lost_facts", base.guard.max_lost_facts)),
    )
    return replace(
        base,
        learning_rate=float(overrides.get("learning_rate", base.learning_rate)),
        max_epochs=int(overrides.get("max_epochs", base.max_epochs)),
        guard=guard,
    )


def figures(outcome: Outcome) -> dict[str, Any]:
    after = outcome.after
    checked, kept = facts_figures(outcome.checked)
    return {
        "facts_checked": checked,
        "facts_kept": kept,
        "retention": [c.to_json() for c in outcome.checked],
        "epochs": len(outcome.history),
        "trained_divergence_before": outcome.before.divergence,
        "trained_divergence_after": after.divergence if after else None,
        "recall": after.recalled / after.replies if after and after.replies else None,
        "generic_loglik_change": after.generic if after else None,
        "learnt": len(outcome.learnt_keys),
        "drift": after.drift if after else None,
        "general_retention": after.retention if after else None,
        "per_example": [p.to_json() for p in outcome.per_example],
    }


class JobWorker:
    def __init__(
        self,
        ledger: JobLedger,
        versions: AdapterVersions,
        settings: TrainingSettings,
        base_folder: Path,
        device: str,
        notify_scorer: ScorerNotice | None,
    ) -> None:
        self.ledger = ledger
        self.versions = versions
        self.settings = settings
        self.base_folder = base_folder
        self.device = device
        self.notify_scorer = notify_scorer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ftreview-trainer-jobs", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> None:
        for name in self.versions.remove_leftovers():
            log.warning("removed %s, left by a job that did not finish", name)
        for job_id in self.ledger.recover():
            log.warning("job %s was running when the trainer stopped; it runs again", job_id)
        self._thread.start()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking jobs; a job already training finishes first (or the process ends)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stop.is_set() and (job_id := self.ledger.next_queued()):
                try:
                    self.run_job(job_id)
                except Exception as error:  # a broken job must not stop the worker
                    log.exception("job %s failed", job_id)
                    self.ledger.finish(
                        job_id,
                        succeeded=False,
                        detail="failed",
                        figures={},
                        trained_keys=[],
                        error=f"{type(error).__name__}: {error}",
                    )

    def run_job(self, job_id: str) -> None:
        settings = settings_for(self.settings, self.ledger.settings(job_id))
        started = self.ledger.start(job_id)
        run = started.run
        # A job run again after a crash says so in every detail it shows.
        again = f"run {run}, from the start after the trainer stopped: " if run > 1 else ""
        exists = started.served is not None and Path(started.served[1]).is_dir()
        plan = plan_job(started, exists, settings.method == "lora", settings.replay)
        self.ledger.planned(job_id, plan.kind, plan.continued_from, len(plan.examples))
        why = str(self.ledger.settings(job_id).get("why", ""))
        if started.kind == CONSOLIDATE and not started.retracted_served and not why:
            self.ledger.finish(
                job_id,
                succeeded=True,
                detail=f"{again}nothing to consolidate: the served adapter holds no retracted key",
                figures={},
                trained_keys=[],
            )
            return
        if not plan.examples and plan.kind != CONSOLIDATE:
            self.ledger.finish(
                job_id,
                succeeded=False,
                detail=f"{again}every key was retracted before the job ran: nothing to learn",
                figures={},
                trained_keys=[],
                error="every key was retracted before the job ran",
            )
            return
        learn = plan.examples
        missing = {k.key for k in started.live if k.missing}
        log.info(
            "job %s: %s from %s, %d keys, replaying %d (%d last checked missing), checking %d",
            job_id, plan.kind, plan.continued_from or "the base model", len(plan.examples),
            len(plan.replay), sum(e.key in missing for e in plan.replay), len(plan.checks),
        )  # fmt: skip
        held_out = self.ledger.held_out() or list(BUILT_IN_GENERIC)
        job = JobInput(plan.examples, plan.replay, held_out)
        staging = self.versions.staging(job_id)
        last_write = 0.0
        epoch_line = ""

        def report(progress: Progress) -> None:
            nonlocal last_write, epoch_line
            moment = time.monotonic()
            # An epoch's line stays the detail of every step's report until the next epoch
            # ends; it is written (and logged) once.
            epoch_end = progress.detail.startswith("epoch") and progress.detail != epoch_line
            if epoch_end:
                epoch_line = progress.detail
                # The job's course, epoch by epoch, stays in the trainer's log: the ledger
                # keeps only the latest line.
                log.info("job %s: %s%s", job_id, again, progress.detail)
            if moment - last_write < PROGRESS_EVERY and not epoch_end:
                return
            last_write = moment
            self.ledger.progress(
                job_id,
                step=progress.step,
                total_steps=progress.total_steps,
                loss=progress.loss,
                detail=again + progress.detail,
                epochs=progress.epoch,
            )

        if plan.examples:
            outcome = train_job(job, settings, self.base_folder, self.device, staging, report, plan)
        else:
            report(Progress(detail="no live key left: an untrained adapter replaces the served"))
            outcome = untrained_adapter(plan, settings, self.base_folder, self.device, staging)
        last = outcome.after.line() if outcome.after else ""
        keys = outcome.learnt_keys
        if not outcome.promoted:
            self.ledger.finish(
                job_id,
                succeeded=False,
                detail=f"{again}refused by the guard after {len(outcome.history)} epochs: {last}",
                figures=figures(outcome),
                trained_keys=[],
                error=outcome.error,
                checks=_comes_back(outcome.checked),
            )
            return
        name, path = self.versions.promote(staging)
        ran = len(outcome.history)
        chosen = outcome.after.epoch if outcome.after else ran
        which = f"after {ran} epochs" if chosen == ran else f"epoch {chosen} of {ran}"
        if not plan.examples:
            which = "untrained (no live key left to train)"
        began = f"continued from {plan.continued_from}" if plan.continued_from else "from base"
        detail = f"{again}promoted {name} {which} ({plan.kind}, {began}): {last}"
        if len(keys) < len(learn):
            detail += f"; {len(learn) - len(keys)} not learnt, returned"
        if self.notify_scorer is not None:
            problem = self.notify_scorer(str(path), name)
            detail += (
                f"; the Scorer was not told: {problem}" if problem else "; the Scorer loaded it"
            )
        self.ledger.finish(
            job_id,
            succeeded=True,
            detail=detail,
            figures=figures(outcome),
            trained_keys=keys,
            adapter=name,
            adapter_path=str(path),
            checks=_comes_back(outcome.checked),
            consolidate_because=drift_reason(
                plan.kind, outcome.start_drift, settings.guard.max_drift
            ),
        )


def _comes_back(checked: list[Checked]) -> dict[str, bool]:
    return {c.known.key: c.now for c in checked}
