"""The review screen's one door to the services: `ftreview.client`, in the board's terms.

Everything the screen asks of the Review and the Scorer goes through `ServiceLink`, which
calls the typed async clients and turns their wire messages into the plain views of
`ftreview.tui.board` and `ftreview.tui.activities`. The screen therefore never touches a
generated message or a gRPC error: failures arrive as `ftreview.errors.FtreviewError`
subclasses (the clients' boundary), and `Unavailable` is what the screen treats as "the
service went away, reconnect".

Each `ServiceLink` makes fresh channels. A restarted service is reached on the next attempt
rather than after gRPC's own reconnect backoff, which grows to minutes.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import grpc

from ftreview.client import AsyncReviewClient, grounding_name
from ftreview.core.wire import timestamp_ns
from ftreview.errors import FtreviewError, Unavailable, Unimplemented
from ftreview.tui.activities import ActivityEvent, ActivityEventKind, ActivityState, ActivityView
from ftreview.tui.views import (
    CandidateView,
    ConfigView,
    DecisionView,
    GroundingSpanView,
    JobView,
    MemoryView,
    Status,
    TokenView,
    TurnView,
)
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2

_STATUS_FROM_PB = {
    review_pb2.CANDIDATE_STATUS_PENDING: Status.PENDING,
    review_pb2.CANDIDATE_STATUS_APPROVED: Status.APPROVED,
    review_pb2.CANDIDATE_STATUS_REJECTED: Status.REJECTED,
    review_pb2.CANDIDATE_STATUS_SENT: Status.SENT,
}

_ACTIVITY_STATE_FROM_PB = {
    activity_pb2.ACTIVITY_STATE_RUNNING: ActivityState.RUNNING,
    activity_pb2.ACTIVITY_STATE_SUCCEEDED: ActivityState.SUCCEEDED,
    activity_pb2.ACTIVITY_STATE_FAILED: ActivityState.FAILED,
    activity_pb2.ACTIVITY_STATE_CANCELLED: ActivityState.CANCELLED,
}

_ACTIVITY_EVENT_FROM_PB = {
    activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT: ActivityEventKind.SNAPSHOT,
    activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END: ActivityEventKind.SNAPSHOT_END,
    activity_pb2.ACTIVITY_EVENT_KIND_STARTED: ActivityEventKind.STARTED,
    activity_pb2.ACTIVITY_EVENT_KIND_PROGRESS: ActivityEventKind.PROGRESS,
    activity_pb2.ACTIVITY_EVENT_KIND_ENDED: ActivityEventKind.ENDED,
}


def candidate_view(message: review_pb2.Candidate) -> CandidateView:
    return CandidateView(
        timestamp_ns=timestamp_ns(message.timestamp),
        conversation_id=message.conversation_id,
        content=message.content,
        divergence=message.divergence,
        peak=message.peak,
        status=_STATUS_FROM_PB.get(message.status, Status.PENDING),
        tokens=tuple(TokenView(t.text, t.divergence) for t in message.tokens),
        alternate=message.alternate,
        reject_reason=message.reject_reason,
        question=message.question,
        memories=tuple(MemoryView(m.node_path, m.content, m.attribution) for m in message.memories),
        send_error=message.send_error,
        job_id=message.job_id,
        grounding=grounding_name(message.grounding),
        grounding_spans=tuple(
            GroundingSpanView(s.start, s.end, grounding_name(s.kind), s.node_path, s.value)
            for s in message.grounding_spans
        ),
        supersedes=timestamp_ns(message.supersedes) if message.HasField("supersedes") else 0,
        conflicts_with=tuple(timestamp_ns(t) for t in message.conflicts_with),
        change=message.change,
    )


def activity_view(message: activity_pb2.Activity) -> ActivityView:
    return ActivityView(
        id=message.id,
        label=message.label,
        kind=message.kind,
        done=message.done,
        total=message.total,
        state=_ACTIVITY_STATE_FROM_PB.get(message.state, ActivityState.RUNNING),
        error=message.error,
        detail=message.detail,
        new_candidates=message.result.new_candidates,
    )


@dataclass(frozen=True)
class CandidateEvent:
    """One WatchCandidates event: `kind` is the proto's name without its prefix."""

    kind: str
    candidate: CandidateView | None
    stats: scorer_pb2.FinetuneScoringStats | None


