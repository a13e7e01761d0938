"""The `--json` shapes of single messages (candidates, stats, jobs, ...), as the README
documents them.

Invariant: each shape lists its fields explicitly; a proto3 `optional` number that is unset
is `null`, never 0 (0 is a measurement).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from ftreview.client import activity_state_name, grounding_name, job_state_name, status_name
from ftreview.core.values import format_ns, is_set
from ftreview.core.wire import timestamp_ns
from ftreview.v1 import activity_pb2, review_pb2, scorer_pb2

JsonObject = dict[str, Any]


def optional(message: Message, field: str) -> Any:
    """A proto3 `optional` field (a number or a flag): None when unset."""
    return getattr(message, field) if message.HasField(field) else None


def _time(ns: int) -> str | None:
    return format_ns(ns) if is_set(ns) else None


def stats_json(stats: scorer_pb2.FinetuneScoringStats) -> JsonObject:
    """FinetuneScoringStats, snake_case, every field present."""
    taken = timestamp_ns(stats.taken_at)
    return {
        "conversation_id": stats.conversation_id,
        "responses_seen": stats.responses_seen,
        "responses_scored": stats.responses_scored,
        "responses_above_threshold": stats.responses_above_threshold,
        "max_divergence": stats.max_divergence,
        "threshold": stats.threshold,
        "skipped_unset_timestamp": stats.skipped_unset_timestamp,
        "skipped_already_trained": stats.skipped_already_trained,
        "skipped_too_long": stats.skipped_too_long,
        "skipped_tokenization_mismatch": stats.skipped_tokenization_mismatch,
        "truncated": stats.truncated,
        "error": stats.error,
        "taken_at": format_ns(taken) if is_set(taken) else None,
        "taken_at_ns": taken,
    }


def overall_stats_json(reply: review_pb2.GetStatsResponse) -> JsonObject:
    """`stats --json`: the last run's FinetuneScoringStats fields at the top level, then
    the candidate counts, the current threshold and each conversation's last run."""
    shape = stats_json(reply.last)
    shape.update(
        {
            "current_threshold": reply.threshold,
            "pending": reply.pending,
            "approved": reply.approved,
            "rejected": reply.rejected,
            "training": reply.training,
            "trained": reply.trained,
            "conversations": [stats_json(s) for s in reply.conversations],
            "totals": stats_totals_json(reply.conversations),
        }
    )
    return shape


def stats_totals_json(runs: Sequence[scorer_pb2.FinetuneScoringStats]) -> JsonObject:
    """The last runs of all conversations added up (`max_divergence`: the largest;
    null when there are none)."""
    return {
        "conversations": len(runs),
        "responses_seen": sum(s.responses_seen for s in runs),
        "responses_scored": sum(s.responses_scored for s in runs),
        "responses_above_threshold": sum(s.responses_above_threshold for s in runs),
        "max_divergence": max((s.max_divergence for s in runs), default=None),
        "skipped": sum(skipped(s) for s in runs),
        "errors": sum(1 for s in runs if s.error),
    }


def skipped(stats: scorer_pb2.FinetuneScoringStats) -> int:
    return (
        stats.skipped_unset_timestamp
        + stats.skipped_already_trained
        + stats.skipped_too_long
        + stats.skipped_tokenization_mismatch
    )


def candidate_json(candidate: review_pb2.Candidate) -> JsonObject:
    ns = timestamp_ns(candidate.timestamp)
    decided = timestamp_ns(candidate.decided_at)
    return {
        "timestamp_ns": ns,
        "timestamp": format_ns(ns),
        "conversation_id": candidate.conversation_id,
        "status": status_name(candidate.status),
        "divergence": candidate.divergence,
        "peak": candidate.peak,
        "content": candidate.content,
        "alternate": candidate.alternate,
        "reject_reason": candidate.reject_reason,
        "scored_at": format_ns(timestamp_ns(candidate.scored_at)),
        "decided_at": format_ns(decided) if is_set(decided) else None,
        "question": candidate.question,
        "memories": [
            {"content": m.content, "attribution": m.attribution, "node_path": m.node_path}
            for m in sorted(candidate.memories, key=lambda m: -m.attribution)
        ],
        "send_error": candidate.send_error,
        "job_id": candidate.job_id,
        "grounding": grounding_name(candidate.grounding) or None,
        "grounding_spans": [
            {
                "start": s.start,
                "end": s.end,
                "text": candidate.content[s.start : s.end],
                "kind": grounding_name(s.kind) or None,
                "node_path": s.node_path,
                "value": s.value,
            }
            for s in candidate.grounding_spans
        ],
        # What approving it would change: the trained fact it replaces, the undecided
        # candidates that say otherwise (reply ids, as `timestamp_ns`), what differs.
        "supersedes": (
            timestamp_ns(candidate.supersedes) if candidate.HasField("supersedes") else None
        ),
        "conflicts_with": [timestamp_ns(t) for t in candidate.conflicts_with],
        "change": candidate.change,
    }


