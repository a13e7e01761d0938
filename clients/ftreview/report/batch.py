"""One progress line for many scoring runs: "scoring 23/50 · 41 new candidates · ~30 s left".

Ingesting fifty conversations starts fifty "score" activities. Rather than one line and one
notification each, the review screen and the CLI (`score`, `follow`) fold every scoring
activity that starts while another is still running into one batch; this is the one model
of it both draw. The invariants:

- a batch begins with the first scoring activity seen running (or announced: `plan`, the
  CLI knows how many it is about to ingest) and ends when none is left; its total is every
  scoring activity it has seen or was told of, so a batch that keeps growing (files
  ingested one after another) is still one batch;
- the count of new candidates is the sum of the finished runs' own counts (the typed result
  of each ended scoring activity, `ActivityResult.new_candidates`): the Review counts them
  when it stores the run, so the summary is exact the moment the last run ends, with no
  wait for the candidate stream;
- the time left is the batch's pace so far (elapsed per finished run) times what is left,
  shown only once a run has finished (before that there is no pace to go by);
- its end is reported once, as one summary.

Plain Python; time comes in as an argument so the arithmetic is testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCORING_KIND = "score"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes, rest = divmod(round(seconds), 60)
    return (
        f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
    )


@dataclass
class ScoringBatch:
    started_at: float
    running: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    failed: int = 0
    new_candidates: int = 0
    # Runs announced before their activities are known (the CLI's ingests).
    planned: int = 0
    partial: dict[str, float] = field(default_factory=dict)
    """Per running activity, the share of it done (from its progress events)."""

    @property
    def total(self) -> int:
        return max(self.planned, len(self.running) + len(self.finished))

    @property
    def done(self) -> float:
        """Finished runs, and the share done of the running ones."""
        return len(self.finished) + sum(self.partial.values())

    def line(self, now: float) -> str:
        parts = [f"scoring {len(self.finished)}/{self.total}"]
        noun = "candidate" if self.new_candidates == 1 else "candidates"
        parts.append(f"{self.new_candidates} new {noun}")
        done = self.done
        if self.finished and done > 0:
            left = (now - self.started_at) / done * (self.total - done)
            parts.append(f"~{duration(left)} left")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return " · ".join(parts)

    def summary(self, now: float, failure_hint: str = "") -> str:
        count = len(self.finished)
        noun = "conversation" if count == 1 else "conversations"
        found = "candidate" if self.new_candidates == 1 else "candidates"
        text = f"scored {count} {noun} in {duration(now - self.started_at)}"
        text += f" · {self.new_candidates} new {found}"
        if self.failed:
            text += f" · {self.failed} failed{failure_hint}"
        return text


@dataclass
class BatchTracker:
    """The current scoring batch, if any, fed with the activity stream's events.
    `failure_hint` follows the count of failed runs in the summary."""

    batch: ScoringBatch | None = None
    failure_hint: str = ""

    def plan(self, runs: int, now: float) -> None:
        """`runs` more runs are about to start; the first starts a batch."""
        if self.batch is None:
            self.batch = ScoringBatch(started_at=now)
        self.batch.planned = self.batch.total + runs

    def started(self, activity_id: str, now: float) -> None:
        if self.batch is None:
            self.batch = ScoringBatch(started_at=now)
        self.batch.running.add(activity_id)

    def progress(self, activity_id: str, done: int, total: int, now: float) -> None:
        self.started(activity_id, now)
        if self.batch is not None and total > 0:
            self.batch.partial[activity_id] = min(1.0, done / total)

    def ended(
        self, activity_id: str, failed: bool, now: float, new_candidates: int = 0
    ) -> str | None:
        """Record an end and the candidates the run added; the batch's summary when it was
        the last one running."""
        batch = self.batch
        if batch is None or activity_id not in batch.running:
            return None
        batch.running.discard(activity_id)
        batch.partial.pop(activity_id, None)
        batch.finished.add(activity_id)
        batch.failed += failed
        batch.new_candidates += new_candidates
        if batch.running or len(batch.finished) < batch.planned:
            return None
        self.batch = None
        return batch.summary(now, self.failure_hint)

    def resync(self, running_ids: set[str], now: float) -> None:
        """After a reconnect: scoring that ended unseen leaves the batch silently."""
        if self.batch is None:
            for activity_id in running_ids:
                self.started(activity_id, now)
            return
        for activity_id in self.batch.running - running_ids:
            self.batch.running.discard(activity_id)
            self.batch.finished.add(activity_id)
        for activity_id in running_ids:
            self.batch.running.add(activity_id)
        if not self.batch.running:
            self.batch = None

    def line(self, now: float) -> str | None:
        return None if self.batch is None else self.batch.line(now)
