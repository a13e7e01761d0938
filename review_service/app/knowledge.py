"""Forget, and telling the endpoint what is no longer true (README, "Knowledge that
changes"; docs/design.md §13).

Invariants:
- a change of knowledge is committed first, in one transaction, and told afterwards: an
  entry marked SUPERSEDED or RETRACTED is stored undelivered (`retraction_pending`), so a
  crash between the commit and the POST loses nothing: the retraction is delivered later;
- pending retractions are delivered at `Forget` (that entry), before the examples of every
  `Send`, and once when the Review starts; one delivery runs at a time, so an entry is
  never told twice at once;
- an entry counts as delivered only on the endpoint's 2xx answer of its retract route, or
  where nobody can be told: an endpoint without the route (it keeps no knowledge), or an
  export; the reason then says that the fact could not be removed. Any other failure
  leaves it pending and is reported (`delivery_error`);
- a consolidation job the endpoint names is stored in the transaction that marks its
  entries delivered, and only then followed like a sent job (`job_tracking`): it has no
  candidates of its own, and its end writes its retention checks to the ledger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import groupby

from review_service.app.config import LearnConfig
from review_service.app.feed import CandidateEvent
from review_service.app.tasks import Background
from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain import knowledge
from review_service.domain.errors import EndpointError, InvalidArgument, NotFound, ReviewError
from review_service.domain.examples import idempotency_key
from review_service.domain.jobs import TrainingJob
from review_service.domain.model import KnowledgeState, TrainedEntry
from review_service.domain.ports import FinetuneEndpoint, StoreChange

log = logging.getLogger("review_service")

EXPORT_NOTE = "an export cannot be told: remove it from wherever the exported JSONL went"
NO_ROUTE_NOTE = "the endpoint keeps no knowledge (no retract route): it could not remove it"
UNKNOWN_NOTE = "the endpoint did not know it (it never accepted it)"


@dataclass(frozen=True)
class ForgetOutcome:
    entry: TrainedEntry
    # The consolidation job the endpoint queued ("" when none, or not told yet).
    job_id: str = ""
    # Why the endpoint was not told now ("" when it was, or there was nothing to tell).
    delivery_error: str = ""


@dataclass(frozen=True)
class Delivery:
    """What one delivery of pending retractions did."""

    delivered: list[int]
    job_ids: list[str]
    # One line per destination that could not be told.
    errors: list[str]


class Knowledge:
    def __init__(
        self,
        writer: Writer,
        endpoint: FinetuneEndpoint,
        background: Background,
        load_config: Callable[[], LearnConfig],
        follow: Callable[[TrainingJob], None],
    ) -> None:
        self._writer = writer
        self._endpoint = endpoint
        self._background = background
        self._load_config = load_config
        self._follow = follow
        self._lock = asyncio.Lock()

    async def forget(self, ts: int, reason: str = "", reviewer: str = "") -> ForgetOutcome:
        """Retract the live fact `ts` now, then tell its destination. A fact that is not
        live is answered as it is."""
        if len(reason) > knowledge.MAX_REASON_CHARS:
            raise InvalidArgument(
                "reason", f"{len(reason)} characters, at most {knowledge.MAX_REASON_CHARS}"
            )

        def plan(view: View) -> tuple[StoreChange | None, list[CandidateEvent], bool]:
            entry = view.ledger.get(ts)
            if entry is None:
                why = "it is a candidate, not trained yet" if ts in view.candidates else ""
                raise NotFound(
                    "trained reply",
                    str(ts),
                    f"no trained reply {ts} in the ledger" + (f" ({why})" if why else ""),
                )
            fresh = knowledge.forgotten(entry, reason, reviewer)
            if fresh == entry:
                return None, [], False
            return StoreChange(ledger_updates=[fresh]), [], True

        changed = await self._writer.mutate(plan)
        entry = self._writer.view.ledger[ts]
        if not changed:
            note = ""
            if entry.retraction_pending:
                note = (
                    f"it was {entry.state.value} already and is not told yet: the next Send "
                    "tells it"
                )
            return ForgetOutcome(entry, delivery_error=note)
        delivery = await self.deliver({ts})
        return ForgetOutcome(
            self._writer.view.ledger[ts],
            ",".join(delivery.job_ids),
            "; ".join(delivery.errors),
        )

    def resume(self) -> None:
        """Deliver what the last process left pending, in the background (once, at start)."""
        if any(e.retraction_pending for e in self._writer.view.ledger.values()):
            self._background.spawn(self._deliver_quietly())

    async def _deliver_quietly(self) -> None:
        try:
            done = await self.deliver()
        except Exception:  # the next Send tries again
            log.exception("delivering pending retractions failed")
            return
        for error in done.errors:
            log.warning("a retraction was not delivered (the next Send tries again): %s", error)

    async def deliver(self, only: Iterable[int] | None = None) -> Delivery:
        """Tell every destination its pending retractions (`only`: of these replies)."""
        wanted = None if only is None else set(only)
        async with self._lock:
            pending = [
                e for e in self._writer.view.ledger.values()
                if e.retraction_pending and (wanted is None or e.timestamp_ns in wanted)
            ]  # fmt: skip
            delivered: list[int] = []
            job_ids: list[str] = []
            errors: list[str] = []
            pending.sort(key=lambda e: (e.destination, e.timestamp_ns))
            for destination, group in groupby(pending, lambda e: e.destination):
                entries = list(group)
                try:
                    notes, job_id = await self._tell(destination, entries)
                except EndpointError as error:
                    errors.append(error.message)
                    continue
                except ReviewError as error:  # the config cannot be read
                    errors.append(error.message)
                    continue
                await self._writer.mutate(
                    functools.partial(
                        _delivered, notes=notes, destination=destination, job_id=job_id
                    )
                )
                delivered += list(notes)
                if job_id:
                    job_ids.append(job_id)
                    stored = self._writer.view.jobs.get((destination, job_id))
                    if stored is not None and not stored.state.ended:
                        self._follow(stored)
            return Delivery(delivered, job_ids, errors)

    async def _tell(
        self, destination: str, entries: list[TrainedEntry]
    ) -> tuple[dict[int, str], str]:
        """Each entry's note (what could not be done, "" when told), and the job queued."""
        if destination.startswith("export:"):
            return {e.timestamp_ns: EXPORT_NOTE for e in entries}, ""
        config = self._load_config()
        keys = {idempotency_key(e.timestamp_ns): e.reason for e in entries}
        reply = await self._endpoint.retract(
            destination, keys, config.finetune_timeout, config.finetune_retries
        )
        if not reply.supported:
            return {e.timestamp_ns: NO_ROUTE_NOTE for e in entries}, ""
        notes = {
            e.timestamp_ns: UNKNOWN_NOTE if idempotency_key(e.timestamp_ns) in reply.unknown else ""
            for e in entries
        }
        return notes, reply.job_id


def _delivered(
    view: View, notes: dict[int, str], destination: str, job_id: str
) -> tuple[StoreChange | None, list[CandidateEvent], None]:
    """The entries told (each with its note), and the consolidation job stored."""
    change = StoreChange()
    for ts, note in notes.items():
        entry = view.ledger.get(ts)
        if entry is None or entry.retraction_delivered:
            continue
        if entry.live:  # put back to live while it was told: the endpoint retracted it
            note = (note + "; " if note else "") + (
                "it was put back to live after the endpoint was told: send it again to teach it"
            )
            entry = dataclasses.replace(entry, state=KnowledgeState.RETRACTED)
        change.ledger_updates.append(knowledge.delivered(entry, note))
    if job_id and (destination, job_id) not in view.jobs:
        change.jobs.append(TrainingJob(job_id, destination, created_at_ns=time.time_ns()))
    return change, [], None