@dataclass(frozen=True)
class Overview:
    """What the screen shows beside the list: the threshold and the last scoring run."""

    config: ConfigView
    last_stats: scorer_pb2.FinetuneScoringStats | None


@dataclass(frozen=True)
class SendOutcome:
    accepted: int
    failed: tuple[tuple[int, str], ...]
    job_id: str


def config_view(message: review_pb2.Config) -> ConfigView:
    return ConfigView(
        threshold=message.threshold,
        config_path=message.config_path,
        finetune_url=message.finetune_url,
        reject_reasons=tuple(message.reject_reasons),
        model=message.model,
    )


_JOB_STATES = {
    review_pb2.TRAINING_JOB_STATE_QUEUED: "queued",
    review_pb2.TRAINING_JOB_STATE_RUNNING: "running",
    review_pb2.TRAINING_JOB_STATE_SUCCEEDED: "succeeded",
    review_pb2.TRAINING_JOB_STATE_FAILED: "failed",
}


def job_view(message: review_pb2.TrainingJob) -> JobView:
    def optional(name: str) -> float | None:
        return float(getattr(message, name)) if message.HasField(name) else None

    return JobView(
        id=message.id,
        state=_JOB_STATES.get(message.state, "unknown"),
        examples=message.examples,
        divergence_before=optional("trained_divergence_before"),
        divergence_after=optional("trained_divergence_after"),
        recall=optional("recall"),
        error=message.error,
    )


_ROLES = {
    conversation_pb2.ROLE_SYSTEM: "system",
    conversation_pb2.ROLE_USER: "user",
    conversation_pb2.ROLE_ASSISTANT: "assistant",
    conversation_pb2.ROLE_TOOL: "tool",
}


def turn_views(conversation: conversation_pb2.Conversation) -> list[TurnView]:
    """The conversation's messages in order; a memory branch makes everything under it memory."""
    turns: list[TurnView] = []

    def walk(nodes: Iterable[conversation_pb2.Node], prefix: str, memory: bool) -> None:
        for index, node in enumerate(nodes):
            path = f"{prefix}[{index}]"
            inside = memory or node.memory
            if node.HasField("branch"):
                walk(node.branch.children, f"{path}.children", inside)
            else:
                turns.append(
                    TurnView(
                        role=_ROLES.get(node.leaf.role, "system"),
                        content=node.leaf.content,
                        timestamp_ns=timestamp_ns(node.timestamp)
                        if node.HasField("timestamp")
                        else 0,
                        memory=inside,
                        path=path,
                    )
                )

    walk(conversation.nodes, "nodes", False)
    return turns


def plain_problem(error: BaseException) -> str:
    """What went wrong with the connection, in words a reviewer can act on (no gRPC text)."""
    if isinstance(error, Unavailable):
        return "it is not answering (stopped or restarting)"
    if isinstance(error, Unimplemented):
        return "it is an older version without this feature"
    if isinstance(error, FtreviewError) and error.code is not None:
        return f"it refused the request ({error.code.name.lower().replace('_', ' ')})"
    return "the connection broke"


