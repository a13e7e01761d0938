"""What the review screen shows: the candidate set, the selection, and the undo history.

The board is plain Python (no Textual, no gRPC), so its rules are testable on their own and
the screen is only a drawing of it. The invariants it keeps:

- the candidates are exactly what the Review's WatchCandidates stream last said: a snapshot
  replaces the set only when it is complete (SNAPSHOT_END), so a reconnect never shows a
  half-loaded list; live events after it add, update or remove one candidate each;
- the order is the Review's: highest divergence first, ties by reply time, so a candidate
  whose scores change moves to where it belongs;
- the selection is a reply's identity (`timestamp_ns`), not a row number, so rows that
  appear or leave above it never move the cursor to another reply; when the selected reply
  leaves, the cursor takes the row that now sits where it was;
- every decision made here is remembered with the status it replaced, so `undo` can put
  back exactly that status (pending, or the earlier approve/reject and its reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class Status(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENT = "sent"


@dataclass(frozen=True)
class TokenView:
    """One token of a reply and how much more likely the memories made it (nats)."""

    text: str
    divergence: float


@dataclass(frozen=True)
class CandidateView:
    timestamp_ns: int
    conversation_id: str
    content: str
    divergence: float
    peak: float
    status: Status
    tokens: tuple[TokenView, ...] = ()
    alternate: str = ""
    reject_reason: str = ""


@dataclass(frozen=True)
class StatsView:
    """The last FinetuneScoringStats: why a scoring run found what it found."""

    conversation_id: str
    responses_seen: int
    responses_scored: int
    responses_above_threshold: int
    max_divergence: float
    threshold: float
    skipped_unset_timestamp: int
    skipped_already_trained: int
    skipped_too_long: int
    skipped_tokenization_mismatch: int
    truncated: int
    error: str
    taken_at_ns: int


@dataclass(frozen=True)
class Decision:
    """A decision made on this screen, and what it replaced (for undo)."""

    timestamp_ns: int
    previous: Status
    previous_reason: str
    made: Status


def _order_key(candidate: CandidateView) -> tuple[float, int]:
    return (-candidate.divergence, candidate.timestamp_ns)


@dataclass
class Board:
    candidates: dict[int, CandidateView] = field(default_factory=dict)
    selected: int | None = None
    loaded: bool = False
    """True once a complete snapshot has arrived (until then the screen says it is connecting)."""
    _staging: dict[int, CandidateView] | None = None
    _order: list[CandidateView] = field(default_factory=list)
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
        self.candidates = staged
        self.loaded = True
        self._reorder(fallback_index=index)

    def upsert(self, candidate: CandidateView) -> None:
        if self._staging is not None:
            self._staging[candidate.timestamp_ns] = candidate
            return
        if candidate.status is Status.SENT:
            self.remove(candidate.timestamp_ns)
            return
        self.candidates[candidate.timestamp_ns] = candidate
        self._reorder(fallback_index=self.selected_index())

    def remove(self, timestamp_ns: int) -> None:
        if self._staging is not None:
            self._staging.pop(timestamp_ns, None)
            return
        index = self.selected_index()
        if self.candidates.pop(timestamp_ns, None) is not None:
            self._reorder(fallback_index=index)

    def _reorder(self, fallback_index: int | None) -> None:
        self._order = sorted(self.candidates.values(), key=_order_key)
        if self.selected in self.candidates:
            return
        if not self._order:
            self.selected = None
        elif fallback_index is None:
            self.selected = self._first_pending_or_first()
        else:
            self.selected = self._order[min(fallback_index, len(self._order) - 1)].timestamp_ns

    def _first_pending_or_first(self) -> int:
        for candidate in self._order:
            if candidate.status is Status.PENDING:
                return candidate.timestamp_ns
        return self._order[0].timestamp_ns

    # -- reading ------------------------------------------------------------------------

    @property
    def ordered(self) -> list[CandidateView]:
        return list(self._order)

    def selected_index(self) -> int | None:
        for index, candidate in enumerate(self._order):
            if candidate.timestamp_ns == self.selected:
                return index
        return None

    def current(self) -> CandidateView | None:
        return self.candidates.get(self.selected) if self.selected is not None else None

    def counts(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for candidate in self._order:
            counts[candidate.status] += 1
        return counts

    # -- the cursor ---------------------------------------------------------------------

    def move(self, delta: int) -> None:
        if not self._order:
            return
        index = self.selected_index()
        index = 0 if index is None else max(0, min(len(self._order) - 1, index + delta))
        self.selected = self._order[index].timestamp_ns

    def select(self, timestamp_ns: int) -> None:
        if timestamp_ns in self.candidates:
            self.selected = timestamp_ns

    def advance_to_next_pending(self) -> None:
        """After a decision: the next pending reply below, wrapping; stay if there is none."""
        index = self.selected_index()
        if index is None:
            return
        count = len(self._order)
        for step in range(1, count):
            candidate = self._order[(index + step) % count]
            if candidate.status is Status.PENDING:
                self.selected = candidate.timestamp_ns
                return

    # -- decisions ----------------------------------------------------------------------

    def record(self, before: CandidateView, made: Status) -> None:
        if before.status is made:
            return  # idempotent: nothing changed, nothing to undo
        self._decisions.append(
            Decision(before.timestamp_ns, before.status, before.reject_reason, made)
        )

    def pop_decision(self) -> Decision | None:
        return self._decisions.pop() if self._decisions else None

    def push_back(self, decision: Decision) -> None:
        """Undo failed: keep the decision so the user can try again."""
        self._decisions.append(decision)

    def replace_all(self, candidates: Iterable[CandidateView]) -> None:
        """Load a complete set at once (a listing rather than a stream)."""
        self.begin_snapshot()
        for candidate in candidates:
            self.add_to_snapshot(candidate)
        self.end_snapshot()
