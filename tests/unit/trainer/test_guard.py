"""The forgetting guard's decision on measured figures."""

from __future__ import annotations

from trainer_service.guard import Course, EpochFigures, GuardSettings, Step, Verdict, judge, refusal

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


def _stating(epoch: int, stated: int, generic: float = -0.02) -> EpochFigures:
    return EpochFigures(epoch, 0.05, 4, 4, generic, stated=stated, statements=4)


def test_holds_a_learnt_epoch_while_memory_statements_are_missing() -> None:
    assert judge(_stating(4, 2), LIMITS, last_epoch=False) is Verdict.HOLD
    assert judge(_stating(5, 4), LIMITS, last_epoch=False) is Verdict.PROMOTE


def test_statements_never_fail_a_job_at_its_last_epoch() -> None:
    assert judge(_stating(8, 1), LIMITS, last_epoch=True) is Verdict.PROMOTE


def test_statements_do_not_excuse_forgetting() -> None:
    assert judge(_stating(4, 4, generic=-0.3), LIMITS, last_epoch=False) is Verdict.FAIL


def test_the_figures_line_shows_statements_only_when_trained() -> None:
    assert "memories 2/4" in _stating(1, 2).line()
    assert "memories" not in _epoch(1, 0.05, 4, 0.0).line()


def _course(max_epochs: int = 6) -> Course:
    return Course(LIMITS, max_epochs)


def test_a_course_promotes_the_first_epoch_that_meets_everything() -> None:
    course = _course()
    assert course.after(_epoch(1, 0.5, 0, 0.1)) is Step.GO_ON
    assert course.after(learnt := _epoch(2, 0.05, 4, 0.0)) is Step.PROMOTE
    assert course.promoted is learnt


def test_a_held_epoch_is_promoted_when_a_later_one_forgets_too_much() -> None:
    course = _course()
    assert course.after(held := _stating(3, 1)) is Step.HOLD
    assert course.after(_stating(4, 3)) is Step.HOLD  # newer, still short: held instead
    assert course.after(_stating(5, 4, generic=-0.4)) is Step.PROMOTE_HELD
    assert course.promoted is not None and course.promoted.epoch == 4
    assert course.promoted is not held


def test_a_held_epoch_gives_way_to_one_that_states_every_memory() -> None:
    course = _course()
    assert course.after(_stating(3, 1)) is Step.HOLD
    assert course.after(done := _stating(4, 4)) is Step.PROMOTE
    assert course.promoted is done


def test_a_held_epoch_is_promoted_when_the_epochs_run_out_unlearnt() -> None:
    course = _course(max_epochs=4)
    assert course.after(_stating(3, 1)) is Step.HOLD
    assert course.after(_epoch(4, 0.3, 3, 0.0)) is Step.PROMOTE_HELD


def test_forgetting_backs_off_a_bounded_number_of_times_then_fails() -> None:
    course = Course(LIMITS, 10, max_backtracks=2)
    assert course.after(_epoch(1, 0.5, 0, 0.0)) is Step.GO_ON
    assert course.after(_epoch(2, 0.3, 1, -0.5)) is Step.BACK_OFF
    assert course.after(_epoch(3, 0.3, 1, -0.5)) is Step.BACK_OFF
    assert course.after(_epoch(4, 0.3, 1, -0.5)) is Step.FAIL
    assert course.promoted is None


def test_forgetting_in_the_first_epoch_has_nothing_to_go_back_to() -> None:
    assert _course().after(_epoch(1, 0.3, 1, -0.5)) is Step.FAIL


def test_an_unguarded_course_trains_every_epoch_and_promotes_the_last() -> None:
    course = Course(LIMITS, 2, guarded=False)
    assert course.after(_epoch(1, 0.05, 4, -3.0)) is Step.GO_ON
    assert course.after(last := _epoch(2, 0.05, 4, -3.0)) is Step.PROMOTE
    assert course.promoted is last
