"""Additive sync and the decision rules of the candidate list.

Invariants (docs/design.md §6):
- a scoring result only ever adds or refreshes: new candidates arrive pending, known ones
  keep their status (approved stays approved) and get the fresh scores, and nothing is
  dropped because one pass did not mention it (a pass may score only the newest turn);
- a reply in the trained ledger never becomes a candidate again;
- a reply in training (SENT) stays SENT with the scores it was sent with (its ledger
  entry's `divergence_before`): a rescoring pass leaves it alone until its job ends;
- approve and reject are idempotent and reversible until the candidate is sent;
- only the `REJECTED_KEPT` most recently rejected stay in the list; the others are
  forgotten, and a forgotten reply does not come back through rescoring either.

Pure functions of values, so the rules are tested without a store or a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from review_service.domain.model import REJECTED_KEPT, Candidate, ScoredReply, Status
from review_service.domain.replies import Given


@dataclass(frozen=True)
class SyncOutcome:
    added: list[Candidate]
    updated: list[Candidate]


def merge_scores(
    known: Mapping[int, Candidate],
    trained: Container[int],
    conversation_id: str,
    replies: Sequence[ScoredReply],
    given: Mapping[int, Given],
    now_ns: int,
) -> SyncOutcome:
    """Merge one scoring pass into the known candidates (additively). A pass that carries
    no attribution (the reply is below the threshold now) keeps the memories known."""
    added: list[Candidate] = []
    updated: list[Candidate] = []
    for reply in replies:
        ts = reply.timestamp_ns
        if ts == 0 or not reply.scored or ts in trained:
            continue
        existing = known.get(ts)
        if existing is not None:
            if existing.status in (Status.FORGOTTEN, Status.SENT):
                continue
            fresh = dataclasses.replace(
                existing,
                divergence=reply.divergence,
                peak=reply.peak,
                tokens=reply.tokens,
                memories=reply.attributions or existing.memories,
                question=existing.question or _question(given, ts),
                scored_at_ns=now_ns,
            )
            if fresh != existing:
                updated.append(fresh)
        elif reply.candidate:
            added.append(
                Candidate(
                    timestamp_ns=ts,
                    conversation_id=conversation_id,
                    content=reply.content,
                    context=given[ts].context if ts in given else (),
                    divergence=reply.divergence,
                    peak=reply.peak,
                    tokens=reply.tokens,
                    scored_at_ns=now_ns,
                    question=_question(given, ts),
                    memories=reply.attributions,
                )
            )
    return SyncOutcome(added=added, updated=updated)


def _question(given: Mapping[int, Given], ts: int) -> str:
    return given[ts].question if ts in given else ""


def approve(candidate: Candidate, now_ns: int) -> Candidate:
    if candidate.status == Status.APPROVED:
        return candidate
    return dataclasses.replace(
        candidate, status=Status.APPROVED, decided_at_ns=now_ns, reject_reason=""
    )


def reject(candidate: Candidate, reason: str, now_ns: int) -> Candidate:
    """Rejected with `reason`; an empty reason keeps the reason given before."""
    if candidate.status == Status.REJECTED and (not reason or reason == candidate.reject_reason):
        return candidate
    return dataclasses.replace(
        candidate, status=Status.REJECTED, decided_at_ns=now_ns, reject_reason=reason
    )


def clear_decision(candidate: Candidate) -> Candidate:
    if candidate.status == Status.PENDING:
        return candidate
    return dataclasses.replace(candidate, status=Status.PENDING, decided_at_ns=0, reject_reason="")


def rejected_overflow(
    candidates: Iterable[Candidate], keep: int = REJECTED_KEPT
) -> list[Candidate]:
    """The rejected candidates beyond the `keep` most recent, forgotten."""
    rejected = [c for c in candidates if c.status == Status.REJECTED]
    rejected.sort(key=lambda c: (c.decided_at_ns, c.timestamp_ns), reverse=True)
    return [dataclasses.replace(c, status=Status.FORGOTTEN) for c in rejected[keep:]]
