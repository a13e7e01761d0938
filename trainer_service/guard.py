"""The forgetting guard: after each epoch, what a job does, and what it may promote.

A reply is *learnt* at an epoch when, asked in its own context without memories, the model's
greedy answer says the reply's fact words (`facts.py`: the words its memories supplied,
read off the base model's per-token divergence), and the reply's divergence (log-likelihood
with memories − without, on the model being trained) is below `target_divergence`.

The model has *forgotten too much* when, on general questions no job trains on
(`general.py`), its drift (mean KL(base ‖ tuned) per token along the base model's answers)
is above `max_drift`, or it answers right fewer than `min_retention` of the questions
the base model answered right, or (a job that continues an adapter, `lasting.py`) more
than `max_lost_facts` of the earlier learnt keys it checks came back before the job and
no longer do.

Invariants:
- a job promotes the epoch that learnt the most replies without forgetting too much (the
  earliest of equals: later epochs only drift further), and marks exactly the replies that
  epoch learnt; a job that learnt none promotes nothing (partial promotion: one reply the
  model cannot learn never fails the others);
- retention costs a generation per known question, so it is measured only on an epoch that
  would become the best, and so are the lost facts (a generation per checked key); drift
  is measured every epoch;
- training stops once every reply is learnt (training further only forgets more), when the
  epochs run out, `patience` epochs after the best one in which neither more replies were
  learnt nor the replies still to learn came closer to the target (`to_go` fell by
  `min_fall` of its lowest; a reply the model cannot learn does not cost the job every
  epoch left, and a job whose replies are still coming closer is not stopped for being
  slow: a rebuild from the base model learns its facts late), or when forgetting persists after
  `max_backtracks` returns to the last good epoch with half the learning rate (one epoch
  can step over a narrow window; before the first good epoch, the last good weights are
  the untrained adapter, which is the base model).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ftreview.core.defaults import (
    DEFAULT_MAX_DRIFT,
    DEFAULT_MIN_RETENTION,
    DEFAULT_TARGET_DIVERGENCE,
)


@dataclass(frozen=True)
class GuardSettings:
    """The guard's limits; the defaults, and why they are what they are, are in
    `ftreview.core.defaults` (`learn.*` of the config file sets them)."""

    # The replies' divergence a job trains down to, nats/token.
    target_divergence: float = DEFAULT_TARGET_DIVERGENCE
    # Mean KL(base ‖ tuned) per token on the general questions, nats (general.py): a
    # pre-screen checked every epoch.
    max_drift: float = DEFAULT_MAX_DRIFT
    # Share of the known general questions still answered right: the limit, checked where
    # an epoch would be promoted, and reported with every job.
    min_retention: float = DEFAULT_MIN_RETENTION
    # Earlier learnt facts (checked keys that came back before the job) an epoch may lose:
    # a fact the user was told the model knows and that it no longer says is forgetting as
    # surely as a general answer, so none by default.
    max_lost_facts: int = 0
    # What an epoch that lost more earlier facts than that (and forgot nothing else) does:
    # True, back off as for any forgetting (the last good weights, half the step); False,
    # it is not promotable and not kept as good weights, but the job trains on from it at
    # the same step (`Step.HOLD`): the replay trains the lost facts again, and a back-off's
    # halved step slows the new facts as well. Chosen on the tuning half's days in a row
    # (bench_accumulation.py --lost, design §13): backing off, day 6 was refused after
    # three back-offs; held, with the replay of 32, every day from 5 to 8 promoted.
    back_off_on_lost_facts: bool = False


@dataclass(frozen=True)
class EpochFigures:
    epoch: int
    # Mean over the job's replies, nats/token.
    divergence: float
    # Per reply of the job, in order: learnt at this epoch.
    learnt: tuple[bool, ...]
    # Mean per-token log-likelihood change of the generic held-out replies (the Review's
    # `held_out`), against the base model: reported, not a limit.
    generic: float
    drift: float
    # General questions still right, of those the base model got right; None: not measured.
    kept: int | None = None
    known: int = 0
    # Checked earlier facts that came back before the job and not now; None: not measured.
    lost: int | None = None
    # How far the replies are from the target, nats/token: the mean over the job's replies
    # of each one's divergence above `target_divergence` (0 for one at or below it), so a
    # reply already close no longer counts. None: not given (the guard then judges
    # progress by learnt replies alone).
    to_go: float | None = None

    @property
    def replies(self) -> int:
        return len(self.learnt)

    @property
    def recalled(self) -> int:
        return sum(self.learnt)

    @property
    def retention(self) -> float | None:
        if self.kept is None:
            return None
        return self.kept / self.known if self.known else 1.0

    def line(self) -> str:
        kept = f", general {self.kept}/{self.known}" if self.kept is not None else ""
        lost = f", lost facts {self.lost}" if self.lost is not None else ""
        to_go = f" ({self.to_go:.2f} to go)" if self.to_go is not None else ""
        return (
            f"learnt {self.recalled}/{self.replies}, divergence {self.divergence:.2f}{to_go}, "
            f"drift {self.drift:.3f}{kept}{lost}"
        )


def forgot(figures: EpochFigures, settings: GuardSettings) -> bool:
    return forgot_general(figures, settings) or lost_facts(figures, settings)


def forgot_general(figures: EpochFigures, settings: GuardSettings) -> bool:
    """Drift or general retention past its limit."""
    retention = figures.retention
    low = retention is not None and retention < settings.min_retention
    return figures.drift > settings.max_drift or low


def lost_facts(figures: EpochFigures, settings: GuardSettings) -> bool:
    return figures.lost is not None and figures.lost > settings.max_lost_facts


class Step(Enum):
    """What a job does after an epoch."""

    GO_ON = "go on"  # train another epoch; these weights are the last good ones
    BEST = "best"  # the best epoch so far: keep its weights, and train on
    BACK_OFF = "back off"  # forgot too much: back to the last good weights, half the step
    HOLD = "hold"  # lost earlier facts only: train on, these weights neither good nor best
    PROMOTE = "promote"  # stop and promote the model as it is (every reply learnt)
    PROMOTE_BEST = "promote best"  # stop, put the best epoch's weights back, promote them
    FAIL = "fail"  # stop; no epoch learnt anything without forgetting: nothing promoted

    @property
    def stops(self) -> bool:
        return self in (Step.PROMOTE, Step.PROMOTE_BEST, Step.FAIL)


@dataclass
class Course:
    """The guard over a whole job: after each epoch, what to do, given the epochs before.

    `guarded=False` (measurements only) trains every epoch and promotes the last.
    """

    settings: GuardSettings
    max_epochs: int
    guarded: bool = True
    max_backtracks: int = 3
    patience: int = 4
    # A fall of `to_go` by at least this share of its lowest value so far is progress.
    min_fall: float = 0.1
    backtracks: int = 0
    # Good weights exist to go back to: the untrained adapter, unless the trainer says not.
    good: bool = True
    best: EpochFigures | None = None
    promoted: EpochFigures | None = None
    # The lowest `to_go` so far, and the last epoch that brought it down by `min_fall`.
    closest: float | None = None
    moved: int = 0

    def worth_retention(self, figures: EpochFigures) -> bool:
        """Whether the trainer should measure retention before `after`: only an epoch that
        would become the best needs it (every epoch, unguarded: measurements for the
        record, as bench/bench_learning.py --calibrate takes them)."""
        if not self.guarded:
            return True
        if figures.drift > self.settings.max_drift or not any(figures.learnt):
            return False
        return self.best is None or figures.recalled > self.best.recalled

    def after(self, figures: EpochFigures) -> Step:
        step = self._step(figures)
        if step in (Step.GO_ON, Step.BEST):
            self.good = True
        if step is Step.BACK_OFF:
            self.backtracks += 1
        if step is Step.PROMOTE:
            self.promoted = figures
        if step is Step.PROMOTE_BEST:
            self.promoted = self.best
        return step

    def _step(self, figures: EpochFigures) -> Step:
        last = figures.epoch >= self.max_epochs
        if not self.guarded:
            return Step.PROMOTE if last else Step.GO_ON
        if self._holds(figures):
            self._progress(figures)
            return self._end() if last or self._stale(figures) else Step.HOLD
        if forgot(figures, self.settings):
            if not last and self.good and self.backtracks < self.max_backtracks:
                return Step.BACK_OFF
            return self._end()
        self._progress(figures)
        improved = self.best is None or figures.recalled > self.best.recalled
        if figures.retention is not None and any(figures.learnt) and improved:
            self.best = figures
            if all(figures.learnt):
                return Step.PROMOTE
            return Step.PROMOTE_BEST if last else Step.BEST
        return self._end() if last or self._stale(figures) else Step.GO_ON

    def _holds(self, figures: EpochFigures) -> bool:
        """Lost earlier facts and forgot nothing else, with the setting to train on."""
        return (
            not self.settings.back_off_on_lost_facts
            and lost_facts(figures, self.settings)
            and not forgot_general(figures, self.settings)
        )

    def _stale(self, figures: EpochFigures) -> bool:
        """`patience` epochs since the best one and since the replies last came closer."""
        return (
            self.best is not None
            and figures.epoch - max(self.best.epoch, self.moved) >= self.patience
        )

    def _progress(self, figures: EpochFigures) -> None:
        """Whether the replies still to learn came closer (`to_go` fell by `min_fall` of
        its lowest so far): patience counts from the later of that epoch and the best."""
        if figures.to_go is None:
            return
        if self.closest is None or figures.to_go < self.closest * (1 - self.min_fall):
            self.moved = figures.epoch
        self.closest = figures.to_go if self.closest is None else min(self.closest, figures.to_go)

    def _end(self) -> Step:
        return Step.PROMOTE_BEST if self.best is not None else Step.FAIL


def refusal(history: list[EpochFigures], settings: GuardSettings) -> str:
    """Why a job promoted nothing, with the epoch that came closest."""
    closest = max(history, key=lambda f: (not forgot(f, settings), f.recalled, -f.divergence))
    return (
        f"guard: no epoch learnt a reply (its fact words back without memories, divergence "
        f"< {settings.target_divergence:g}) while drift stayed at most "
        f"{settings.max_drift:g}, {settings.min_retention:.0%} of the general "
        f"questions stayed right and at most {settings.max_lost_facts} earlier facts were "
        f"lost; closest, epoch {closest.epoch}: {closest.line()}"
    )
