"""gRPC in and out for the Review and its Activities.

Invariants:
- domain errors leave as exceptions; the core's status interceptor maps each to exactly one
  status code with `google.rpc` details (`ftreview.core.status`), and anything else to
  INTERNAL, so a client never sees UNKNOWN or a Python traceback;
- requests are converted to domain values (`convert`, which refuses what the domain
  cannot hold, naming the field) before the domain sees them, and answers back; the
  domain never sees a wire message.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
from ftreview.core.defaults import MAX_QUESTION_CHARS
from ftreview.core.wire import to_timestamp
from ftreview.v1 import review_pb2, review_pb2_grpc

from review_service.adapters.scorer_wire import (
    conversation_from_wire,
    conversation_to_wire,
    stats_to_wire,
)
from review_service.api.convert import (
    candidate_to_wire,
    config_to_wire,
    decision_to_wire,
    event_to_wire,
    job_to_wire,
    latest_score_to_wire,
    statuses_from_wire,
    timestamp_from_wire,
    timestamps_from_wire,
    trained_to_wire,
)
from review_service.app.review import CandidateFilter, Review
from review_service.domain.errors import InvalidArgument
from review_service.domain.model import Candidate


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class ReviewServicer(review_pb2_grpc.ReviewServicer):  # type: ignore[misc, unused-ignore]
    def __init__(self, review: Review) -> None:
        self._review = review

    def _wire(self, candidate: Candidate) -> review_pb2.Candidate:
        """A candidate as answered, with what it would change (supersedes, conflicts)."""
        return candidate_to_wire(candidate, self._review.changes(candidate))

    async def Ingest(
        self, request: review_pb2.IngestRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.IngestResponse:
        if not request.HasField("conversation"):
            raise InvalidArgument("conversation", "required")
        conversation = conversation_from_wire(request.conversation)
        activity_id, cid = await self._review.ingest(conversation, request.request_id)
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
        which = CandidateFilter(
            statuses=tuple(statuses_from_wire(request.statuses)),
            conversation_id=request.conversation_id,
            search=request.search,
            min_divergence=(request.min_divergence if request.HasField("min_divergence") else None),
            max_divergence=(request.max_divergence if request.HasField("max_divergence") else None),
        )
        found = self._review.candidates(which, order)
        return review_pb2.ListCandidatesResponse(candidates=[self._wire(c) for c in found])

    async def WatchCandidates(
        self, request: review_pb2.WatchCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[review_pb2.WatchCandidatesResponse]:
        # Events are shared by every watcher; convert each one once, not once per watcher.
        async for event in self._review.watch():
            wire = getattr(event, "_wire", None)
            if wire is None:
                wire = event_to_wire(event, self._review.changes)
                object.__setattr__(event, "_wire", wire)
            yield wire

    async def Approve(
        self, request: review_pb2.ApproveRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ApproveResponse:
        done = await self._review.approve(
            timestamps_from_wire(request.timestamps), request.reviewer, request.note
        )
        return review_pb2.ApproveResponse(candidates=[self._wire(c) for c in done])

    async def Reject(
        self, request: review_pb2.RejectRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.RejectResponse:
        done = await self._review.reject(
            timestamps_from_wire(request.timestamps), request.reason, request.reviewer
        )
        return review_pb2.RejectResponse(candidates=[self._wire(c) for c in done])

    async def ClearDecision(
        self, request: review_pb2.ClearDecisionRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ClearDecisionResponse:
        done = await self._review.clear_decision(
            timestamps_from_wire(request.timestamps), request.reviewer
        )
        return review_pb2.ClearDecisionResponse(candidates=[self._wire(c) for c in done])

    async def ListDecisions(
        self, request: review_pb2.ListDecisionsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ListDecisionsResponse:
        found = await self._review.decisions(request.limit)
        return review_pb2.ListDecisionsResponse(decisions=[decision_to_wire(d) for d in found])

    async def GenerateAlternate(
        self,
        request: review_pb2.ReviewGenerateAlternateRequest,
        context: grpc.aio.ServicerContext,
    ) -> review_pb2.ReviewGenerateAlternateResponse:
        if not request.HasField("timestamp"):
            raise InvalidArgument("timestamp", "required")
        candidate = await self._review.generate_alternate(
            timestamp_from_wire(request.timestamp, "timestamp"),
            request.regenerate,
            request.request_id,
            context.time_remaining(),
        )
        return review_pb2.ReviewGenerateAlternateResponse(candidate=self._wire(candidate))

    async def Send(
        self, request: review_pb2.SendRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.SendResponse:
        report = await self._review.send(
            timestamps_from_wire(request.timestamps), request.request_id, _deadline(context)
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
            statuses_from_wire(request.statuses),
            timestamps_from_wire(request.timestamps),
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
            conversations=[stats_to_wire(s) for s in view.conversations],
            pending=view.pending,
            approved=view.approved,
            rejected=view.rejected,
            training=view.training,
            trained=view.trained,
            threshold=view.threshold,
        )
        if view.last is not None:
            response.last.CopyFrom(stats_to_wire(view.last))
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

    async def Forget(
        self, request: review_pb2.ForgetRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ForgetResponse:
        if not request.HasField("timestamp"):
            raise InvalidArgument("timestamp", "required: the trained reply to forget")
        outcome = await self._review.forget(
            timestamp_from_wire(request.timestamp, "timestamp"), request.reason, request.reviewer
        )
        return review_pb2.ForgetResponse(
            entry=trained_to_wire(outcome.entry),
            job_id=outcome.job_id,
            delivery_error=outcome.delivery_error,
        )

    async def ListJobs(
        self, request: review_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ListJobsResponse:
        return review_pb2.ListJobsResponse(jobs=[job_to_wire(j) for j in self._review.jobs()])

    async def Ask(
        self, request: review_pb2.AskRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.AskResponse:
        if len(request.question) > MAX_QUESTION_CHARS:
            raise InvalidArgument(
                "question",
                f"{len(request.question)} characters, at most {MAX_QUESTION_CHARS}",
            )
        try:
            answer = await self._review.ask(
                request.question, request.conversation_id, request.max_new_tokens
            )
        except InvalidArgument as error:
            # The Scorer refuses the conversation the question ends; the caller sent the question.
            if error.field != "conversation":
                raise
            raise InvalidArgument("question", error.description) from error
        return review_pb2.AskResponse(answer=answer.text, adapter=answer.adapter)

    async def GetConversation(
        self, request: review_pb2.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.GetConversationResponse:
        if not request.conversation_id:
            raise InvalidArgument("conversation_id", "required")
        conversation = await self._review.conversation(request.conversation_id)
        return review_pb2.GetConversationResponse(conversation=conversation_to_wire(conversation))
