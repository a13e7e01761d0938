"""The forgetting guard: which epoch, if any, may be promoted.

Invariant: an epoch is promoted only when, measured after it, (a) the mean divergence of the
job's replies is below `target_divergence`, (r) every one of them is reproduced greedily
without memories, and (b) the mean per-token log-likelihood change of the generic held-out
replies (without memories, against the base model) is at least `-max_forgetting`. Training
stops at the first epoch that meets (a) and (r): training further only forgets more. An
epoch that fell below the floor (b) is judged FAIL; the training loop may then go back to the
last epoch that kept (b) and continue with half the learning rate (`training.py`, a bounded
number of times), since one epoch can step over the narrow window where all three hold.
When no epoch qualifies the job fails with the best epoch's figures, and nothing is
promoted.
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

    def line(self) -> str:
        return (
            f"divergence {self.divergence:.2f}, recall {self.recalled}/{self.replies}, "
            f"generic {self.generic:+.2f}"
        )


class Verdict(Enum):
    CONTINUE = "continue"
    PROMOTE = "promote"
    FAIL = "fail"


def _learnt(figures: EpochFigures, settings: GuardSettings) -> bool:
    return figures.divergence < settings.target_divergence and figures.recalled == figures.replies


def _kept_generic(figures: EpochFigures, settings: GuardSettings) -> bool:
    return figures.generic >= -settings.max_forgetting


def judge(figures: EpochFigures, settings: GuardSettings, last_epoch: bool) -> Verdict:
    if _learnt(figures, settings):
        return Verdict.PROMOTE if _kept_generic(figures, settings) else Verdict.FAIL
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
