"""The forgetting guard's decisions on measured figures: which epoch a job promotes, and
which of its replies that epoch learnt."""

from __future__ import annotations

from trainer_service.guard import Course, EpochFigures, GuardSettings, Step, forgot, refusal

LIMITS = GuardSettings(target_divergence=0.1, max_drift=0.1, min_retention=0.98)
# The same, an epoch that lost earlier facts backing off like any forgetting.
BACKING = GuardSettings(
    target_divergence=0.1, max_drift=0.1, min_retention=0.98, back_off_on_lost_facts=True
)


def _epoch(
    epoch: int, learnt: str, drift: float = 0.02, kept: int | None = 100, divergence: float = 0.3
) -> EpochFigures:
    """`learnt` per reply: "+" learnt, "-" not ("+-+": the first and last of three)."""
    flags = tuple(c == "+" for c in learnt)
    return EpochFigures(epoch, divergence, flags, 0.0, drift, kept=kept, known=100)


def _course(max_epochs: int = 6) -> Course:
    return Course(LIMITS, max_epochs)


def test_promotes_at_once_when_every_reply_is_learnt() -> None:
    course = _course()
    assert course.after(_epoch(1, "--", kept=None)) is Step.GO_ON
    assert course.after(done := _epoch(2, "++")) is Step.PROMOTE
    assert course.promoted is done


def test_keeps_the_best_epoch_and_promotes_it_when_the_epochs_run_out() -> None:
    course = _course(max_epochs=4)
    assert course.after(_epoch(1, "+--")) is Step.BEST
    assert course.after(best := _epoch(2, "++-")) is Step.BEST
    # Not better than the best: retention is not even measured, and it stays the best.
    assert course.after(_epoch(3, "+-+", kept=None)) is Step.GO_ON
    assert course.after(_epoch(4, "-+-", kept=None)) is Step.PROMOTE_BEST
    assert course.promoted is best


def test_one_unlearnable_reply_does_not_fail_the_others() -> None:
    course = _course(max_epochs=3)
    course.after(_epoch(1, "+-"))
    course.after(_epoch(2, "+-", kept=None))
    assert course.after(_epoch(3, "+-", kept=None)) is Step.PROMOTE_BEST
    assert course.promoted is not None and course.promoted.learnt == (True, False)


def test_a_job_stops_when_the_best_epoch_is_not_bettered_for_a_while() -> None:
    course = Course(LIMITS, 16, patience=2)
    course.after(best := _epoch(1, "+-"))
    assert course.after(_epoch(2, "+-", kept=None)) is Step.GO_ON
    assert course.after(_epoch(3, "+-", kept=None)) is Step.PROMOTE_BEST
    assert course.promoted is best


def _slow(epoch: int, learnt: str, to_go: float) -> EpochFigures:
    figures = _epoch(epoch, learnt, kept=None if epoch > 1 else 100)
    return EpochFigures(**{**figures.__dict__, "to_go": to_go})


def test_patience_counts_from_the_last_epoch_that_brought_the_rest_closer() -> None:
    # A rebuild from the base model, as measured (design §13): one fact back at epoch 1,
    # then none more for four epochs while the others' divergence kept falling.
    course = Course(LIMITS, 16, patience=2)
    assert course.after(_slow(1, "+--", 0.80)) is Step.BEST
    assert course.after(_slow(2, "+--", 0.60)) is Step.GO_ON  # 25% closer
    assert course.after(_slow(3, "+--", 0.45)) is Step.GO_ON
    assert course.after(_slow(4, "+--", 0.44)) is Step.GO_ON  # 2% is no progress
    assert course.after(_slow(5, "+--", 0.43)) is Step.PROMOTE_BEST  # 2 epochs since epoch 3
    assert course.promoted is not None and course.promoted.epoch == 1


