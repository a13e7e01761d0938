"""What becomes of the replies an endpoint accepted: the trained ledger, or the list again.

Invariants (issue 16):
- no reply is in the trained ledger unless an adapter that learnt it is being served: a
  reply a followed job trains is SENT (in the list, in that job) until the job ends, and
  the job's end moves it in ONE transaction with the job's end state: learnt -> a ledger
  entry (job id, divergence when sent, the job's adapter) and off the list; not learnt ->
  APPROVED again, `send_error` saying which job did not learn it and why, so the next Send
  sends it again (the trainer puts a key it did not learn into a new job);
- where nobody can ever say what was learnt (an export with `mark_trained`, an endpoint
  that names no job or has no jobs route), handing the reply over is all anyone will know,
  and it goes to the ledger at once (`handed_over`);
- a succeeded job's retention checks (does an earlier fact still come back on its model?)
  are written to the ledger entries they are about in the transaction of its end, and the
  replies it learnt come back by definition (`comes_back`, checked by that job);
- ledger entries an earlier version wrote at acceptance (adapter "") follow their job's
  word too: learnt ones get its adapter, the others leave the ledger (their conversations
  are stored, so the next SyncCandidates brings them back as candidates).

Plans only: pure functions of the staged view, run by the writer (`writer.Plan`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from review_service.app.feed import CandidateEvent, EventKind
from review_service.app.view import View
from review_service.domain import knowledge
from review_service.domain.examples import idempotency_key
from review_service.domain.jobs import JobState, TrainingJob
from review_service.domain.model import Candidate, Status, TrainedEntry
from review_service.domain.ports import StoreChange


@dataclass(frozen=True)
class Settled:
    """What a job's end did to its replies."""

    learnt: int = 0
    returned: int = 0  # back to approved, each with its reason
    released: int = 0  # ledger entries of an earlier version that left the ledger

    @property
    def total(self) -> int:
        return self.learnt + self.returned + self.released

    def aftermath(self) -> str:
        """`1 returned to approved (...)`, "" when every reply was learnt."""
        parts = []
        if self.returned:
            them = "it" if self.returned == 1 else "them"
            parts.append(f"{self.returned} returned to approved (the next Send sends {them} again)")
        if self.released:
            them = "it" if self.released == 1 else "them"
            parts.append(
                f"{self.released} left the trained ledger (SyncCandidates brings {them} back)"
            )
        return "; ".join(parts)


def handed_over(
    view: View, batch: Sequence[Candidate], destination: str, job_id: str = ""
) -> StoreChange:
    """The ledger at once: `batch` leaves the list (watchers see each removed as SENT)."""
    now = time.time_ns()
    entries = [
        TrainedEntry(
            c.timestamp_ns, c.conversation_id, now, destination, job_id,
            divergence_before=current.divergence, content=current.content,
            candidate=_kept(current),
        )
        for c in batch
        if c.timestamp_ns not in view.ledger
        and (current := view.candidates.get(c.timestamp_ns, c)) is not None
    ]  # fmt: skip
    return StoreChange(trained=entries, delete=[c.timestamp_ns for c in batch])


def removed_events(view: View, batch: Sequence[Candidate]) -> list[CandidateEvent]:
    events = []
    for c in batch:
        current = view.candidates.get(c.timestamp_ns)
        if current is not None and current.visible:
            sent = dataclasses.replace(current, status=Status.SENT)
            events.append(CandidateEvent(EventKind.REMOVED, sent))
    return events


def into_training(
    view: View, accepted: Sequence[Candidate], destination: str, job_id: str
) -> tuple[StoreChange, list[CandidateEvent]]:
    """Accepted into a job that will be followed: SENT, in that job, nothing in the ledger.
    Whatever a person decided while the request was out, the endpoint has it now."""
    fresh = []
    for c in accepted:
        if c.timestamp_ns in view.ledger:
            continue
        current = view.candidates.get(c.timestamp_ns, c)
        fresh.append(
            dataclasses.replace(
                current, status=Status.SENT, job_id=job_id, sent_to=destination,
                send_error="", reject_reason="",
            )
        )  # fmt: skip
    events = [CandidateEvent(EventKind.STATUS_CHANGED, c) for c in fresh]
    return StoreChange(upsert=fresh), events


def ended(view: View, job: TrainingJob) -> tuple[StoreChange, list[CandidateEvent], Settled]:
    """The job's end, and each of its replies where the job's word puts it."""
    current = view.jobs.get((job.destination, job.id))
    job = job if current is None else current.merged(job)
    now = time.time_ns()
    change = StoreChange(jobs=[job])
    events: list[CandidateEvent] = []
    learnt = returned = released = 0
    for c in view.job_candidates(job):
        why = job.not_learnt(idempotency_key(c.timestamp_ns))
        if why is None:
            change.trained.append(
                TrainedEntry(
                    c.timestamp_ns, c.conversation_id, now, job.destination, job.id,
                    divergence_before=c.divergence, adapter=job.adapter, comes_back=True,
                    checked_by_job=job.id, content=c.content, candidate=_kept(c),
                )
            )  # fmt: skip
            change.delete.append(c.timestamp_ns)
            events.append(CandidateEvent(EventKind.REMOVED, c))
            learnt += 1
        else:
            back = dataclasses.replace(
                c, status=Status.APPROVED, job_id="", sent_to="", send_error=why
            )
            change.upsert.append(back)
            events.append(CandidateEvent(EventKind.STATUS_CHANGED, back))
            returned += 1
    for entry in view.job_entries(job):
        if entry.adapter:
            continue  # promoted before (this job answered a re-sent key again)
        if job.not_learnt(idempotency_key(entry.timestamp_ns)) is not None:
            change.untrained.append(entry.timestamp_ns)
            released += 1
        elif job.adapter:
            change.ledger_updates.append(dataclasses.replace(entry, adapter=job.adapter))
            learnt += 1
    if job.state == JobState.SUCCEEDED:
        # Its retention checks: do the earlier facts still come back on its model?
        updated = {e.timestamp_ns: e for e in change.ledger_updates}
        ledger = {**view.ledger, **updated}
        learnt_now = [e.timestamp_ns for e in change.trained]
        for entry in knowledge.checked(ledger, job, learnt_now):
            updated[entry.timestamp_ns] = entry
        if job.adapter:
            for entry in knowledge.held_by({**ledger, **updated}, job):
                updated[entry.timestamp_ns] = entry
        change.ledger_updates = list(updated.values())
    return change, events, Settled(learnt, returned, released)


def unfollowable(
    view: View, job: TrainingJob, note: str
) -> tuple[StoreChange, list[CandidateEvent], int]:
    """An endpoint without the jobs route: the job keeps why it is not followed, and its
    replies go to the ledger at once (acceptance is all it will ever say)."""
    current = view.jobs.get((job.destination, job.id), job)
    job = dataclasses.replace(current, follow_note=note)
    waiting = view.job_candidates(job)
    change = handed_over(view, waiting, job.destination, job.id)
    change.jobs.append(job)
    return change, removed_events(view, waiting), len(change.trained)


def _kept(c: Candidate) -> Candidate:
    """The candidate as its ledger entry keeps it: approved, out of any job (the entry
    names the job)."""
    return dataclasses.replace(c, status=Status.APPROVED, job_id="", sent_to="", send_error="")
