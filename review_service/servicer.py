"""gRPC in and out for the Review and its Activities.

Invariants:
- domain errors leave as exceptions; the core's status interceptor maps each to exactly one
  status code with `google.rpc` details (`ftreview.core.status`), and anything else to
  INTERNAL, so a client never sees UNKNOWN or a Python traceback;
- this is the only module that converts between wire messages and domain values.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import review_pb2, review_pb2_grpc, scorer_pb2

from .config import LearnConfig
from .errors import InvalidArgument
from .feed import CandidateEvent, EventKind
from .model import Candidate, LatestScore, Status, TrainedEntry
from .review import Review

# -- conversions ----------------------------------------------------------------------

_STATUS_TO_WIRE = {
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
_ROLE_TO_WIRE = {"system": 1, "user": 2, "assistant": 3, "tool": 4}
_EVENT_TO_WIRE = {
    kind: review_pb2.CandidateEventKind.Value(f"CANDIDATE_EVENT_KIND_{kind.name}")
    for kind in EventKind
}


def candidate_to_wire(c: Candidate) -> review_pb2.Candidate:
    message = review_pb2.Candidate(
        timestamp=to_timestamp(c.timestamp_ns),
        conversation_id=c.conversation_id,
        content=c.content,
        divergence=c.divergence,
        peak=c.peak,
        alternate=c.alternate,
        status=_STATUS_TO_WIRE[c.status],
        reject_reason=c.reject_reason,
    )
    message.scored_at.CopyFrom(to_timestamp(c.scored_at_ns))
    if c.decided_at_ns:
        message.decided_at.CopyFrom(to_timestamp(c.decided_at_ns))
    for t in c.tokens:
        message.tokens.add(
            token_id=t.token_id,
            text=t.text,
            logprob_with_memories=t.logprob_with_memories,
            logprob_without_memories=t.logprob_without_memories,
            divergence=t.divergence,
        )
    for m in c.context:
        item = message.context.add(role=_ROLE_TO_WIRE.get(m.role, 0), content=m.content)
        item.timestamp.CopyFrom(to_timestamp(m.timestamp_ns))
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
        reason=cast(scorer_pb2.NotCandidateReason, s.reason),
        context_tokens_cut=s.context_tokens_cut,
    )


def trained_to_wire(e: TrainedEntry) -> review_pb2.TrainedEntry:
    return review_pb2.TrainedEntry(
        timestamp=to_timestamp(e.timestamp_ns),
        conversation_id=e.conversation_id,
        trained_at=to_timestamp(e.trained_at_ns),
        destination=e.destination,
        job_id=e.job_id,
    )


def config_to_wire(config: LearnConfig, path: str) -> review_pb2.Config:
    return review_pb2.Config(
        threshold=config.threshold,
        finetune_url=config.finetune_url,
        config_path=path,
        finetune_timeout=config.finetune_timeout,
        model=config.model,
    )


def event_to_wire(event: CandidateEvent) -> review_pb2.WatchCandidatesResponse:
    kind = cast(review_pb2.CandidateEventKind, _EVENT_TO_WIRE[event.kind])
    message = review_pb2.WatchCandidatesResponse(kind=kind)
    if event.candidate is not None:
        message.candidate.CopyFrom(candidate_to_wire(event.candidate))
    if isinstance(event.stats, scorer_pb2.FinetuneScoringStats):
        message.stats.CopyFrom(event.stats)
    return message


def _timestamps(values: Any) -> list[int]:
    return [timestamp_ns(ts) for ts in values]


def _statuses(values: Any) -> list[Status]:
    out = []
    for value in values:
        if value not in _STATUS_FROM_WIRE:
            raise InvalidArgument("statuses", f"unknown candidate status {value}")
        out.append(_STATUS_FROM_WIRE[value])
    return out


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class ReviewServicer(review_pb2_grpc.ReviewServicer):  # type: ignore[misc, unused-ignore]
    def __init__(self, review: Review) -> None:
        self._review = review

    async def Ingest(
        self, request: review_pb2.IngestRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.IngestResponse:
        if not request.HasField("conversation"):
            raise InvalidArgument("conversation", "required")
        activity_id, cid = await self._review.ingest(request.conversation, request.request_id)
        return review_pb2.IngestResponse(activity_id=activity_id, conversation_id=cid)

    async def SyncCandidates(
        self, request: review_pb2.SyncCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.SyncCandidatesResponse:
        ids = await self._review.sync_candidates(list(request.conversation_ids))
        return review_pb2.SyncCandidatesResponse(activity_ids=ids)

    async def ListCandidates(
        self, request: review_pb2.ListCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ListCandidatesResponse:
        order = "time" if request.order == review_pb2.CANDIDATE_ORDER_TIME else "divergence"
        found = self._review.candidates(_statuses(request.statuses), order, request.conversation_id)
        return review_pb2.ListCandidatesResponse(candidates=[candidate_to_wire(c) for c in found])

    async def WatchCandidates(
        self, request: review_pb2.WatchCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[review_pb2.WatchCandidatesResponse]:
        # Events are shared by every watcher; convert each one once, not once per watcher.
        async for event in self._review.watch():
            wire = getattr(event, "_wire", None)
            if wire is None:
                wire = event_to_wire(event)
                object.__setattr__(event, "_wire", wire)
            yield wire

    async def Approve(
        self, request: review_pb2.ApproveRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ApproveResponse:
        done = await self._review.approve(_timestamps(request.timestamps))
        return review_pb2.ApproveResponse(candidates=[candidate_to_wire(c) for c in done])

    async def Reject(
        self, request: review_pb2.RejectRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.RejectResponse:
        done = await self._review.reject(_timestamps(request.timestamps), request.reason)
        return review_pb2.RejectResponse(candidates=[candidate_to_wire(c) for c in done])

    async def ClearDecision(
        self, request: review_pb2.ClearDecisionRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ClearDecisionResponse:
        done = await self._review.clear_decision(_timestamps(request.timestamps))
        return review_pb2.ClearDecisionResponse(candidates=[candidate_to_wire(c) for c in done])

    async def GenerateAlternate(
        self,
        request: review_pb2.ReviewGenerateAlternateRequest,
        context: grpc.aio.ServicerContext,
    ) -> review_pb2.ReviewGenerateAlternateResponse:
        if not request.HasField("timestamp"):
            raise InvalidArgument("timestamp", "required")
        candidate = await self._review.generate_alternate(
            timestamp_ns(request.timestamp),
            request.regenerate,
            request.request_id,
            context.time_remaining(),
        )
        return review_pb2.ReviewGenerateAlternateResponse(candidate=candidate_to_wire(candidate))

    async def Send(
        self, request: review_pb2.SendRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.SendResponse:
        report = await self._review.send(
            _timestamps(request.timestamps), request.request_id, _deadline(context)
        )
        return review_pb2.SendResponse(
            accepted=[to_timestamp(ts) for ts in report.accepted],
            failed=[
                review_pb2.SendFailure(timestamp=to_timestamp(ts), reason=reason)
                for ts, reason in report.failed
            ],
            job_id=report.job_id,
            activity_id=report.activity_id,
        )

    async def Export(
        self, request: review_pb2.ExportRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ExportResponse:
        formats = {
            review_pb2.EXPORT_FORMAT_UNSPECIFIED: "openai",
            review_pb2.EXPORT_FORMAT_OPENAI: "openai",
            review_pb2.EXPORT_FORMAT_TRL: "trl",
        }
        if request.format not in formats:
            raise InvalidArgument("format", f"unknown export format {request.format}")
        result = await self._review.export(
            formats[request.format],
            _statuses(request.statuses),
            _timestamps(request.timestamps),
            request.mark_trained,
        )
        return review_pb2.ExportResponse(
            jsonl=result.jsonl,
            count=len(result.timestamps),
            timestamps=[to_timestamp(ts) for ts in result.timestamps],
        )

    async def GetStats(
        self, request: review_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.GetStatsResponse:
        view = self._review.stats(request.conversation_id)
        response = review_pb2.GetStatsResponse(
            conversations=view.conversations,
            pending=view.pending,
            approved=view.approved,
            rejected=view.rejected,
            trained=view.trained,
            threshold=view.threshold,
        )
        if view.last is not None:
            response.last.CopyFrom(view.last)
        if request.conversation_id:
            scores = await self._review.reply_scores(request.conversation_id)
            response.replies.extend(latest_score_to_wire(s) for s in scores)
        return response

    async def GetConfig(
        self, request: review_pb2.GetConfigRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.GetConfigResponse:
        config = self._review.load_config()
        path = str(self._review.config_file.path)
        return review_pb2.GetConfigResponse(config=config_to_wire(config, path))

    async def SetThreshold(
        self, request: review_pb2.SetThresholdRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.SetThresholdResponse:
        which = request.WhichOneof("change")
        if which == "value":
            config = await self._review.set_threshold(value=request.value)
        elif which == "steps":
            config = await self._review.set_threshold(steps=request.steps)
        else:
            raise InvalidArgument("change", "set `value` or `steps`")
        path = str(self._review.config_file.path)
        return review_pb2.SetThresholdResponse(config=config_to_wire(config, path))

    async def ListTrained(
        self, request: review_pb2.ListTrainedRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ListTrainedResponse:
        entries = self._review.trained()
        return review_pb2.ListTrainedResponse(entries=[trained_to_wire(e) for e in entries])