class ServiceLink:
    """A fresh client of the Review (and through it the Scorer), for one connection attempt."""

    def __init__(
        self,
        review_address: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        reviewer: str = "",
    ) -> None:
        self.review_address = review_address
        # Who decides on this screen, for the Review's decision history.
        self.reviewer = reviewer or _login_name()
        self._review = AsyncReviewClient(review_address, credentials=credentials, token=token)

    async def close(self) -> None:
        await self._review.close()

    async def overview(self) -> Overview:
        config = await self._review.get_config()
        stats = await self._review.get_stats()
        last = stats.last if stats.HasField("last") else None
        has_run = last is not None and (last.responses_seen or last.error or last.taken_at.seconds)
        return Overview(config_view(config), last if has_run and last else None)

    async def watch_candidates(self) -> AsyncIterator[CandidateEvent]:
        async for event in self._review.watch_candidates():
            kind = review_pb2.CandidateEventKind.Name(event.kind).removeprefix(
                "CANDIDATE_EVENT_KIND_"
            )
            yield CandidateEvent(
                kind=kind,
                candidate=candidate_view(event.candidate) if event.HasField("candidate") else None,
                stats=event.stats if event.HasField("stats") else None,
            )

    async def watch_activities(self) -> AsyncIterator[ActivityEvent]:
        """The activities of the Review (sending) and the Scorer (scoring, alternates), merged."""
        async for event in self._review.watch_activities():
            kind = _ACTIVITY_EVENT_FROM_PB.get(event.kind)
            if kind is None:
                continue
            activity = activity_view(event.activity) if event.HasField("activity") else None
            yield ActivityEvent(kind, activity)

    async def decide(
        self, timestamps: Iterable[int], status: Status, reason: str = ""
    ) -> list[CandidateView]:
        """Set candidates' status (pending undoes a decision); returns them as stored.
        `reason`: a rejection's reason, or an approval's note (kept in the history)."""
        wanted = list(timestamps)
        if status is Status.APPROVED:
            changed = await self._review.approve(wanted, reviewer=self.reviewer, note=reason)
        elif status is Status.REJECTED:
            changed = await self._review.reject(wanted, reason=reason, reviewer=self.reviewer)
        elif status is Status.PENDING:
            changed = await self._review.clear_decision(wanted, reviewer=self.reviewer)
        else:
            raise ValueError(f"cannot set status {status.value} from the review screen")
        return [candidate_view(c) for c in changed]

    async def decisions(self, limit: int = 200) -> list[DecisionView]:
        """The decision history, newest first (the `limit` most recent)."""
        return [decision_view(d) for d in await self._review.list_decisions(limit=limit)]

    async def generate_alternate(self, timestamp: int) -> CandidateView:
        return candidate_view(await self._review.generate_alternate(timestamp))

    async def send(self) -> SendOutcome:
        response = await self._review.send()
        return SendOutcome(
            accepted=len(response.accepted),
            failed=tuple((timestamp_ns(f.timestamp), f.reason) for f in response.failed),
            job_id=response.job_id,
        )

    async def set_threshold(self, steps: int) -> ConfigView:
        return config_view(await self._review.set_threshold(steps=steps))

    async def config(self) -> ConfigView:
        return config_view(await self._review.get_config())

    async def conversation(self, conversation_id: str) -> list[TurnView]:
        return turn_views(await self._review.get_conversation(conversation_id))

    async def last_job(self) -> JobView | None:
        """The newest training job, or None (also when the Review has no job list)."""
        try:
            jobs = await self._review.list_jobs()
        except Unimplemented:
            return None
        return job_view(jobs[0]) if jobs else None


def decision_view(decision: review_pb2.Decision) -> DecisionView:
    status = _STATUS_FROM_PB.get(decision.status)
    return DecisionView(
        timestamp_ns=timestamp_ns(decision.timestamp),
        status=status.value if status else "unknown",
        reason=decision.reason,
        reviewer=decision.reviewer,
        decided_at_ns=timestamp_ns(decision.decided_at),
        conversation_id=decision.conversation_id,
        content=decision.content,
    )


def _login_name() -> str:
    """FTREVIEW_REVIEWER, else the login name ("" when neither is known)."""
    named = os.environ.get("FTREVIEW_REVIEWER", "")
    if named:
        return named
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return ""
