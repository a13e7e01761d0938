"""What a candidate would change, as the review screen shows it: the trained fact it
supersedes (») and the undecided candidates it conflicts with (×), with what differs.

Plain Python over the board's candidates. The invariant: a conflict shows on both rows.
The Review computes a candidate's `conflicts_with` when it sends the candidate, so one
that arrives later names an earlier one that is not sent again; the screen therefore
counts a conflict from either side, and only while both candidates are on the board and
undecided (pending or approved): a rejected, sent or trained one trains nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable

from ftreview.tui.views import CandidateView, Status

UNDECIDED = (Status.PENDING, Status.APPROVED)
SUPERSEDES_MARK = "»"
CONFLICT_MARK = "×"


def conflicts_by(candidates: Iterable[CandidateView]) -> dict[int, tuple[int, ...]]:
    """Reply -> the undecided replies on the board it conflicts with (either side named
    the other), oldest first; replies without conflicts are not in it."""
    present = {c.timestamp_ns: c for c in candidates}
    pairs: dict[int, set[int]] = {}
    for c in present.values():
        if c.status not in UNDECIDED:
            continue
        for other_ns in c.conflicts_with:
            other = present.get(other_ns)
            if other is None or other.status not in UNDECIDED or other_ns == c.timestamp_ns:
                continue
            pairs.setdefault(c.timestamp_ns, set()).add(other_ns)
            pairs.setdefault(other_ns, set()).add(c.timestamp_ns)
    return {ts: tuple(sorted(others)) for ts, others in pairs.items()}


def change_mark(candidate: CandidateView, conflicts: tuple[int, ...]) -> str:
    """» when the reply supersedes a trained fact, × when it conflicts; "" when neither."""
    mark = SUPERSEDES_MARK if candidate.supersedes else ""
    return mark + (CONFLICT_MARK if conflicts else "")


def change_lines(candidate: CandidateView, conflicts: tuple[int, ...]) -> list[str]:
    """The detail pane's lines: "supersedes ID: OLD -> NEW", "conflicts with IDS: OLD ->
    NEW" (the change given once, on the first line that has one)."""
    lines = []
    change = candidate.change
    if candidate.supersedes:
        lines.append(f"supersedes {candidate.supersedes}: {change or 'another value'}")
        change = ""
    if conflicts:
        ids = ", ".join(map(str, conflicts))
        what = f": {change}" if change else ": approving both trains a contradiction"
        lines.append(f"conflicts with {ids}{what}")
    return lines
