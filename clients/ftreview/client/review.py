"""Clients of the Review service: `ReviewClient` (blocking) and `AsyncReviewClient` (asyncio).

Invariant: each RPC is described once in `ReviewCalls` (see `ftreview.client.base`); the two
clients differ only in the runner they inherit. The Review is the one server a client of it
talks to: its activity stream carries the scoring it runs, with the Scorer's progress
relayed under the same id, so no Scorer address is needed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from ftreview.client.base import (
    AsyncRunner,
    Call,
    StreamCall,
    Stubs,
    SyncRunner,
    as_is,
    stream,
    unary,
)
from ftreview.client.common import COMMON_STUBS, ServerCalls
from ftreview.client.names import (
    FORMAT_BY_NAME,
    ORDER_BY_NAME,
    STATUS_BY_NAME,
    CandidateOrder,
    CandidateStatus,
    ExportFormat,
    lookup,
    new_request_id,
    reply_id,
    resolve_review_address,
    timestamps,
)
from ftreview.core.wire import to_timestamp
from ftreview.v1 import conversation_pb2, review_pb2, review_pb2_grpc


def _statuses(names: Iterable[str]) -> list[Any]:
    return [lookup(STATUS_BY_NAME, name, "status") for name in names]


def _candidates(reply: review_pb2.ApproveResponse) -> list[review_pb2.Candidate]:
    # Approve, Reject and ClearDecision answer with the same field.
    return list(reply.candidates)


class ReviewCalls(ServerCalls):
    """The Review service's RPCs, each as one description."""

    service = "Review"
    stubs: ClassVar[Stubs] = {"review": review_pb2_grpc.ReviewStub, **COMMON_STUBS}

    @staticmethod
    def resolve_address(address: str | None) -> str:
        return resolve_review_address(address)

    # ---- scoring --------------------------------------------------------------------

    @unary
    def ingest(
        self, conversation: conversation_pb2.Conversation, *, request_id: str | None = None
    ) -> Call[review_pb2.IngestResponse]:
        """Stores the conversation and starts scoring it; returns at once. The reply's
        `activity_id` names the scoring activity (`request_id`, when given)."""
        request = review_pb2.IngestRequest(
            conversation=conversation, request_id=request_id or new_request_id()
        )
        return Call("review", "Ingest", request, as_is)

    @unary
    def sync_candidates(self, conversation_ids: Iterable[str] = ()) -> Call[list[str]]:
        """Rescores stored conversations with the current threshold; the activity ids."""
        request = review_pb2.SyncCandidatesRequest(conversation_ids=list(conversation_ids))
        return Call("review", "SyncCandidates", request, lambda r: list(r.activity_ids))

    @unary
    def get_conversation(self, conversation_id: str) -> Call[conversation_pb2.Conversation]:
        """The stored conversation, as it was ingested."""
        request = review_pb2.GetConversationRequest(conversation_id=conversation_id)
        return Call("review", "GetConversation", request, lambda r: r.conversation)

    # ---- candidates -----------------------------------------------------------------

    @unary
    def list_candidates(
        self,
        statuses: Iterable[CandidateStatus] = (),
        *,
        order: CandidateOrder = "divergence",
        conversation_id: str = "",
        search: str = "",
        min_divergence: float | None = None,
        max_divergence: float | None = None,
    ) -> Call[list[review_pb2.Candidate]]:
        """No `statuses`: pending, approved, rejected and sent (in a training job); highest
        divergence first.

        `search` keeps replies containing the text (case-insensitive); `min_divergence` and
        `max_divergence` keep divergences in [min, max)."""
        request = review_pb2.ListCandidatesRequest(
            statuses=_statuses(statuses),
            order=lookup(ORDER_BY_NAME, order, "order"),
            conversation_id=conversation_id,
            search=search,
        )
        if min_divergence is not None:
            request.min_divergence = min_divergence
        if max_divergence is not None:
            request.max_divergence = max_divergence
        return Call("review", "ListCandidates", request, lambda r: list(r.candidates))

    @stream
    def watch_candidates(self) -> StreamCall[review_pb2.WatchCandidatesResponse]:
        """Snapshot, SNAPSHOT_END, then every change (and STATS after each scoring run)."""
        return StreamCall("review", "WatchCandidates", review_pb2.WatchCandidatesRequest())

    @unary
    def approve(
        self, timestamps_ns: int | Iterable[int], *, reviewer: str = "", note: str = ""
    ) -> Call[list[review_pb2.Candidate]]:
        """`reviewer`: who decided, and `note`: why, for the decision history."""
        request = review_pb2.ApproveRequest(
            timestamps=timestamps(timestamps_ns), reviewer=reviewer, note=note
        )
        return Call("review", "Approve", request, _candidates)

    @unary
    def reject(
        self, timestamps_ns: int | Iterable[int], *, reason: str = "", reviewer: str = ""
    ) -> Call[list[review_pb2.Candidate]]:
        request = review_pb2.RejectRequest(
            timestamps=timestamps(timestamps_ns), reason=reason, reviewer=reviewer
        )
        return Call("review", "Reject", request, _candidates)

    @unary
    def clear_decision(
        self, timestamps_ns: int | Iterable[int], *, reviewer: str = ""
    ) -> Call[list[review_pb2.Candidate]]:
        """Back to pending: undoes an approve or a reject."""
        request = review_pb2.ClearDecisionRequest(
            timestamps=timestamps(timestamps_ns), reviewer=reviewer
        )
        return Call("review", "ClearDecision", request, _candidates)

    @unary
    def list_decisions(self, *, limit: int = 0) -> Call[list[review_pb2.Decision]]:
        """Every decision made (approve, reject, undo), newest first; `limit` 0: all."""
        request = review_pb2.ListDecisionsRequest(limit=limit)
        return Call("review", "ListDecisions", request, lambda r: list(r.decisions))

    @unary
    def generate_alternate(
        self, timestamp_ns: int, *, regenerate: bool = False, request_id: str | None = None
    ) -> Call[review_pb2.Candidate]:
        """The candidate with its alternate (generated now unless stored already)."""
        request = review_pb2.ReviewGenerateAlternateRequest(
            timestamp=to_timestamp(timestamp_ns),
            regenerate=regenerate,
            request_id=request_id or new_request_id(),
        )
        return Call("review", "GenerateAlternate", request, lambda r: r.candidate, long=True)

    # ---- shipping -------------------------------------------------------------------

    @unary
    def send(
        self, timestamps_ns: Iterable[int] = (), *, request_id: str | None = None
    ) -> Call[review_pb2.SendResponse]:
        """Posts the approved candidates (or those named) to the fine-tuning endpoint."""
        request = review_pb2.SendRequest(
            timestamps=timestamps(timestamps_ns), request_id=request_id or new_request_id()
        )
        return Call("review", "Send", request, as_is, long=True)

    @unary
    def export(
        self,
        format: ExportFormat = "openai",
        *,
        statuses: Iterable[CandidateStatus] = (),
        timestamps_ns: Iterable[int] = (),
        mark_trained: bool = False,
    ) -> Call[review_pb2.ExportResponse]:
        """JSONL training examples; no `statuses` means the approved ones."""
        request = review_pb2.ExportRequest(
            format=lookup(FORMAT_BY_NAME, format, "export format"),
            statuses=_statuses(statuses),
            timestamps=timestamps(timestamps_ns),
            mark_trained=mark_trained,
        )
        return Call("review", "Export", request, as_is)

    @unary
    def list_trained(self) -> Call[list[review_pb2.TrainedEntry]]:
        request = review_pb2.ListTrainedRequest()
        return Call("review", "ListTrained", request, lambda r: list(r.entries))

    @unary
    def forget(
        self, reply: int | str, *, reason: str = "", reviewer: str = ""
    ) -> Call[review_pb2.ForgetResponse]:
        """Take a trained fact back (`reply`: its timestamp in nanoseconds, or that id as
        text): it is retracted and the fine-tuning endpoint told (`delivery_error` says why
        not, and the next send tells it); one retracted or superseded already is answered
        as it is. `reviewer`: who forgot it, for the reason kept on the entry."""
        request = review_pb2.ForgetRequest(
            timestamp=to_timestamp(reply_id(reply)), reason=reason, reviewer=reviewer
        )
        return Call("review", "Forget", request, as_is)

    @unary
    def list_jobs(self) -> Call[list[review_pb2.TrainingJob]]:
        """The fine-tuning jobs the endpoint accepted, newest first."""
        request = review_pb2.ListJobsRequest()
        return Call("review", "ListJobs", request, lambda r: list(r.jobs))

    @unary
    def ask(
        self, question: str, *, conversation_id: str = "", max_new_tokens: int = 0
    ) -> Call[review_pb2.AskResponse]:
        """What the current model answers without memories (inside the stored conversation
        `conversation_id`, its memories removed; else the question alone)."""
        request = review_pb2.AskRequest(
            question=question, conversation_id=conversation_id, max_new_tokens=max_new_tokens
        )
        return Call("review", "Ask", request, as_is, long=True)

    # ---- stats and config -----------------------------------------------------------

    @unary
    def get_stats(self, conversation_id: str = "") -> Call[review_pb2.GetStatsResponse]:
        request = review_pb2.GetStatsRequest(conversation_id=conversation_id)
        return Call("review", "GetStats", request, as_is)

    @unary
    def get_config(self) -> Call[review_pb2.Config]:
        return Call("review", "GetConfig", review_pb2.GetConfigRequest(), lambda r: r.config)

    @unary
    def set_threshold(
        self, value: float | None = None, *, steps: int | None = None
    ) -> Call[review_pb2.Config]:
        """Exactly one of: a new value, or steps (+1 multiplies by 10, -1 divides by 10)."""
        if (value is None) == (steps is None):
            raise ValueError("set_threshold takes exactly one of value or steps")
        if value is not None:
            request = review_pb2.SetThresholdRequest(value=value)
        else:
            request = review_pb2.SetThresholdRequest(steps=steps)
        return Call("review", "SetThreshold", request, lambda r: r.config)


class ReviewClient(ReviewCalls, SyncRunner):
    """Blocking client of the Review service (and the Activities service it serves)."""


class AsyncReviewClient(ReviewCalls, AsyncRunner):
    """asyncio client of the Review service: what the review screen builds on.

    Every method of `ReviewClient`, awaitable; the two streams (`watch_candidates`,
    `watch_activities`) are async iterators, ended by breaking out of them (or by
    `aclose()`), which cancels the call. A stream whose server goes away raises
    `Unavailable`; open a new one to reconnect.
    """
