"""Conversion between wire messages and the Review's domain values (the servicer's half;
the Scorer adapter has the other, `scorer_grpc`).

Invariants:
- this module and `scorer_grpc` are the only ones of the Review that touch protobuf: the
  domain sees `model` values only;
- a wire value the domain cannot hold is refused here, naming the field: a timestamp
  outside google.protobuf.Timestamp's range or outside int64 nanoseconds (the store's
  INTEGER), an unknown enum value. So no such value can fail later, deep in SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from ftreview.core.values import NS_PER_SECOND
from ftreview.core.wire import to_timestamp
from ftreview.v1 import review_pb2, scorer_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from review_service.adapters import wire_conversation
from review_service.adapters.scorer_wire import REASON_TO_WIRE, stats_to_wire
from review_service.app.changes_view import CandidateChanges
from review_service.app.config import LearnConfig
from review_service.app.feed import CandidateEvent, EventKind
from review_service.domain.errors import InvalidArgument
from review_service.domain.examples import keyed_reply
from review_service.domain.grounding import Grounding, candidate_grounding
from review_service.domain.jobs import TrainingJob
from review_service.domain.model import (
    MAX_NS,
    MIN_NS,
    Candidate,
    DecisionRecord,
    KnowledgeState,
    LatestScore,
    Status,
    TrainedEntry,
)

# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_INT64_RANGE = "1677-09-21T00:12:43Z .. 2262-04-11T23:47:16Z (int64 nanoseconds)"

STATUS_TO_WIRE = {
    Status.PENDING: review_pb2.CANDIDATE_STATUS_PENDING,
    Status.APPROVED: review_pb2.CANDIDATE_STATUS_APPROVED,
    Status.REJECTED: review_pb2.CANDIDATE_STATUS_REJECTED,
    Status.SENT: review_pb2.CANDIDATE_STATUS_SENT,
    Status.FORGOTTEN: review_pb2.CANDIDATE_STATUS_REJECTED,
}
_STATUS_FROM_WIRE = {
    review_pb2.CANDIDATE_STATUS_PENDING: Status.PENDING,
    review_pb2.CANDIDATE_STATUS_APPROVED: Status.APPROVED,
    review_pb2.CANDIDATE_STATUS_REJECTED: Status.REJECTED,
    review_pb2.CANDIDATE_STATUS_SENT: Status.SENT,
}
KNOWLEDGE_TO_WIRE = {
    KnowledgeState.LIVE: review_pb2.KNOWLEDGE_STATE_LIVE,
    KnowledgeState.SUPERSEDED: review_pb2.KNOWLEDGE_STATE_SUPERSEDED,
    KnowledgeState.RETRACTED: review_pb2.KNOWLEDGE_STATE_RETRACTED,
}
GROUNDING_TO_WIRE = {
    Grounding.SUPPORTED: review_pb2.GROUNDING_SUPPORTED,
    Grounding.BEYOND_MEMORIES: review_pb2.GROUNDING_BEYOND_MEMORIES,
    Grounding.CONTRADICTS_MEMORY: review_pb2.GROUNDING_CONTRADICTS_MEMORY,
}
_ROLE_TO_WIRE = {name: value for value, name in wire_conversation.ROLE_NAMES.items()}
_EVENT_TO_WIRE = {
    kind: review_pb2.CandidateEventKind.Value(f"CANDIDATE_EVENT_KIND_{kind.name}")
    for kind in EventKind
}


# -- from the wire ----------------------------------------------------------------------


def timestamp_from_wire(ts: Timestamp, field: str) -> int:
    """Nanoseconds of a wire timestamp the domain can hold, or InvalidArgument on `field`."""
    if not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS or not 0 <= ts.nanos < NS_PER_SECOND:
        raise InvalidArgument(
            field,
            f"not a valid timestamp (seconds={ts.seconds}, nanos={ts.nanos}); a timestamp lies "
            "in years 0001..9999 with nanos in 0..999999999",
        )
    ns = ts.seconds * NS_PER_SECOND + ts.nanos
    if not MIN_NS <= ns <= MAX_NS:
        raise InvalidArgument(field, f"outside {_INT64_RANGE}, the range a reply can be kept in")
    return ns


def timestamps_from_wire(values: Iterable[Timestamp], field: str = "timestamps") -> list[int]:
    return [timestamp_from_wire(ts, f"{field}[{i}]") for i, ts in enumerate(values)]


def statuses_from_wire(values: Iterable[int]) -> list[Status]:
    out = []
    for i, value in enumerate(values):
        if value not in _STATUS_FROM_WIRE:
            raise InvalidArgument(f"statuses[{i}]", f"unknown candidate status {value}")
        out.append(_STATUS_FROM_WIRE[cast(review_pb2.CandidateStatus, value)])
    return out


# -- to the wire ------------------------------------------------------------------------


def candidate_to_wire(
    c: Candidate, changes: CandidateChanges | None = None
) -> review_pb2.Candidate:
    """Every Approve, Reject and watch event answers with the candidate, context and
    per-token values included: the servicer's largest share of Python time per decision
    (bench/bench_review.py), hence bound `add`s and timestamps set in place. `changes`:
    what it would change (`Review.changes`), computed from the view; none when not given."""
    message = review_pb2.Candidate(
        timestamp=to_timestamp(c.timestamp_ns),
        conversation_id=c.conversation_id,
        content=c.content,
        divergence=c.divergence,
        peak=c.peak,
        alternate=c.alternate,
        status=STATUS_TO_WIRE[c.status],
        reject_reason=c.reject_reason,
        question=c.question,
        send_error=c.send_error,
        job_id=c.job_id,
        scored_at=to_timestamp(c.scored_at_ns),
    )
    if c.decided_at_ns:
        message.decided_at.CopyFrom(to_timestamp(c.decided_at_ns))
    add_token = message.tokens.add
    for t in c.tokens:
        add_token(
            token_id=t.token_id,
            text=t.text,
            logprob_with_memories=t.logprob_with_memories,
            logprob_without_memories=t.logprob_without_memories,
            divergence=t.divergence,
        )
    add_message = message.context.add
    for m in c.context:
        stamp = add_message(role=_ROLE_TO_WIRE.get(m.role, 0), content=m.content).timestamp
        stamp.seconds, stamp.nanos = divmod(m.timestamp_ns, NS_PER_SECOND)
    for a in c.memories:
        message.memories.add(node_path=a.node_path, content=a.content, attribution=a.attribution)
    # Computed on the way out, never stored: it follows the rule of the running version and
    # the latest per-token values.
    grounding = candidate_grounding(c)
    message.grounding = GROUNDING_TO_WIRE[grounding.verdict]
    add_span = message.grounding_spans.add
    for span in grounding.spans:
        add_span(
            start=span.start,
            end=span.end,
            kind=GROUNDING_TO_WIRE[span.kind],
            node_path=span.node_path,
            value=span.value,
        )
    if changes is not None:
        if changes.supersedes is not None:
            message.supersedes.CopyFrom(to_timestamp(changes.supersedes.other_ns))
        for conflict in changes.conflicts:
            message.conflicts_with.add().CopyFrom(to_timestamp(conflict.other_ns))
        message.change = changes.line
    return message


def latest_score_to_wire(s: LatestScore) -> scorer_pb2.ReplyScore:
    return scorer_pb2.ReplyScore(
        timestamp=to_timestamp(s.timestamp_ns),
        node_path=s.node_path,
        content=s.content,
        divergence=s.divergence,
        peak=s.peak,
        scored=s.scored,
        candidate=s.candidate,
        reason=cast(scorer_pb2.NotCandidateReason, REASON_TO_WIRE[s.reason]),
        context_tokens_cut=s.context_tokens_cut,
    )


def decision_to_wire(d: DecisionRecord) -> review_pb2.Decision:
    return review_pb2.Decision(
        timestamp=to_timestamp(d.timestamp_ns),
        status=STATUS_TO_WIRE[d.status],
        reason=d.reason,
        reviewer=d.reviewer,
        decided_at=to_timestamp(d.decided_at_ns),
        conversation_id=d.conversation_id,
        content=d.content,
    )


def trained_to_wire(e: TrainedEntry) -> review_pb2.TrainedEntry:
    message = review_pb2.TrainedEntry(
        timestamp=to_timestamp(e.timestamp_ns),
        conversation_id=e.conversation_id,
        trained_at=to_timestamp(e.trained_at_ns),
        destination=e.destination,
        job_id=e.job_id,
        divergence_before=e.divergence_before,
        divergence_after=e.divergence_after,
        adapter=e.adapter,
        state=KNOWLEDGE_TO_WIRE[e.state],
        reason=e.reason,
        retraction_delivered=e.retraction_delivered,
        comes_back=e.comes_back,
        checked_by_job=e.checked_by_job,
        content=e.content,
    )
    if e.superseded_by_ns:
        message.superseded_by.CopyFrom(to_timestamp(e.superseded_by_ns))
    return message


def job_to_wire(j: TrainingJob) -> review_pb2.TrainingJob:
    """The trainer's figures as relayed (the message they came in), and what the Review
    knows of the job over them."""
    message = review_pb2.TrainingJob.FromString(j.figures)
    message.MergeFrom(
        review_pb2.TrainingJob(
            id=j.id,
            state=cast(review_pb2.TrainingJobState, int(j.state)),
            examples=j.examples,
            adapter=j.adapter,
            error=j.error,
            destination=j.destination,
        )
    )
    keyed: list[review_pb2.ExampleProof | review_pb2.FactCheck] = [*message.per_example]
    for item in [*keyed, *message.retention]:
        ts = keyed_reply(item.idempotency_key)
        if ts is not None and MIN_NS <= ts <= MAX_NS:
            item.timestamp.CopyFrom(to_timestamp(ts))
    if j.created_at_ns:
        message.created_at.CopyFrom(to_timestamp(j.created_at_ns))
    if j.ended_at_ns:
        message.ended_at.CopyFrom(to_timestamp(j.ended_at_ns))
    return message


def config_to_wire(config: LearnConfig, path: str) -> review_pb2.Config:
    return review_pb2.Config(
        threshold=config.threshold,
        finetune_url=config.finetune_url,
        config_path=path,
        finetune_timeout=config.finetune_timeout,
        model=config.model,
        reject_reasons=list(config.reject_reasons),
        target_divergence=config.target_divergence,
        max_drift=config.max_drift,
    )


def event_to_wire(
    event: CandidateEvent, changes: Callable[[Candidate], CandidateChanges] | None = None
) -> review_pb2.WatchCandidatesResponse:
    kind = cast(review_pb2.CandidateEventKind, _EVENT_TO_WIRE[event.kind])
    message = review_pb2.WatchCandidatesResponse(kind=kind)
    if event.candidate is not None:
        found = changes(event.candidate) if changes is not None else None
        message.candidate.CopyFrom(candidate_to_wire(event.candidate, found))
    if event.stats is not None:
        message.stats.CopyFrom(stats_to_wire(event.stats))
    return message
