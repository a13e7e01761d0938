"""Approve, reject and undo: a person's decisions on listed candidates (docs/design.md §6).

Invariants:
- a decision names listed candidates only; if one of them cannot be decided (unknown,
  forgotten, trained, or in a training job), nothing of the call changes;
- approve and reject are idempotent (deciding again what is decided writes nothing and
  keeps the first decision time) and reversible until the candidate is sent;
- only the `REJECTED_KEPT` most recently rejected stay listed: a rejection that pushes one
  out forgets it in the same transaction, and watchers see it leave;
- approving a reply that replaces a live trained fact (`knowledge.decided`) supersedes
  that fact in the decision's transaction; taking the approval back puts the fact back to
  live while the endpoint was not told;
- every decision that changed a candidate is added to the history (`DecisionRecord`: what
  it became, the reason, the reviewer, the time) in the same transaction, and the history
  is never cut: a forgotten rejection keeps its reason there.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from review_service.app.feed import CandidateEvent, EventKind
from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain import knowledge, sync
from review_service.domain.errors import InvalidArgument
from review_service.domain.model import Candidate, DecisionRecord, Status, TrainedEntry
from review_service.domain.ports import StoreChange

Rule = Callable[[Candidate, int], Candidate]
# The longest note an approval keeps (characters), as long as a forget's reason.
MAX_NOTE_CHARS = 2000


class Decisions:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def approve(
        self, timestamps: list[int], reviewer: str = "", note: str = ""
    ) -> list[Candidate]:
        """Approve; `note` is kept as the decision's reason in the history."""
        if len(note) > MAX_NOTE_CHARS:
            raise InvalidArgument("note", f"at most {MAX_NOTE_CHARS} characters, not {len(note)}")
        return await self._decide(timestamps, sync.approve, reviewer, " ".join(note.split()))

    async def reject(
        self, timestamps: list[int], reason: str = "", reviewer: str = ""
    ) -> list[Candidate]:
        return await self._decide(timestamps, lambda c, now: sync.reject(c, reason, now), reviewer)

    async def clear_decision(self, timestamps: list[int], reviewer: str = "") -> list[Candidate]:
        return await self._decide(timestamps, lambda c, now: sync.clear_decision(c), reviewer)

    async def history(self, limit: int = 0) -> list[DecisionRecord]:
        """Every decision made, newest first (`limit` 0: all)."""
        store = self._writer.store
        return await self._writer.in_store_thread(store.decisions, limit)

    async def _decide(
        self, timestamps: list[int], rule: Rule, reviewer: str, note: str = ""
    ) -> list[Candidate]:
        if not timestamps:
            raise InvalidArgument("timestamps", "name at least one candidate")
        unique = list(dict.fromkeys(timestamps))

        def plan(view: View) -> tuple[StoreChange | None, list[CandidateEvent], list[Candidate]]:
            now = time.time_ns()
            targets = [view.decidable(ts) for ts in unique]  # all valid, or nothing changes
            changed = [new for old in targets if (new := rule(old, now)) != old]
            if not changed:
                return None, [], targets
            state = {ts: view.candidates[ts] for ts in view.rejected}
            state.update({c.timestamp_ns: c for c in targets})
            state.update({c.timestamp_ns: c for c in changed})
            forgotten = sync.rejected_overflow(state.values())
            events = [
                CandidateEvent(_change_kind(view.candidates[c.timestamp_ns], c), c) for c in changed
            ]
            events += [
                CandidateEvent(EventKind.REMOVED, dataclasses.replace(c, status=Status.REJECTED))
                for c in forgotten
            ]
            state.update({c.timestamp_ns: c for c in forgotten})
            result = [state[ts] for ts in unique]
            logged = [_record(c, reviewer.strip(), now, note) for c in changed]
            ledger = _ledger_after(view, changed + forgotten)
            change = StoreChange(decided=changed + forgotten, logged=logged, ledger_updates=ledger)
            return change, events, result

        return await self._writer.mutate(plan)


def _ledger_after(view: View, decided: list[Candidate]) -> list[TrainedEntry]:
    """The facts these decisions supersede, or put back to live (`knowledge.decided`)."""
    updated: dict[int, TrainedEntry] = {}
    ledger = view.ledger
    for new in decided:
        for entry in knowledge.decided(ledger, view.candidates[new.timestamp_ns], new):
            updated[entry.timestamp_ns] = entry
            ledger = ledger.set(entry.timestamp_ns, entry)
    return list(updated.values())


def _record(c: Candidate, reviewer: str, now: int, note: str = "") -> DecisionRecord:
    """The history's line: a rejection's reason, or an approval's note."""
    reason = c.reject_reason or (note if c.status == Status.APPROVED else "")
    return DecisionRecord(
        c.timestamp_ns, c.status, reason, reviewer, now, c.conversation_id, c.content
    )


def _change_kind(old: Candidate, new: Candidate) -> EventKind:
    return EventKind.STATUS_CHANGED if old.status != new.status else EventKind.UPDATED