def test_a_fall_is_measured_against_the_lowest_so_far_not_the_last_epoch() -> None:
    course = Course(LIMITS, 16, patience=2)
    course.after(_slow(1, "+-", 0.50))
    assert course.after(_slow(2, "+-", 0.90)) is Step.GO_ON  # further away
    # Back to 0.47: 6% under the lowest (0.50), not progress, though 48% under the last.
    assert course.after(_slow(3, "+-", 0.47)) is Step.PROMOTE_BEST


def test_a_job_that_learnt_nothing_fails() -> None:
    course = _course(max_epochs=2)
    assert course.after(_epoch(1, "--", kept=None)) is Step.GO_ON
    assert course.after(_epoch(2, "--", kept=None)) is Step.FAIL
    assert course.promoted is None


def test_retention_is_measured_only_where_an_epoch_would_become_the_best() -> None:
    course = _course()
    assert not course.worth_retention(_epoch(1, "--", kept=None))
    assert course.worth_retention(_epoch(1, "+-", kept=None))
    assert not course.worth_retention(_epoch(1, "+-", drift=0.5, kept=None))  # forgot anyway
    course.after(_epoch(1, "+-"))
    assert not course.worth_retention(_epoch(2, "-+", kept=None))
    assert course.worth_retention(_epoch(2, "++", kept=None))


def test_a_learnt_epoch_that_lost_general_answers_is_not_promoted() -> None:
    assert forgot(_epoch(2, "++", kept=97), LIMITS)  # 97% < 98%
    assert not forgot(_epoch(2, "++", kept=98), LIMITS)
    course = _course()
    course.after(_epoch(1, "--", kept=None))
    assert course.after(_epoch(2, "++", kept=90)) is Step.BACK_OFF
    assert course.promoted is None


def test_drift_above_the_floor_backs_off_a_bounded_number_of_times() -> None:
    course = Course(LIMITS, 10, max_backtracks=2)
    assert course.after(_epoch(1, "--", kept=None)) is Step.GO_ON
    assert course.after(_epoch(2, "+-", drift=0.3)) is Step.BACK_OFF
    assert course.after(_epoch(3, "+-", drift=0.3)) is Step.BACK_OFF
    assert course.after(_epoch(4, "+-", drift=0.3)) is Step.FAIL


def test_forgetting_after_a_best_epoch_promotes_that_epoch() -> None:
    course = Course(LIMITS, 10, max_backtracks=0)
    course.after(best := _epoch(1, "+-"))
    assert course.after(_epoch(2, "++", drift=0.4)) is Step.PROMOTE_BEST
    assert course.promoted is best


def test_forgetting_in_the_first_epoch_goes_back_to_the_untrained_adapter() -> None:
    assert _course().after(_epoch(1, "+", drift=0.5)) is Step.BACK_OFF
    assert Course(LIMITS, 6, good=False).after(_epoch(1, "+", drift=0.5)) is Step.FAIL


def test_an_unguarded_course_trains_every_epoch_and_promotes_the_last() -> None:
    course = Course(LIMITS, 2, guarded=False)
    assert course.after(_epoch(1, "-", drift=3.0)) is Step.GO_ON
    assert course.after(last := _epoch(2, "-", drift=3.0)) is Step.PROMOTE
    assert course.promoted is last


def test_the_line_and_the_refusal_name_the_figures() -> None:
    assert _epoch(3, "+-", drift=0.0412, kept=99).line() == (
        "learnt 1/2, divergence 0.30, drift 0.041, general 99/100"
    )
    history = [_epoch(1, "--", kept=None), _epoch(2, "--", drift=0.5, kept=None)]
    assert refusal(history, LIMITS) == (
        "guard: no epoch learnt a reply (its fact words back without memories, divergence "
        "< 0.1) while drift stayed at most 0.1, 98% of the general questions stayed right and "
        "at most 0 earlier facts were lost; closest, epoch 1: learnt 0/2, divergence 0.30, "
        "drift 0.020"
    )


