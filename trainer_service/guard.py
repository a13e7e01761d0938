"""The forgetting guard: which epoch, if any, may be promoted.

Invariant: an epoch is promoted only when, measured after it, (a) the mean divergence of the
job's replies is below `target_divergence`, (r) every one of them is reproduced greedily
without memories, and (b) the mean per-token log-likelihood change of the generic held-out
replies (without memories, against the base model) is at least `-max_forgetting`. Training
stops at the first epoch that meets (a) and (r): training further only forgets more. An
epoch that fell below the floor (b) is judged FAIL; the job (`Course`) may then go back to
the last epoch that kept (b) and continue with half the learning rate (a bounded number of
times), since one epoch can step over the narrow window where all three hold.
When no epoch qualifies the job fails with the best epoch's figures, and nothing is
promoted.

Memory statements (`knowledge.py`), when a job trains them, are a softer aim: an epoch that
meets (a), (r) and (b) but does not yet state every memory is HELD (promotable, kept aside)
and training goes on; the first later epoch that meets all of it is promoted instead, and if
none does (the last epoch, or (b) broken) the held epoch is promoted. A job never fails for
its statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class GuardSettings:
    target_divergence: float = 0.1
    max_forgetting: float = 0.1


@dataclass(frozen=True)
class EpochFigures:
    epoch: int
    divergence: float
    recalled: int
    replies: int
    generic: float
    # Memory statements the model gives when asked about their subject, of those trained.
    stated: int = 0
    statements: int = 0

    def line(self) -> str:
        said = f", memories {self.stated}/{self.statements}" if self.statements else ""
        return (
            f"divergence {self.divergence:.2f}, recall {self.recalled}/{self.replies}{said}, "
            f"generic {self.generic:+.2f}"
        )


class Verdict(Enum):
    CONTINUE = "continue"
    PROMOTE = "promote"
    # Promotable, but the memory statements are not all given yet: keep it and go on.
    HOLD = "hold"
    FAIL = "fail"


def _learnt(figures: EpochFigures, settings: GuardSettings) -> bool:
    return figures.divergence < settings.target_divergence and figures.recalled == figures.replies


def _kept_generic(figures: EpochFigures, settings: GuardSettings) -> bool:
    return figures.generic >= -settings.max_forgetting


def judge(figures: EpochFigures, settings: GuardSettings, last_epoch: bool) -> Verdict:
    if _learnt(figures, settings):
        if not _kept_generic(figures, settings):
            return Verdict.FAIL
        stated = figures.stated == figures.statements
        return Verdict.PROMOTE if stated or last_epoch else Verdict.HOLD
    if not _kept_generic(figures, settings) or last_epoch:
        return Verdict.FAIL
    return Verdict.CONTINUE


def best(history: list[EpochFigures], settings: GuardSettings) -> EpochFigures:
    """The epoch that came closest: generic kept first, then recall, then divergence."""
    return max(
        history,
        key=lambda f: (_kept_generic(f, settings), f.recalled, -f.divergence, -f.epoch),
    )


def refusal(history: list[EpochFigures], settings: GuardSettings) -> str:
    replies = history[-1].replies
    closest = best(history, settings)
    return (
        f"guard: no epoch reached divergence < {settings.target_divergence:g} with recall "
        f"{replies}/{replies} while generic log-likelihood stayed above "
        f"{-settings.max_forgetting:g}; best epoch {closest.epoch}: {closest.line()}"
    )


class Step(Enum):
    """What a job does after an epoch."""

    GO_ON = "go on"  # train another epoch; these weights are the last good ones
    HOLD = "hold"  # promotable: keep these weights aside and train on
    BACK_OFF = "back off"  # forgot too much: back to the last good weights, half the step
    PROMOTE = "promote"  # stop and promote the model as it is
    PROMOTE_HELD = "promote held"  # stop, put the held weights back and promote them
    FAIL = "fail"  # stop; nothing is promoted

    @property
    def stops(self) -> bool:
        return self in (Step.PROMOTE, Step.PROMOTE_HELD, Step.FAIL)


@dataclass
class Course:
    """The guard over a whole job: after each epoch, what to do, given the epochs before.

    `guarded=False` (measurements only) trains every epoch and promotes the last.
    """

    settings: GuardSettings
    max_epochs: int
    guarded: bool = True
    # How often a job may go back one epoch and halve its learning rate when an epoch forgot
    # too much (each costs an epoch of the job's budget).
    max_backtracks: int = 3
    backtracks: int = 0
    good: bool = False  # a good epoch's weights exist to go back to
    held: EpochFigures | None = None
    promoted: EpochFigures | None = None

    def after(self, figures: EpochFigures) -> Step:
        step = self._step(figures)
        if step in (Step.GO_ON, Step.HOLD):
            self.good = True
        if step is Step.HOLD:
            self.held = figures
        if step is Step.BACK_OFF:
            self.backtracks += 1
        if step is Step.PROMOTE:
            self.promoted = figures
        if step is Step.PROMOTE_HELD:
            self.promoted = self.held
        return step

    def _step(self, figures: EpochFigures) -> Step:
        last = figures.epoch >= self.max_epochs
        if not self.guarded:
            return Step.PROMOTE if last else Step.GO_ON
        verdict = judge(figures, self.settings, last)
        if verdict is not Verdict.FAIL:
            return {
                Verdict.CONTINUE: Step.GO_ON,
                Verdict.HOLD: Step.HOLD,
                Verdict.PROMOTE: Step.PROMOTE,
            }[verdict]
        if self.held is not None:
            return Step.PROMOTE_HELD
        # One epoch can step over the window where the guard may promote: go back to the
        # last epoch that kept generic replies and take smaller steps from there.
        forgot = not _kept_generic(figures, self.settings)
        if forgot and not last and self.good and self.backtracks < self.max_backtracks:
            return Step.BACK_OFF
        return Step.FAIL