def config_json(config: review_pb2.Config) -> JsonObject:
    return {
        "threshold": config.threshold,
        "finetune_url": config.finetune_url,
        "finetune_timeout": config.finetune_timeout,
        "model": config.model,
        "config_path": config.config_path,
    }


def trained_json(entry: review_pb2.TrainedEntry) -> JsonObject:
    ns = timestamp_ns(entry.timestamp)
    return {
        "timestamp_ns": ns,
        "timestamp": format_ns(ns),
        "conversation_id": entry.conversation_id,
        "trained_at": format_ns(timestamp_ns(entry.trained_at)),
        "destination": entry.destination,
        "job_id": entry.job_id,
        "divergence_before": optional(entry, "divergence_before"),
        "divergence_after": optional(entry, "divergence_after"),
        "adapter": entry.adapter,
    }


def decision_json(decision: review_pb2.Decision) -> JsonObject:
    """One decision of the history; `status` what the candidate became ("pending": undone)."""
    at = timestamp_ns(decision.decided_at)
    return {
        "timestamp_ns": timestamp_ns(decision.timestamp),
        "status": status_name(decision.status),
        "reason": decision.reason,
        "reviewer": decision.reviewer,
        "decided_at_ns": at,
        "decided_at": _time(at),
        "conversation_id": decision.conversation_id,
        "content": decision.content,
    }


def proof_json(proof: review_pb2.ExampleProof) -> JsonObject:
    """What the trainer measured on one reply; `learnt` null when it does not say."""
    return {
        "idempotency_key": proof.idempotency_key,
        "learnt": optional(proof, "learnt"),
        "fact": proof.fact,
        "reason": proof.reason,
        "divergence_before": optional(proof, "divergence_before"),
        "divergence_after": optional(proof, "divergence_after"),
        "answer_before": proof.answer_before,
        "answer_after": proof.answer_after,
    }


def fact_check_json(check: review_pb2.FactCheck) -> JsonObject:
    return {
        "idempotency_key": check.idempotency_key,
        "timestamp_ns": timestamp_ns(check.timestamp) if check.HasField("timestamp") else None,
        "comes_back": check.comes_back,
        "retracted": check.retracted,
        "answer": check.answer,
        "fact": check.fact,
    }


def job_json(job: review_pb2.TrainingJob) -> JsonObject:
    created, ended = timestamp_ns(job.created_at), timestamp_ns(job.ended_at)
    return {
        "id": job.id,
        "state": job_state_name(job.state),
        "examples": job.examples,
        "epochs": job.epochs,
        "adapter": job.adapter,
        "trained_divergence_before": optional(job, "trained_divergence_before"),
        "trained_divergence_after": optional(job, "trained_divergence_after"),
        "recall": optional(job, "recall"),
        "generic_loglik_change": optional(job, "generic_loglik_change"),
        "learnt": optional(job, "learnt"),
        "drift": optional(job, "drift"),
        "general_retention": optional(job, "general_retention"),
        "per_example": [proof_json(p) for p in job.per_example],
        "kind": job.kind or None,
        "continued_from": job.continued_from,
        "facts_checked": optional(job, "facts_checked"),
        "facts_kept": optional(job, "facts_kept"),
        "retention": [fact_check_json(c) for c in job.retention],
        "error": job.error,
        "destination": job.destination,
        "created_at_ns": created,
        "created_at": _time(created),
        "ended_at_ns": ended,
        "ended_at": _time(ended),
    }


def ask_json(question: str, conversation_id: str, reply: review_pb2.AskResponse) -> JsonObject:
    return {
        "question": question,
        "conversation_id": conversation_id or None,
        "answer": reply.answer,
        "adapter": reply.adapter or None,
    }


def send_json(reply: review_pb2.SendResponse) -> JsonObject:
    return {
        "accepted": [timestamp_ns(t) for t in reply.accepted],
        "failed": [
            {"timestamp_ns": timestamp_ns(f.timestamp), "reason": f.reason} for f in reply.failed
        ],
        "job_id": reply.job_id,
        "activity_id": reply.activity_id,
    }


def activity_json(activity: activity_pb2.Activity) -> JsonObject:
    ended = timestamp_ns(activity.ended_at)
    return {
        "id": activity.id,
        "kind": activity.kind,
        "label": activity.label,
        "state": activity_state_name(activity.state),
        "done": activity.done,
        "total": activity.total,
        "detail": activity.detail,
        "error": activity.error,
        "started_at": format_ns(timestamp_ns(activity.started_at)),
        "ended_at": format_ns(ended) if is_set(ended) else None,
    }
