"""The forgetting guard's decision on measured figures."""

from __future__ import annotations

from trainer_service.guard import EpochFigures, GuardSettings, Verdict, judge, refusal

LIMITS = GuardSettings(target_divergence=0.1, max_forgetting=0.1)


def _epoch(epoch: int, divergence: float, recalled: int, generic: float) -> EpochFigures:
    return EpochFigures(epoch, divergence, recalled, 4, generic)


def test_promotes_the_first_epoch_that_learnt_without_forgetting() -> None:
    assert judge(_epoch(3, 0.05, 4, -0.05), LIMITS, last_epoch=False) is Verdict.PROMOTE


def test_goes_on_while_recall_or_divergence_is_short() -> None:
    assert judge(_epoch(1, 0.05, 3, -0.01), LIMITS, last_epoch=False) is Verdict.CONTINUE
    assert judge(_epoch(1, 0.3, 4, -0.01), LIMITS, last_epoch=False) is Verdict.CONTINUE


def test_fails_once_generic_replies_fell_below_the_floor() -> None:
    assert judge(_epoch(2, 0.05, 4, -0.5), LIMITS, last_epoch=False) is Verdict.FAIL
    assert judge(_epoch(2, 0.5, 1, -0.5), LIMITS, last_epoch=False) is Verdict.FAIL


def test_fails_at_the_last_epoch_when_never_learnt() -> None:
    assert judge(_epoch(8, 0.3, 3, -0.02), LIMITS, last_epoch=True) is Verdict.FAIL


def test_the_refusal_names_the_targets_and_the_closest_epoch() -> None:
    history = [_epoch(1, 0.9, 0, -0.01), _epoch(2, 0.08, 2, -0.07), _epoch(3, 0.01, 4, -0.4)]
    assert refusal(history, LIMITS) == (
        "guard: no epoch reached divergence < 0.1 with recall 4/4 while generic "
        "log-likelihood stayed above -0.1; best epoch 2: divergence 0.08, recall 2/4, generic -0.07"
    )
