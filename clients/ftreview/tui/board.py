"""What the review screen shows: the candidate set, the rows, the selection, and undo.

The board is plain Python (no Textual, no gRPC), so its rules are testable on their own and
the screen is only a drawing of it. The invariants it keeps:

- the candidates are exactly what the Review's WatchCandidates stream last said: a snapshot
  replaces the set only when it is complete (SNAPSHOT_END), so a reconnect never shows a
  half-loaded list; live events after it add, update or remove one candidate each;
- `ordered` is the Review's order (highest divergence first, ties by reply time); the rows
  are the queue: pending rows first, then the decided ones grouped by status (approved,
  in training, rejected), each group in the chosen sort (`SORTS`: divergence as the
  Review and `ftreview candidates` order it, time newest first as `--order time`, or
  conversation: by conversation, each in reply order), then filtered and grouped
  (`ftreview.tui.rows`);
- the selection is a reply's identity (`timestamp_ns`), not a row number, so rows that
  appear or leave above it never move the cursor to another reply; when the selected reply
  leaves (or is filtered out), the cursor takes the row that now sits where it was;
- every decision made here is remembered with the status each of its replies had, so `undo`
  puts back exactly that; a reply the Review no longer keeps (a rejection pushed out by the
  keep-the-last-10 rule) or that was sent (in a training job, then learnt or approved again)
  is dropped from the history, counted in `forgotten` until the screen has said so;
- `session_decided` holds the replies decided on this screen (an undo takes them out), for
  the progress line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ftreview.tui.changes import conflicts_by
from ftreview.tui.rows import Row, RowFilter, rows
from ftreview.tui.views import CandidateView, Status


@dataclass(frozen=True)
class Prior:
    """One reply of a decision and the status it had before."""

    timestamp_ns: int
    status: Status
    reason: str


@dataclass(frozen=True)
class Decision:
    """A decision made on this screen (one or many replies), and what it replaced."""

    priors: tuple[Prior, ...]
    made: Status


SORTS = ("divergence", "time", "conversation")
"""The queue's sort keys, as `o` cycles them (`ftreview candidates --order` names the same)."""
STATUS_RANK = {Status.PENDING: 0, Status.APPROVED: 1, Status.SENT: 2, Status.REJECTED: 3}


def _order_key(candidate: CandidateView) -> tuple[float, int]:
    return (-candidate.divergence, candidate.timestamp_ns)


def queue_key(candidate: CandidateView, sort: str) -> tuple[Any, ...]:
    """Pending first, then the decided by status; within each, the sort."""
    rank = STATUS_RANK[candidate.status]
    if sort == "time":
        return (rank, -candidate.timestamp_ns)
    if sort == "conversation":
        return (rank, candidate.conversation_id, candidate.timestamp_ns)
    return (rank, *_order_key(candidate))


def grouped(
    queue: list[CandidateView], conflicts: dict[int, tuple[int, ...]]
) -> list[CandidateView]:
    """`queue` with each reply's conflicting replies (×) of the same status moved up to
    follow it, in queue order: a conflict group reads as one, where the reviewer chooses
    which value is current."""
    position = {c.timestamp_ns: i for i, c in enumerate(queue)}
    by_ts = {c.timestamp_ns: c for c in queue}
    placed: set[int] = set()
    out: list[CandidateView] = []
    for candidate in queue:
        if candidate.timestamp_ns in placed:
            continue
        out.append(candidate)
        placed.add(candidate.timestamp_ns)
        others = [by_ts[o] for o in conflicts.get(candidate.timestamp_ns, ()) if o in by_ts]
        for other in sorted(others, key=lambda c: position[c.timestamp_ns]):
            if other.timestamp_ns not in placed and other.status is candidate.status:
                out.append(other)
                placed.add(other.timestamp_ns)
    return out


