"""Fake servers for the client tests: real gRPC on 127.0.0.1 port 0, with
servicers that record what they were sent and answer what a test tells them to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
from ftreview.v1 import (
    activity_pb2,
    activity_pb2_grpc,
    conversation_pb2,
    review_pb2,
    review_pb2_grpc,
    scorer_pb2,
    scorer_pb2_grpc,
)
from grpc_status import rpc_status


class FakeReview(review_pb2_grpc.ReviewServicer):
    """Records every request; `fail` makes the next calls abort with a google.rpc.Status."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.fail: Any = None  # a google.rpc.status_pb2.Status
        self.candidates: list[review_pb2.Candidate] = []
        self.watch_events: list[review_pb2.WatchCandidatesResponse] = []
        self.watch_cancelled = False

    def _answer(self, name: str, request: Any, context: grpc.ServicerContext, reply: Any) -> Any:
        self.requests.append((name, request))
        if self.fail is not None:
            context.abort_with_status(rpc_status.to_status(self.fail))
        return reply

    def ListCandidates(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = review_pb2.ListCandidatesResponse(candidates=self.candidates)
        return self._answer("ListCandidates", request, context, reply)

    def Approve(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = review_pb2.ApproveResponse(
            candidates=[
                review_pb2.Candidate(timestamp=t, status=review_pb2.CANDIDATE_STATUS_APPROVED)
                for t in request.timestamps
            ]
        )
        return self._answer("Approve", request, context, reply)

    def SetThreshold(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = review_pb2.SetThresholdResponse(config=review_pb2.Config(threshold=1e-6))
        return self._answer("SetThreshold", request, context, reply)

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("Export", request, context, review_pb2.ExportResponse())

    def GetConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = review_pb2.GetConfigResponse(config=review_pb2.Config(threshold=1e-7))
        return self._answer("GetConfig", request, context, reply)

    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = review_pb2.ListJobsResponse(jobs=[review_pb2.TrainingJob(id="job-1")])
        return self._answer("ListJobs", request, context, reply)

    def Ask(self, request: Any, context: grpc.ServicerContext) -> Any:
        reply = review_pb2.AskResponse(answer=f"echo: {request.question}", adapter="v1")
        return self._answer("Ask", request, context, reply)

    def GetConversation(self, request: Any, context: grpc.ServicerContext) -> Any:
        conversation = conversation_pb2.Conversation(id=request.conversation_id)
        reply = review_pb2.GetConversationResponse(conversation=conversation)
        return self._answer("GetConversation", request, context, reply)

    def WatchCandidates(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[review_pb2.WatchCandidatesResponse]:
        self.requests.append(("WatchCandidates", request))
        # The server may stop resuming this generator once the client is gone, so the
        # termination callback, not the generator, records the cancellation.
        context.add_callback(self._terminated)
        yield from self.watch_events
        # Then stay open, as the real stream does, until the client goes away.
        deadline = time.monotonic() + 10
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _terminated(self) -> None:
        self.watch_cancelled = True


class FakeActivities(activity_pb2_grpc.ActivitiesServicer):
    """Sends `events` (a snapshot, SNAPSHOT_END, live ones), then ends the stream."""

    def __init__(self, events: list[activity_pb2.WatchActivitiesResponse]) -> None:
        self.events = events
        self.requests: list[activity_pb2.WatchActivitiesRequest] = []

    def WatchActivities(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[activity_pb2.WatchActivitiesResponse]:
        self.requests.append(request)
        yield from self.events


class FakeScorer(scorer_pb2_grpc.ScorerServicer):
    """Records every request and answers LoadAdapter and Answer."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []

    def LoadAdapter(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(("LoadAdapter", request))
        return scorer_pb2.LoadAdapterResponse(adapter=request.name or "folder-name")

    def Answer(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(("Answer", request))
        return scorer_pb2.AnswerResponse(text="Biscuit", adapter="v1")
