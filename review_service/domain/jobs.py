"""A fine-tuning job as the Review keeps it: its state, what it learnt, and its figures.

Invariants:
- the trainer's figures (divergence before and after, epochs, drift, general retention,
  each reply's proof) are relayed, never read: `figures` holds them as the wire
  `TrainingJob` message's bytes (docs/design.md §12). What the Review decides with (the
  state, the adapter, which replies were learnt and why not) is typed here;
- a job says which of its replies it learnt (`TrainingJob.not_learnt`): the trainer's
  per-example `learnt` where it reports one, else every reply of a succeeded job and none
  of a failed one;
- a job's retention checks (`FactCheck`: does an earlier fact still come back?) are read
  once, at its end, into the ledger (`comes_back`); they are not kept with the job;
- a job's state only moves forward (queued -> running -> succeeded | failed): a stale answer
  from a replica that lags is ignored (`TrainingJob.merged`).
"""

from __future__ import annotations

import dataclasses
import enum


class JobState(enum.IntEnum):
    """Values match ftreview.v1.TrainingJobState."""

    UNSPECIFIED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4

    @property
    def ended(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


@dataclasses.dataclass(frozen=True)
class ExampleResult:
    """Whether the promoted adapter learnt one trained reply (None: the trainer does not
    say), and why not. Its measured proof travels in `TrainingJob.figures`."""

    idempotency_key: str
    learnt: bool | None = None
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class FactCheck:
    """Whether an earlier fact still comes back on the job's model, asked cold (its answer
    and fact travel in `TrainingJob.figures`); `retracted`: it should not any more."""

    idempotency_key: str
    comes_back: bool
    retracted: bool = False


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    id: str
    destination: str
    state: JobState = JobState.QUEUED
    examples: int = 0
    step: int = 0
    total_steps: int = 0
    detail: str = ""
    adapter: str = ""
    adapter_path: str = ""
    # The trainer's figures: a serialized `ftreview.v1.TrainingJob` carrying only them.
    figures: bytes = b""
    error: str = ""
    created_at_ns: int = 0
    ended_at_ns: int = 0
    per_example: tuple[ExampleResult, ...] = ()
    # The earlier facts the trainer checked on the job's model (an older trainer: none).
    retention: tuple[FactCheck, ...] = ()
    # A consolidation the trainer queued when this job ended (drift, or a key retracted
    # while it ran): the Review follows it too ("" when none).
    queued_next: str = ""
    # The Review's own bookkeeping, never from the trainer: why the job is not followed
    # ("" while it is), and when its trained replies were re-scored on its adapter (0: not
    # yet). Both survive a restart, so a restart follows or measures only what is left.
    follow_note: str = ""
    measured_at_ns: int = 0

    def not_learnt(self, key: str) -> str | None:
        """Why the ended job did not learn the reply with idempotency key `key`, or None when
        it did. A trainer that reports `learnt` per example is taken at its word (a reply it
        leaves out was not learnt); one that does not has learnt every reply of a succeeded
        job and none of a failed one."""
        if self.state == JobState.FAILED:
            why = self.error or self.detail or "the trainer gave no reason"
            return f"job {self.id} failed: {why}"
        reported = {r.idempotency_key: r for r in self.per_example if r.learnt is not None}
        if not reported:
            return None
        result = reported.get(key)
        if result is None:
            return f"job {self.id} did not learn it: the trainer did not report it"
        if result.learnt:
            return None
        return f"job {self.id} did not learn it: {result.reason or 'the trainer gave no reason'}"

    def merged(self, newer: TrainingJob) -> TrainingJob:
        """`newer` unless it would move the state backwards; the Review's bookkeeping and
        the creation time stay."""
        if newer.state < self.state:
            return self
        return dataclasses.replace(
            newer,
            destination=self.destination,
            examples=newer.examples or self.examples,
            figures=newer.figures or self.figures,
            created_at_ns=self.created_at_ns or newer.created_at_ns,
            ended_at_ns=newer.ended_at_ns or self.ended_at_ns,
            follow_note=self.follow_note,
            measured_at_ns=self.measured_at_ns,
        )


class NotFollowable(Exception):
    """The endpoint has no jobs route (or answers it with something that is not a job): it
    can never say what a job learnt."""


class TrainerSilent(NotFollowable):
    """The jobs route stopped answering (the trainer may be restarting): worth following
    again later, unlike a route that does not exist."""