@dataclass
class Board:
    candidates: dict[int, CandidateView] = field(default_factory=dict)
    selected: int | None = None
    loaded: bool = False
    """True once a complete snapshot has arrived (until then the screen says it is connecting)."""
    row_filter: RowFilter = field(default_factory=RowFilter)
    forgotten: int = 0
    """Replies dropped from the undo history because the Review no longer keeps them."""
    sort: str = SORTS[0]
    session_decided: set[int] = field(default_factory=set)
    _staging: dict[int, CandidateView] | None = None
    _order: list[CandidateView] = field(default_factory=list)
    _rows: list[Row] = field(default_factory=list)
    _decisions: list[Decision] = field(default_factory=list)

    # -- the stream ---------------------------------------------------------------------

    def begin_snapshot(self) -> None:
        self._staging = {}

    def abandon_snapshot(self) -> None:
        """The stream broke mid-snapshot: keep showing the last complete set."""
        self._staging = None

    def add_to_snapshot(self, candidate: CandidateView) -> None:
        if self._staging is None:
            self._staging = {}
        self._staging[candidate.timestamp_ns] = candidate

    def end_snapshot(self) -> None:
        staged = self._staging if self._staging is not None else {}
        self._staging = None
        index = self.selected_index()
        for gone in set(self.candidates) - set(staged):
            self._forget_decisions(gone)
        for ts, candidate in staged.items():
            if candidate.in_training:
                self._forget_decisions(ts)
        self.candidates = staged
        self.loaded = True
        self._reorder(fallback_index=index)

    def upsert(self, candidate: CandidateView) -> None:
        if self._staging is not None:
            self._staging[candidate.timestamp_ns] = candidate
            return
        # A SENT reply stays listed while its training job runs; the Review removes it once
        # the job learnt it, or puts it back approved. Sent, it can no longer be undone.
        if candidate.in_training:
            self._forget_decisions(candidate.timestamp_ns)
        self.candidates[candidate.timestamp_ns] = candidate
        self._reorder(fallback_index=self.selected_index())

    def remove(self, timestamp_ns: int) -> None:
        if self._staging is not None:
            self._staging.pop(timestamp_ns, None)
            return
        index = self.selected_index()
        if self.candidates.pop(timestamp_ns, None) is not None:
            self._forget_decisions(timestamp_ns)
            self._reorder(fallback_index=index)

    def set_filter(self, row_filter: RowFilter) -> None:
        index = self.selected_index()
        self.row_filter = row_filter
        self._reorder(fallback_index=index)

    def cycle_sort(self) -> str:
        """The next sort of `SORTS`; the cursor stays on its reply."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._reorder(fallback_index=self.selected_index())
        return self.sort

    def _reorder(self, fallback_index: int | None) -> None:
        self._order = sorted(self.candidates.values(), key=_order_key)
        queue = sorted(self._order, key=lambda c: queue_key(c, self.sort))
        self._rows = rows(grouped(queue, self.conflicts()), self.row_filter)
        if self.selected_index() is not None:
            return
        if not self._rows:
            self.selected = None
        elif fallback_index is None:
            self.selected = self._first_pending_or_first()
        else:
            self.selected = self._rows[min(fallback_index, len(self._rows) - 1)].lead.timestamp_ns

    def _first_pending_or_first(self) -> int:
        for row in self._rows:
            if row.lead.status is Status.PENDING:
                return row.lead.timestamp_ns
        return self._rows[0].lead.timestamp_ns

    # -- reading ------------------------------------------------------------------------

    @property
    def ordered(self) -> list[CandidateView]:
        """Every candidate, unfiltered, in the Review's order."""
        return list(self._order)

    @property
    def rows(self) -> list[Row]:
        """What the list shows: filtered and grouped."""
        return list(self._rows)

    def selected_index(self) -> int | None:
        for index, row in enumerate(self._rows):
            if self.selected in row:
                return index
        return None

    def current_row(self) -> Row | None:
        index = self.selected_index()
        return None if index is None else self._rows[index]

    def current(self) -> CandidateView | None:
        return self.candidates.get(self.selected) if self.selected is not None else None

    def conflicts(self) -> dict[int, tuple[int, ...]]:
        """Reply -> the undecided replies it conflicts with, either side naming the other
        (`ftreview.tui.changes`)."""
        return conflicts_by(self.candidates.values())

    def counts(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for candidate in self._order:
            counts[candidate.status] += 1
        return counts

    def pending_below(self, divergence: float) -> list[CandidateView]:
        """Pending replies below a divergence, shown or not: what "reject all below" takes."""
        return [c for c in self._order if c.status is Status.PENDING and c.divergence < divergence]

    # -- the cursor ---------------------------------------------------------------------

    def move(self, delta: int) -> None:
        if not self._rows:
            return
        index = self.selected_index()
        index = 0 if index is None else max(0, min(len(self._rows) - 1, index + delta))
        self.selected = self._rows[index].lead.timestamp_ns

    def move_to(self, index: int) -> None:
        """Row `index`; negative counts from the end (-1: the last row)."""
        if not self._rows:
            return
        if index < 0:
            index += len(self._rows)
        self.selected = self._rows[max(0, min(len(self._rows) - 1, index))].lead.timestamp_ns

    def select(self, timestamp_ns: int) -> None:
        if timestamp_ns in self.candidates:
            self.selected = timestamp_ns

    def advance_to_next_pending(self, from_index: int | None = None) -> None:
        """After a decision: the next pending row below, wrapping; stay if there is none.

        `from_index`: the row the decided one was on; a decided row moves down among the
        decided, so the next pending row is the one that took its place (that row counts)."""
        index = self.selected_index()
        if index is None:
            return
        count = len(self._rows)
        first = 1
        if from_index is not None:
            index, first = min(from_index, count - 1), 0
        for step in range(first, count):
            row = self._rows[(index + step) % count]
            if row.lead.status is Status.PENDING:
                self.selected = row.lead.timestamp_ns
                return

    # -- decisions ----------------------------------------------------------------------

    def record(self, before: Iterable[CandidateView], made: Status) -> None:
        priors = tuple(
            Prior(c.timestamp_ns, c.status, c.reject_reason) for c in before if c.status is not made
        )
        if priors:  # a decision that changed nothing has nothing to undo
            self._decisions.append(Decision(priors, made))
            self.session_decided.update(p.timestamp_ns for p in priors)

    def pop_decision(self) -> Decision | None:
        decision = self._decisions.pop() if self._decisions else None
        if decision is not None:
            self.session_decided.difference_update(p.timestamp_ns for p in decision.priors)
        return decision

    def push_back(self, decision: Decision) -> None:
        """Undo failed: keep the decision so the user can try again."""
        self._decisions.append(decision)
        self.session_decided.update(p.timestamp_ns for p in decision.priors)

    def _forget_decisions(self, timestamp_ns: int) -> None:
        kept: list[Decision] = []
        for decision in self._decisions:
            priors = tuple(p for p in decision.priors if p.timestamp_ns != timestamp_ns)
            self.forgotten += len(decision.priors) - len(priors)
            if priors:
                kept.append(Decision(priors, decision.made))
        self._decisions = kept

    def replace_all(self, candidates: Iterable[CandidateView]) -> None:
        """Load a complete set at once (a listing rather than a stream)."""
        self.begin_snapshot()
        for candidate in candidates:
            self.add_to_snapshot(candidate)
        self.end_snapshot()
