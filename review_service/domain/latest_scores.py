"""The latest score of every reply of a conversation, kept so that `GetStats` can say, for
each reply, its divergence, its peak, and whether it is a candidate or why not.

Invariants:
- a scoring pass replaces the kept score of exactly the replies it looked at (scored, or
  refused as too long or as tokenizing differently); the replies it did not look at (not
  requested because scored before, or excluded as trained) keep what an earlier pass said,
  so ingesting the next turn never wipes the scores of the earlier turns;
- a reply with a set timestamp is known by it (its identity everywhere); a reply with an
  unset timestamp (0) cannot be, so it is known by (conversation id, node path) and counts
  only while the stored conversation has the same content at that path. The Scorer scores
  every unset-timestamp reply on every pass (none can be named in `only`), so a pass
  replaces its conversation's unset-timestamp scores as a whole and none goes stale;
- the listing follows the stored conversation, in conversation order, so every reply
  appears, scored or not; a reply now in the trained ledger says `already trained`,
  whatever its last pass said, and keeps the scores it had.

Pure functions of values: no store, no gRPC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Iterable, Mapping, Sequence

from ftreview.core.values import Message

from review_service.domain.model import Candidate, LatestScore, NotCandidateReason, ScoredReply

# Replies a pass looked at without scoring them: their verdict is news, so it is kept.
_REFUSED = frozenset(
    {
        NotCandidateReason.TOO_LONG,
        NotCandidateReason.TOKENIZATION_MISMATCH,
        NotCandidateReason.UNSET_TIMESTAMP,
    }
)


def from_pass(
    conversation_id: str, replies: Iterable[ScoredReply], now_ns: int
) -> list[LatestScore]:
    """What one scoring pass says about the replies it looked at, to keep."""
    return [
        LatestScore(
            conversation_id=conversation_id,
            timestamp_ns=r.timestamp_ns,
            node_path=r.node_path,
            content=r.content,
            scored=r.scored,
            divergence=r.divergence if r.scored else 0.0,
            peak=r.peak if r.scored else 0.0,
            candidate=r.candidate,
            reason=r.reason,
            context_tokens_cut=r.context_tokens_cut,
            scored_at_ns=now_ns,
        )
        for r in replies
        if r.scored or r.reason in _REFUSED
    ]


def in_conversation_order(
    conversation_id: str,
    messages: Sequence[Message],
    kept: Iterable[LatestScore],
    trained: Container[int],
    candidates: Mapping[int, Candidate],
) -> list[LatestScore]:
    """Every assistant reply of the conversation (memories excluded), with its latest score.

    A reply without a kept score (scored before the Review kept scores, or its timestamp
    moved to another conversation) borrows the scores of its candidate when there is one;
    otherwise it is listed unscored, `not requested` (scored before, score not kept) or
    `unset timestamp`.
    """
    by_ns: dict[int, LatestScore] = {}
    by_path: dict[str, LatestScore] = {}
    for score in kept:
        if score.timestamp_ns:
            by_ns[score.timestamp_ns] = score
        else:
            by_path[score.node_path] = score
    listed: list[LatestScore] = []
    for message in messages:
        if message.role != "assistant" or message.memory:
            continue
        ns = message.timestamp_ns
        found = by_ns.get(ns) if ns else by_path.get(message.node_path)
        if found is not None and not ns and found.content != message.content:
            found = None  # another reply sat at this path when it was scored
        candidate = candidates.get(ns) if ns else None
        if found is None and candidate is not None:
            found = LatestScore(
                conversation_id, ns, message.node_path, message.content, True,
                candidate.divergence, candidate.peak, True, NotCandidateReason.NONE, 0,
                candidate.scored_at_ns,
            )  # fmt: skip
        if found is None:
            reason = NotCandidateReason.NOT_REQUESTED if ns else NotCandidateReason.UNSET_TIMESTAMP
            found = LatestScore(
                conversation_id,
                ns,
                message.node_path,
                message.content,
                False,
                0.0,
                0.0,
                False,
                reason,
            )
        found = dataclasses.replace(
            found,
            conversation_id=conversation_id,
            node_path=message.node_path,
            content=message.content,
        )
        if ns and ns in trained:
            found = dataclasses.replace(
                found, candidate=False, reason=NotCandidateReason.ALREADY_TRAINED
            )
        listed.append(found)
    return listed