def test_an_epoch_that_lost_an_earlier_fact_forgot_too_much_and_backs_off() -> None:
    from dataclasses import replace

    course = Course(BACKING, 6)
    lost = replace(_epoch(1, "++"), lost=1)
    assert forgot(lost, LIMITS)
    assert "lost facts 1" in lost.line()
    # The same epoch without a lost fact would have promoted at once.
    assert course.after(lost) is Step.BACK_OFF and course.promoted is None
    assert course.after(kept := replace(_epoch(2, "++"), lost=0)) is Step.PROMOTE
    assert course.promoted is kept


def test_max_lost_facts_sets_how_many_earlier_facts_an_epoch_may_lose() -> None:
    from dataclasses import replace

    lenient = GuardSettings(target_divergence=0.1, max_drift=0.1, min_retention=0.98,
                            max_lost_facts=2)  # fmt: skip
    assert not forgot(replace(_epoch(1, "+"), lost=2), lenient)
    assert forgot(replace(_epoch(1, "+"), lost=3), lenient)
    # Not measured (an epoch that would not become the best) is not a loss.
    assert not forgot(replace(_epoch(1, "+", kept=None), lost=None), LIMITS)


def test_a_course_that_keeps_losing_facts_promotes_nothing() -> None:
    from dataclasses import replace

    course = Course(BACKING, 5, max_backtracks=2)
    steps = [course.after(replace(_epoch(e, "+"), lost=1)) for e in (1, 2, 3)]
    assert steps == [Step.BACK_OFF, Step.BACK_OFF, Step.FAIL] and course.promoted is None


def test_trained_on_past_lost_facts_an_epoch_is_held_neither_promoted_nor_kept() -> None:
    from dataclasses import replace

    held = replace(LIMITS, back_off_on_lost_facts=False)
    course = Course(held, 6, max_backtracks=1)
    assert course.after(best := replace(_epoch(1, "+-"), lost=0)) is Step.BEST
    # Lost an earlier fact: no back-off (none is spent), not the best, training goes on.
    assert course.after(replace(_epoch(2, "++"), lost=1)) is Step.HOLD
    assert course.backtracks == 0 and course.best is best
    # The next epoch that brings it back promotes.
    assert course.after(done := replace(_epoch(3, "++"), lost=0)) is Step.PROMOTE
    assert course.promoted is done
    # Drift is still forgetting: it backs off even with lost facts held.
    other = Course(held, 6)
    assert other.after(replace(_epoch(1, "++", drift=0.5), lost=1)) is Step.BACK_OFF
    # Held on the last epoch, the best one is promoted.
    last = Course(held, 2)
    assert last.after(best := replace(_epoch(1, "+-"), lost=0)) is Step.BEST
    assert last.after(replace(_epoch(2, "++"), lost=2)) is Step.PROMOTE_BEST
    assert last.promoted is best


def test_holding_lost_facts_still_ends_a_job_that_stops_moving() -> None:
    from dataclasses import replace

    course = Course(replace(LIMITS, back_off_on_lost_facts=False), 16, patience=2)
    assert course.after(replace(_epoch(1, "+-"), lost=0)) is Step.BEST
    assert course.after(replace(_epoch(2, "++"), lost=1)) is Step.HOLD
    # Two epochs after the best and nothing came closer: it ends with the best.
    assert course.after(replace(_epoch(3, "++"), lost=1)) is Step.PROMOTE_BEST


def test_a_held_course_whose_every_epoch_loses_facts_promotes_nothing() -> None:
    from dataclasses import replace

    course = Course(LIMITS, 3)  # the default: lost facts are held, not backed off
    assert not LIMITS.back_off_on_lost_facts
    steps = [course.after(replace(_epoch(e, "++"), lost=1)) for e in (1, 2, 3)]
    assert steps == [Step.HOLD, Step.HOLD, Step.FAIL]
    assert course.promoted is None and course.best is None
