"""The Scorer's wire messages as the Review's domain values, and back: conversations,
scoring statistics, reasons and attributions (the Scorer adapter's half of the conversion;
the servicer's half is `api.convert`).

Invariants:
- a conversation is checked by the shared model's rules and flattened once, here;
- a reason this Review does not know yet (a newer Scorer) reads as "none given".
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ftreview.core.values import NS_PER_SECOND
from ftreview.core.wire import to_timestamp
from ftreview.v1 import conversation_pb2, scorer_pb2

from review_service.adapters import wire_conversation
from review_service.domain.model import (
    Conversation,
    MemoryAttribution,
    NotCandidateReason,
    ScoringStats,
)

_REASON_FROM_WIRE = {
    int(scorer_pb2.NOT_CANDIDATE_REASON_UNSPECIFIED): NotCandidateReason.NONE,
    **{
        int(scorer_pb2.NotCandidateReason.Value(f"NOT_CANDIDATE_REASON_{reason.name}")): reason
        for reason in NotCandidateReason
        if reason is not NotCandidateReason.NONE
    },
}
REASON_TO_WIRE = {reason: wire for wire, reason in _REASON_FROM_WIRE.items()}


def conversation_from_wire(wire: conversation_pb2.Conversation) -> Conversation:
    """A checked conversation with an id (the given one, or one derived from its content),
    flattened once; refuses a node the Scorer could not render, naming it."""
    wire_conversation.validate(wire)
    wire = wire_conversation.with_id(wire)
    messages = tuple(wire_conversation.flatten(wire))
    return Conversation(wire.id, messages, wire.SerializeToString(deterministic=True))


class WireConversations:
    """The `ConversationCodec` port: stored conversations are kept in their wire encoding."""

    def decode(self, body: bytes) -> Conversation:
        return conversation_from_wire(conversation_pb2.Conversation.FromString(body))

    def asking(self, base: Conversation | None, question: str) -> Conversation:
        wire = conversation_pb2.Conversation(id=base.id if base is not None else "ask")
        if base is not None:
            wire.MergeFromString(base.body)
        wire.nodes.add(
            leaf=conversation_pb2.Leaf(role=conversation_pb2.ROLE_USER, content=question)
        )
        return conversation_from_wire(wire)

    def failed_stats(
        self, conversation_id: str, threshold: float, error: str, taken_at_ns: int
    ) -> ScoringStats:
        return failed_stats(conversation_id, threshold, error, taken_at_ns)


def conversation_to_wire(conversation: Conversation) -> conversation_pb2.Conversation:
    return conversation_pb2.Conversation.FromString(conversation.body)


def stats_from_wire(wire: scorer_pb2.FinetuneScoringStats) -> ScoringStats:
    """The Scorer's stats as the Review keeps them: the message itself, stamped with the
    time it was taken (now, from a Scorer that did not say)."""
    if not wire.HasField("taken_at"):
        wire = _copy(wire)
        wire.taken_at.CopyFrom(to_timestamp(time.time_ns()))
    taken = wire.taken_at.seconds * NS_PER_SECOND + wire.taken_at.nanos
    return ScoringStats(wire.conversation_id, taken, wire.SerializeToString(deterministic=True))


def stats_to_wire(stats: ScoringStats) -> scorer_pb2.FinetuneScoringStats:
    return scorer_pb2.FinetuneScoringStats.FromString(stats.body)


def failed_stats(
    conversation_id: str, threshold: float, error: str, taken_at_ns: int
) -> ScoringStats:
    return stats_from_wire(
        scorer_pb2.FinetuneScoringStats(
            conversation_id=conversation_id,
            threshold=threshold,
            error=error,
            taken_at=to_timestamp(taken_at_ns),
        )
    )


def _copy(wire: scorer_pb2.FinetuneScoringStats) -> scorer_pb2.FinetuneScoringStats:
    copy = scorer_pb2.FinetuneScoringStats()
    copy.CopyFrom(wire)
    return copy


def reason_from_wire(value: int) -> NotCandidateReason:
    # A reason this Review does not know yet (a newer Scorer) reads as "none given".
    return _REASON_FROM_WIRE.get(int(value), NotCandidateReason.NONE)


def attributions_from_wire(
    values: Iterable[scorer_pb2.MemoryAttribution],
) -> tuple[MemoryAttribution, ...]:
    found = [MemoryAttribution(a.node_path, a.content, a.attribution) for a in values]
    return tuple(sorted(found, key=lambda a: -a.attribution))
