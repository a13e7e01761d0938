"""The scoring batch (`ftreview.report.batch`, drawn by the screen and the CLI) on plain
values: many scoring runs folded into one progress line and one summary. Time is an
argument, so every figure is exact."""

from __future__ import annotations

import pytest
from ftreview.report.batch import BatchTracker, ScoringBatch


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.2, "1 s"),  # never "0 s"
        (59.4, "59 s"),
        (60, "1 min 00 s"),
        (125, "2 min 05 s"),
        (3599, "59 min 59 s"),
        (3725, "1 h 2 min"),
    ],
)
def test_a_duration_reads_in_seconds_minutes_or_hours(seconds: float, shown: str) -> None:
    batch = ScoringBatch(started_at=100.0)
    assert batch.summary(100.0 + seconds) == f"scored 0 conversations in {shown} · 0 new candidates"


def test_the_line_counts_runs_and_new_candidates_and_shows_no_pace_before_one_ends() -> None:
    tracker = BatchTracker()
    tracker.started("a", now=0.0)
    tracker.started("b", now=1.0)
    tracker.started("a", now=2.0)  # the same run seen again: still two
    assert tracker.line(now=5.0) == "scoring 0/2 · 0 new candidates"
    assert tracker.ended("a", failed=False, now=6.0, new_candidates=1) is None
    assert tracker.line(now=6.0) == "scoring 1/2 · 1 new candidate · ~6 s left"


def test_the_time_left_is_the_pace_so_far_times_what_is_left() -> None:
    tracker = BatchTracker()
    for run in ("a", "b", "c"):
        tracker.started(run, now=0.0)
    assert tracker.ended("a", failed=False, now=10.0) is None
    # One of three done in 10 s: two more take ~20 s.
    assert tracker.line(now=10.0) == "scoring 1/3 · 0 new candidates · ~20 s left"
    # Half of "b" done as well: 1.5 done in 15 s, 1.5 left.
    tracker.progress("b", done=5, total=10, now=15.0)
    assert tracker.line(now=15.0) == "scoring 1/3 · 0 new candidates · ~15 s left"
    # A progress event past its total counts its run as done, never more: 2.5 done, not 2.7.
    tracker.progress("c", done=12, total=10, now=15.0)
    assert tracker.line(now=15.0) == "scoring 1/3 · 0 new candidates · ~3 s left"


def test_a_batch_that_keeps_growing_stays_one_batch() -> None:
    tracker = BatchTracker()
    tracker.started("a", now=0.0)
    tracker.started("b", now=0.0)
    assert tracker.ended("a", failed=False, now=1.0) is None  # "b" is still running
    tracker.started("c", now=2.0)  # a file ingested later joins it
    assert tracker.line(now=2.0) == "scoring 1/3 · 0 new candidates · ~4 s left"


def test_the_last_end_gives_the_summary_with_every_runs_own_count() -> None:
    tracker = BatchTracker()
    tracker.started("a", now=0.0)
    tracker.started("b", now=0.0)
    assert tracker.ended("a", failed=False, now=30.0, new_candidates=3) is None
    summary = tracker.ended("b", failed=True, now=71.0, new_candidates=0)
    assert summary == ("scored 2 conversations in 1 min 11 s · 3 new candidates · 1 failed")
    assert tracker.batch is None and tracker.line(now=72.0) is None
    assert tracker.ended("b", failed=False, now=73.0) is None  # reported once


def test_events_outside_a_batch_are_ignored() -> None:
    tracker = BatchTracker()
    assert tracker.ended("never-started", failed=True, now=1.0, new_candidates=4) is None
    tracker.started("a", now=2.0)
    assert tracker.ended("other", failed=True, now=3.0) is None
    assert tracker.line(now=3.0) == "scoring 0/1 · 0 new candidates"


def test_a_resync_starts_what_runs_and_drops_what_ended_unseen_silently() -> None:
    tracker = BatchTracker()
    tracker.resync({"a", "b"}, now=0.0)  # reconnected to two runs in progress
    assert tracker.line(now=0.0) == "scoring 0/2 · 0 new candidates"
    tracker.resync({"b", "c"}, now=4.0)  # "a" ended while disconnected; "c" began
    assert tracker.line(now=4.0) == "scoring 1/3 · 0 new candidates · ~8 s left"
    tracker.resync(set(), now=5.0)  # everything ended unseen: no summary to give
    assert tracker.batch is None and tracker.line(now=5.0) is None
    tracker.resync(set(), now=6.0)
    assert tracker.batch is None


def test_a_planned_batch_waits_for_every_announced_run_and_takes_a_failure_hint() -> None:
    """The CLI announces its ingests before their activities exist: a run that ends before
    the next one starts does not end the batch."""
    tracker = BatchTracker(failure_hint=" (see the log)")
    tracker.plan(3, now=0.0)
    assert tracker.line(now=0.0) == "scoring 0/3 · 0 new candidates"
    tracker.started("a", now=0.0)
    assert tracker.ended("a", failed=False, now=2.0, new_candidates=2) is None  # 1 of 3
    tracker.plan(1, now=2.0)  # `follow` adds an ingest to the running batch
    for run in ("b", "c"):
        tracker.started(run, now=3.0)
        assert tracker.ended(run, failed=run == "c", now=4.0) is None
    tracker.started("d", now=4.0)
    assert tracker.ended("d", failed=False, now=8.0, new_candidates=1) == (
        "scored 4 conversations in 8 s · 3 new candidates · 1 failed (see the log)"
    )
