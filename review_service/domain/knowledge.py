"""Knowledge that changes: the rules that move a trained fact out of LIVE, back, and record
whether it still comes back (docs/design.md §13).

Invariants:
- a ledger entry never leaves the ledger for a change of knowledge: it becomes SUPERSEDED
  or RETRACTED with a reason a person can read, and its reply is never sent again;
- only a LIVE entry changes state: forgetting or superseding a fact that is not live
  changes nothing;
- a fact superseded by an approved reply goes back to LIVE when that reply stops being
  approved (undo, reject) only while its destination was not told; once told, it stays
  superseded and the reason says why;
- every change here leaves the entry undelivered (`retraction_pending`) or says how it was
  delivered; delivery itself is the app's (`app/knowledge`).

Pure functions of plain values: the app runs them inside one writer plan, so a change of
knowledge is committed with what caused it (an approval, a scoring pass, a job's end).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from review_service.domain import changes
from review_service.domain.examples import keyed_reply
from review_service.domain.jobs import TrainingJob
from review_service.domain.model import (
    Candidate,
    KnowledgeState,
    MemoryAttribution,
    Status,
    TrainedEntry,
)

# The longest reason a person may give for forgetting a fact (characters).
MAX_REASON_CHARS = 2000

Ledger = Mapping[int, TrainedEntry]


def forgotten(entry: TrainedEntry, reason: str, reviewer: str) -> TrainedEntry:
    """`entry` retracted by a person; unchanged when it is not live."""
    if not entry.live:
        return entry
    why = f"forgotten by {reviewer.strip() or 'someone'}"
    if reason.strip():
        why += f": {' '.join(reason.split())}"
    return _retracted(entry, why)


def live_candidates(ledger: Ledger) -> list[Candidate]:
    """The replies of the LIVE facts, as candidates (what the change rules compare with)."""
    return [e.as_candidate() for e in ledger.values() if e.live]


def decided(ledger: Ledger, before: Candidate, after: Candidate) -> list[TrainedEntry]:
    """What a decision that changed `before` into `after` does to the ledger: approving a
    reply supersedes the live fact it replaces; taking the approval back (undo, reject)
    puts the fact it superseded back to live, unless its destination was told already."""
    if after.status == Status.APPROVED and before.status != Status.APPROVED:
        change = changes.superseded_fact(after, live_candidates(ledger))
        old = ledger.get(change.other_ns) if change is not None else None
        if change is None or old is None or not old.live or old.timestamp_ns == after.timestamp_ns:
            return []
        fresh = dataclasses.replace(
            old,
            state=KnowledgeState.SUPERSEDED,
            superseded_by_ns=after.timestamp_ns,
            reason=f"superseded by {after.timestamp_ns}: {change.line}",
            retraction_delivered=False,
        )
        return [fresh]
    if before.status == Status.APPROVED and after.status != Status.APPROVED:
        return restored(ledger, after.timestamp_ns, after.status)
    return []


def restored(ledger: Ledger, by_ns: int, now: Status) -> list[TrainedEntry]:
    """The facts `by_ns` superseded, now that it is `now` (no longer approved)."""
    out = []
    for entry in ledger.values():
        if entry.state != KnowledgeState.SUPERSEDED or entry.superseded_by_ns != by_ns:
            continue
        if not entry.retraction_delivered:
            out.append(
                dataclasses.replace(entry, state=KnowledgeState.LIVE, superseded_by_ns=0, reason="")
            )
        elif "no longer approved" not in entry.reason:
            note = (
                f"; {by_ns} is {now.value} now, no longer approved, but the endpoint was "
                "told already: it stays superseded (send the fact again to teach it)"
            )
            out.append(dataclasses.replace(entry, reason=entry.reason + note))
    return out


def memory_retracted(
    ledger: Ledger,
    conversation_id: str,
    memories: Sequence[MemoryAttribution],
    newest_ns: int,
    candidates: Sequence[Candidate] = (),
) -> list[TrainedEntry]:
    """LIVE facts of earlier conversations (replies before `newest_ns`, the newest reply of
    this one) that the memories of conversation `conversation_id` say otherwise about. A
    fact that one of its undecided `candidates` would replace is left to that candidate's
    decision (approving it supersedes the fact; rejecting it keeps the fact live)."""
    if not memories:
        return []
    live = live_candidates(ledger)
    replaced = {
        change.other_ns
        for c in candidates
        if c.status in (Status.PENDING, Status.APPROVED)
        and (change := changes.superseded_fact(c, live)) is not None
    }
    out = []
    for entry in ledger.values():
        if not entry.live or entry.conversation_id == conversation_id:
            continue
        if entry.timestamp_ns in replaced:
            continue
        if newest_ns and entry.timestamp_ns >= newest_ns:
            continue
        change = changes.memory_changed(entry.as_candidate(), memories)
        if change is not None:
            why = f"its memory changed in conversation {conversation_id}: {change.line}"
            out.append(_retracted(entry, why))
    return out


def delivered(entry: TrainedEntry, note: str = "") -> TrainedEntry:
    """`entry`'s destination was told (`note`: what it could not do, appended to the
    reason). An entry put back to live meanwhile stays out of live: it was retracted."""
    reason = entry.reason + (f"; {note}" if note and note not in entry.reason else "")
    return dataclasses.replace(entry, retraction_delivered=True, reason=reason)


def checked(ledger: Ledger, job: TrainingJob, learnt: Iterable[int]) -> list[TrainedEntry]:
    """What an ended job says of earlier facts: each of its retention checks of a reply in
    `ledger` sets that entry's `comes_back` (checked by the job); the replies it learnt
    (`learnt`, in `ledger` or being written) come back by definition and are not here."""
    mine = set(learnt)
    out: dict[int, TrainedEntry] = {}
    for check in job.retention:
        ts = keyed_reply(check.idempotency_key)
        entry = ledger.get(ts) if ts is not None else None
        if entry is None or ts in mine:
            continue
        out[entry.timestamp_ns] = dataclasses.replace(
            entry, comes_back=check.comes_back, checked_by_job=job.id
        )
    return list(out.values())


def held_by(ledger: Ledger, job: TrainingJob) -> list[TrainedEntry]:
    """The earlier live facts of `job`'s destination that its promoted adapter now holds.

    Every adapter the trainer promotes holds every live fact (a learn job continues from the
    served adapter and keeps the facts it checks; a consolidation retrains them all), so
    each live entry that names an adapter names `job.adapter` from now on: the ledger never
    names an adapter that is no longer served. Entries with no adapter (an endpoint that
    could not be followed, an export) and facts no longer live keep theirs."""
    return [
        dataclasses.replace(entry, adapter=job.adapter)
        for entry in ledger.values()
        if entry.live
        and entry.destination == job.destination
        and entry.adapter
        and entry.adapter != job.adapter
    ]


def _retracted(entry: TrainedEntry, reason: str) -> TrainedEntry:
    return dataclasses.replace(
        entry,
        state=KnowledgeState.RETRACTED,
        superseded_by_ns=0,
        reason=reason,
        retraction_delivered=False,
    )
