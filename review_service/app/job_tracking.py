"""Training jobs after a send: followed to their end on the Review's activity stream, their
replies promoted or returned by that end, and the learnt ones re-scored on the adapter the
job promoted (docs/design.md §9, the proof).

Invariants:
- a job's end and what it did to each of its replies (ledger with the adapter, or back to
  approved with the reason: `promotion.ended`) are stored in one transaction;
- an endpoint without the jobs route (`NotFollowable`: 404, 405, 501, or an answer that is
  not a job) can never say what a job learnt: its SENT replies go to the ledger at once and
  the job stays accepted (state queued, `follow_note` says why). One that stops answering
  (`TrainerSilent`) changes nothing: the job stays as last seen, its replies SENT, and it is
  followed again on restart; a job is never failed by the Review;
- a job's state only moves forward and is stored when it changes, so a job not ended when
  the Review stopped, or one ended that still has SENT replies (re-sent into it after its
  end), is followed again when it starts, and a succeeded job whose replies were not
  re-scored yet is re-scored then; one follower per job at a time, and a job handed over
  while it is followed is followed again once that ends;
- re-scoring is a measurement, not a review: it writes `divergence_after` on the job's
  ledger entries and nothing else (no candidate, no latest score), and asks the Scorer for
  those replies only, without attribution.

Progress: activity `train-<job id>` (kind "train") relays the trainer's steps and ends with
the job; on success activity `verify-<job id>` (kind "verify") starts before it ends (a
watcher sees no gap) and relays the Scorer's re-scoring.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from itertools import groupby
from typing import Any

from ftreview.core.activity_hub import Activity

from review_service.app import promotion
from review_service.app.config import LearnConfig
from review_service.app.feed import CandidateEvent
from review_service.app.tasks import Background
from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain.errors import AlreadyExists, NotFound, ReviewError, ScorerFailed
from review_service.domain.jobs import JobState, NotFollowable, TrainerSilent, TrainingJob
from review_service.domain.model import Conversation, TrainedEntry
from review_service.domain.ports import JobSource, Scorer, StoreChange

log = logging.getLogger("review_service")

# How long re-scoring waits for the Scorer (after a restart it may still be loading).
SCORER_READY_TIMEOUT = 120.0

Outcome = tuple[StoreChange | None, list[CandidateEvent], None]


def _model(adapter: str) -> str:
    return f"adapter {adapter}" if adapter else "the base model"


def _replies(n: int) -> str:
    return f"{n} repl{'y' if n == 1 else 'ies'}"


class JobTracking:
    def __init__(
        self,
        writer: Writer,
        source: JobSource,
        scorer: Scorer,
        stored: Callable[[str], Awaitable[Conversation]],
        background: Background,
        load_config: Callable[[], LearnConfig],
    ) -> None:
        self._writer = writer
        self._source = source
        self._scorer = scorer
        self._stored = stored
        self._background = background
        self._load_config = load_config
        self._busy: set[tuple[str, str]] = set()
        # Jobs handed over again while followed (or measured): followed once more after.
        self._again: set[tuple[str, str]] = set()

    def resume(self) -> None:
        """Follow the jobs not ended or with replies still SENT, and measure the succeeded
        ones not measured yet."""
        view = self._writer.view
        for job in sorted(view.jobs.values(), key=lambda j: j.created_at_ns):
            waiting = not job.state.ended or bool(view.job_candidates(job))
            if waiting and not job.follow_note:
                self.follow(job)
            elif job.state == JobState.SUCCEEDED and not job.measured_at_ns:
                self._spawn(job, functools.partial(self._measure_again, job))

    def follow(self, job: TrainingJob) -> None:
        """Follow `job` (already stored) in the background; if it is followed already, once
        more when that ends (replies were added to it meanwhile)."""
        key = (job.destination, job.id)
        if key in self._busy:
            self._again.add(key)
            return
        self._spawn(job, functools.partial(self._follow, key))

    def _spawn(self, job: TrainingJob, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        key = (job.destination, job.id)
        if key in self._busy:
            return
        self._busy.add(key)

        async def run() -> None:
            try:
                await work()
            finally:
                self._busy.discard(key)
            if key in self._again:
                self._again.discard(key)
                stored = self._writer.view.jobs.get(key)
                if stored is not None and self._writer.view.job_candidates(stored):
                    self.follow(stored)

        self._background.spawn(run())

    def _activity(self, kind: str, label: str, job: TrainingJob, total: int = 0) -> Activity:
        try:
            return self._background.start_activity(
                kind, label, f"{kind}-{job.id}", total, job_ids=[job.id]
            )
        except AlreadyExists:  # the same job id at another endpoint, followed in this process
            return self._background.start_activity(
                kind, label, uuid.uuid4().hex, total, job_ids=[job.id]
            )

    # -- following ----------------------------------------------------------------------

    async def _follow(self, key: tuple[str, str]) -> None:
        job = self._writer.view.jobs[key]
        count = len(self._writer.view.job_candidates(job)) or job.examples
        # A job with no replies of its own: the endpoint's consolidation after a retraction.
        label = f"train {_replies(count)}" if count else f"consolidate (job {job.id})"
        activity = self._activity("train", label, job, job.total_steps)
        stored_state = job.state
        activity.progress(0, None, f"accepted by {job.destination} as job {job.id}")
        # A job that ended before replies were re-sent into it: ask it again what it learnt.
        start = dataclasses.replace(job, state=JobState.QUEUED) if job.state.ended else job

        async def update(fresh: TrainingJob) -> None:
            nonlocal stored_state
            if fresh.state != stored_state and not fresh.state.ended:
                await self._store(fresh)  # stored before shown: `jobs()` never lags the stream
                stored_state = fresh.state
            activity.progress(fresh.step, fresh.total_steps, fresh.detail or fresh.state.name)

        try:
            end = await self._source.follow(job.destination, start, update)
        except TrainerSilent as error:
            activity.cancel(
                f"lost job {job.id}: {error}; its replies stay in training and it is followed "
                "again on restart"
            )
            return
        except NotFollowable as error:
            note = f"not followed: {error}"
            moved = await self._writer.mutate(lambda view: promotion.unfollowable(view, job, note))
            activity.succeed(
                f"accepted by {job.destination} as job {job.id}; {note}; "
                f"{_replies(moved)} in the trained ledger (the endpoint cannot say what it learnt)",
                learnt=moved,
            )
            return
        except asyncio.CancelledError:
            activity.cancel("the Review is stopping; the job is followed again when it starts")
            raise
        except Exception as error:
            log.exception("following job %s at %s failed", job.id, job.destination)
            activity.fail(f"following job {job.id} failed: {error!r}; tried again on restart")
            return
        end = dataclasses.replace(end, ended_at_ns=end.ended_at_ns or time.time_ns())
        settled = await self._writer.mutate(lambda view: promotion.ended(view, end))
        aftermath = settled.aftermath()
        if end.state == JobState.FAILED:
            reason = end.error or end.detail or "the trainer gave no reason"
            activity.fail(
                f"job {job.id} failed: {reason}" + (f"; {aftermath}" if aftermath else ""),
                returned=settled.returned,
            )
            return
        verify = self._verify_activity(end)
        adapter = f"adapter {end.adapter}" if end.adapter else "no adapter named"
        line = f"job {job.id}: learnt {settled.learnt} of {settled.total}, {adapter}"
        activity.succeed(
            line + (f"; {aftermath}" if aftermath else ""),
            adapter=end.adapter,
            learnt=settled.learnt,
            returned=settled.returned,
        )
        if end.queued_next:
            await self._follow_next(end)
        await self._measure(end, verify)

    async def _follow_next(self, job: TrainingJob) -> None:
        """Follow the consolidation `job` left queued, as a job of its own."""
        key = (job.destination, job.queued_next)
        if key in self._writer.view.jobs:
            return
        await self._store(
            TrainingJob(job.queued_next, job.destination, created_at_ns=time.time_ns())
        )
        self.follow(self._writer.view.jobs[key])

    async def _store(self, job: TrainingJob) -> None:
        def plan(view: View) -> Outcome:
            current = view.jobs.get((job.destination, job.id))
            fresh = job if current is None else current.merged(job)
            if job.follow_note and not fresh.follow_note:
                fresh = dataclasses.replace(fresh, follow_note=job.follow_note)
            return StoreChange(jobs=[fresh]), [], None

        await self._writer.mutate(plan)

    # -- measuring ----------------------------------------------------------------------

    def _verify_activity(self, job: TrainingJob) -> Activity:
        entries = self._writer.view.job_entries(job)
        label = f"verify {_replies(len(entries))} on adapter {job.adapter or '(unnamed)'}"
        return self._activity("verify", label, job, len(entries))

    async def _measure_again(self, job: TrainingJob) -> None:
        await self._measure(job, self._verify_activity(job))

    async def _measure(self, job: TrainingJob, activity: Activity) -> None:
        """Re-score the job's replies on the Scorer (serving the job's adapter by now) and
        keep each one's divergence as `divergence_after`."""
        entries = self._writer.view.job_entries(job)
        after: dict[int, float] = {}
        missing: list[str] = []
        try:
            config = self._load_config()
            await self._scorer.ready(SCORER_READY_TIMEOUT)
            by_conversation = groupby(
                sorted(entries, key=lambda e: e.conversation_id), lambda e: e.conversation_id
            )
            for cid, group in by_conversation:
                stamps = [e.timestamp_ns for e in group]
                try:
                    conversation = await self._stored(cid)
                except NotFound:
                    missing.append(cid)
                    continue
                after.update(
                    await self._rescore(conversation, stamps, config, activity, job.adapter)
                )
                activity.progress(len(after), len(entries), f"re-scored {cid}")
            await self._writer.mutate(lambda view: _measured(view, job, after))
        except asyncio.CancelledError:
            activity.cancel("the Review is stopping; the replies are re-scored when it starts")
            raise
        except ReviewError as error:
            activity.fail(f"re-scoring on {job.adapter} failed: {error.message}; tried on restart")
            return
        except Exception as error:
            log.exception("re-scoring job %s failed", job.id)
            activity.fail(f"re-scoring on {job.adapter} failed: {error!r}; tried on restart")
            return
        activity.succeed(
            _measured_summary(self._writer.view.job_entries(job), missing), adapter=job.adapter
        )

    async def _rescore(
        self, conversation: Conversation, stamps: list[int], config: LearnConfig,
        activity: Activity, job_adapter: str,
    ) -> dict[int, float]:  # fmt: skip
        request_id = uuid.uuid4().hex
        relay = asyncio.ensure_future(self._relay(request_id, conversation.id, activity))
        try:
            result = await self._scorer.score(
                conversation, config.threshold, [], stamps, request_id, skip_attribution=True
            )
        finally:
            relay.cancel()
        if job_adapter and result.adapter != job_adapter:
            # A score is proof only on the adapter it is about: a Scorer that did not load
            # it (a failed LoadAdapter, an endpoint that never told it) scored another model.
            raise ScorerFailed(
                f"the Scorer scored on {_model(result.adapter)}, not on the job's adapter "
                f"{job_adapter}: it has not loaded it"
            )
        wanted = set(stamps)
        return {r.timestamp_ns: r.divergence for r in result.replies
                if r.scored and r.timestamp_ns in wanted}  # fmt: skip

    async def _relay(self, request_id: str, cid: str, activity: Activity) -> None:
        with contextlib.suppress(Exception):
            async for p in self._scorer.progress(request_id):
                activity.progress(
                    activity.message.done, None, f"{cid}: {p.detail} ({p.done}/{p.total})"
                )


# -- plans (pure functions of the staged view) --------------------------------------------


def _measured(view: View, job: TrainingJob, after: dict[int, float]) -> Outcome:
    updates = [
        dataclasses.replace(view.ledger[ts], divergence_after=d)
        for ts, d in after.items()
        if ts in view.ledger
    ]
    current = view.jobs.get((job.destination, job.id), job)
    done = dataclasses.replace(current, measured_at_ns=time.time_ns())
    return StoreChange(jobs=[done], ledger_updates=updates), [], None


def _measured_summary(entries: list[TrainedEntry], missing: list[str]) -> str:
    pairs = [
        (e.divergence_before, e.divergence_after)
        for e in entries
        if e.divergence_before is not None and e.divergence_after is not None
    ]
    text = f"{_replies(sum(e.divergence_after is not None for e in entries))} re-scored"
    if pairs:
        before = sum(b for b, _ in pairs) / len(pairs)
        after = sum(a for _, a in pairs) / len(pairs)
        text += f": mean divergence {before:.3g} → {after:.3g} nats/token"
    if missing:
        text += f" ({', '.join(missing)} not stored: not re-scored)"
    return text
