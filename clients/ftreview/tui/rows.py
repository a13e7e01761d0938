"""The list as the reviewer sees it: filtered, and identical replies folded into one row.

Plain Python. `rows()` is a pure function of the board's ordered candidates and a
`RowFilter`, so the list, the marks and every bulk decision are computed from the same rows:

- a row is every candidate with the same content and the same status (50 copies of "There
  are seven days in a week." pending are one row counted 50); a decision on the row is a
  decision on all of them, and its members are the ones visible under the filter;
- rows keep the board's order (highest divergence first): a row sits where its strongest
  member sits;
- a row's key (content, status) names it across redraws, so marks survive a live update
  and disappear only when the row itself changes status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ftreview.tui.views import CandidateView, Status

RowKey = tuple[str, Status]


@dataclass(frozen=True)
class RowFilter:
    """What the list shows. The defaults show everything."""

    search: str = ""
    statuses: frozenset[Status] = frozenset()
    """Empty: every status."""
    conversation_id: str = ""
    min_divergence: float | None = None
    max_divergence: float | None = None
    hide_below: float | None = None
    """The threshold, when the reviewer hid the candidates below it."""

    def admits(self, candidate: CandidateView) -> bool:
        if self.statuses and candidate.status not in self.statuses:
            return False
        if self.conversation_id and candidate.conversation_id != self.conversation_id:
            return False
        if self.search and self.search.casefold() not in candidate.content.casefold():
            return False
        if self.min_divergence is not None and candidate.divergence < self.min_divergence:
            return False
        if self.max_divergence is not None and candidate.divergence >= self.max_divergence:
            return False
        return self.hide_below is None or candidate.divergence >= self.hide_below

    def describe(self) -> str:
        """One short line naming what is filtered, "" when nothing is."""
        parts = []
        if self.search:
            parts.append(f"/{self.search}")
        if self.statuses:
            parts.append(",".join(sorted(s.value for s in self.statuses)))
        if self.conversation_id:
            parts.append(f"conv {self.conversation_id}")
        if self.min_divergence is not None or self.max_divergence is not None:
            low = "" if self.min_divergence is None else f"{self.min_divergence:g}"
            high = "" if self.max_divergence is None else f"{self.max_divergence:g}"
            parts.append(f"div {low}..{high}")
        if self.hide_below is not None:
            parts.append("below threshold hidden")
        return " ".join(parts)


@dataclass(frozen=True)
class Row:
    members: tuple[CandidateView, ...]
    """Strongest first; never empty."""

    @property
    def lead(self) -> CandidateView:
        return self.members[0]

    @property
    def key(self) -> RowKey:
        return (self.lead.content, self.lead.status)

    @property
    def timestamps(self) -> list[int]:
        return [member.timestamp_ns for member in self.members]

    def __contains__(self, timestamp_ns: object) -> bool:
        return any(member.timestamp_ns == timestamp_ns for member in self.members)


def rows(ordered: Iterable[CandidateView], row_filter: RowFilter) -> list[Row]:
    groups: dict[RowKey, list[CandidateView]] = {}
    for candidate in ordered:
        if row_filter.admits(candidate):
            groups.setdefault((candidate.content, candidate.status), []).append(candidate)
    return [Row(tuple(members)) for members in groups.values()]


@dataclass
class Marks:
    """Rows the reviewer marked (space) for a bulk decision, by row key."""

    keys: set[RowKey] = field(default_factory=set)

    def toggle(self, row: Row) -> None:
        self.keys.symmetric_difference_update({row.key})

    def marked(self, shown: Sequence[Row]) -> list[Row]:
        """The marked rows still shown; marks of rows that left are dropped."""
        present = [row for row in shown if row.key in self.keys]
        self.keys = {row.key for row in present}
        return present

    def clear(self) -> None:
        self.keys.clear()
