"""What approving a candidate that conflicts with others does: the approved value is the
current one, and every other undecided candidate of its group is rejected as superseded.

Invariants:
- a conflict counts from either side (a candidate names the other in `conflicts_with`, as
  the Review lists them) and only between undecided candidates (pending or approved): a
  rejected, sent or trained one trains nothing more;
- nothing is approved or rejected unless `--yes` was given: without it the command
  changes nothing and exits 2 with one line naming, per approved candidate, the ids it
  would reject and what differs, and saying to run again with --yes;
- approving two candidates of the same group at once is refused in the same way, with or
  without `--yes`: only the reviewer knows which value is current;
- the rejected ones carry the reason "superseded by <ID>" (ID: the one approved), so the
  decision history says why.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from ftreview.cli.context import UsageError
from ftreview.client import CandidateStatus, ReviewClient
from ftreview.core.wire import timestamp_ns

UNDECIDED: list[CandidateStatus] = ["pending", "approved"]


def superseded_reason(winner: int) -> str:
    return f"superseded by {winner}"


def conflict_groups(candidates: Iterable[Any]) -> dict[int, set[int]]:
    """Reply -> the undecided replies it conflicts with (either side named the other)."""
    present = {timestamp_ns(c.timestamp): c for c in candidates}
    pairs: dict[int, set[int]] = {}
    for ts, c in present.items():
        for other in (timestamp_ns(t) for t in c.conflicts_with):
            if other in present and other != ts:
                pairs.setdefault(ts, set()).add(other)
                pairs.setdefault(other, set()).add(ts)
    return pairs


def losers_of(
    client: ReviewClient, ids: Sequence[int], args: argparse.Namespace
) -> dict[int, list[int]]:
    """Approved id -> the undecided candidates approving it rejects as superseded.

    Raises UsageError (exit 2, one line) when two of `ids` conflict, or when some would be
    rejected and `--yes` was not given."""
    undecided = client.list_candidates(UNDECIDED)
    by_ts = {timestamp_ns(c.timestamp): c for c in undecided}
    pairs = conflict_groups(undecided)
    wanted = set(ids)
    clashes = sorted(
        {
            tuple(sorted((ts, other)))
            for ts in wanted
            for other in pairs.get(ts, ())
            if other in wanted
        }
    )
    if clashes:
        both = "; ".join(f"{a} and {b}" for a, b in clashes)
        raise UsageError(
            f"{both} conflict: approve only the one whose value is current "
            "(the others are then rejected as superseded)"
        )
    losers = {ts: sorted(pairs[ts]) for ts in ids if pairs.get(ts)}
    if losers and not getattr(args, "yes", False):
        parts = []
        for ts, others in losers.items():
            change = by_ts[ts].change if ts in by_ts else ""
            what = f" ({change})" if change else ""
            parts.append(f"{ts} conflicts with {', '.join(map(str, others))}{what}")
        raise UsageError(
            f"{'; '.join(parts)}: approving rejects "
            f"{'it' if sum(map(len, losers.values())) == 1 else 'them'} as superseded; "
            "run again with --yes"
        )
    return losers


def reject_losers(client: ReviewClient, losers: dict[int, list[int]], reviewer: str) -> list[Any]:
    """Reject each winner's losers with "superseded by <winner>"; the rejected, as stored."""
    rejected: list[Any] = []
    done: set[int] = set()
    for winner, others in losers.items():
        left = [ts for ts in others if ts not in done]  # two winners may share a loser
        done.update(left)
        if left:
            rejected += client.reject(left, reason=superseded_reason(winner), reviewer=reviewer)
    return rejected
