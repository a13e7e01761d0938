"""The interfaces the Review's core depends on: the store, the Scorer, the endpoint.

Invariant: the core (`review.Review`) knows these shapes only, never SQLite, gRPC or HTTP,
so its rules are tested with the real adapters or stand-ins alike, and an adapter can change
(another store, another endpoint protocol) without touching a rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ftreview.v1 import conversation_pb2, scorer_pb2

from .model import Candidate, LatestScore, ScoredReply, TrainedEntry


@dataclass
class StoreChange:
    """Everything one change writes; the store applies it in one transaction."""

    upsert: list[Candidate] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    trained: list[TrainedEntry] = field(default_factory=list)
    # A scoring pass of one conversation: (conversation_id, the latest scores it gives; see
    # `latest_scores.from_pass`). Scores with a set timestamp replace theirs; the pass's
    # unset-timestamp scores replace all of that conversation's.
    scores: tuple[str, list[LatestScore]] | None = None
    # (conversation_id, serialized Conversation) kept for rescoring and alternates.
    conversation: tuple[str, bytes] | None = None
    stats: scorer_pb2.FinetuneScoringStats | None = None


class CandidateStore(Protocol):
    """Durable candidates, ledger, scored replies, conversations and stats. Blocking calls;
    the core runs them on one worker thread, in order."""

    def load_candidates(self) -> list[Candidate]: ...
    def load_ledger(self) -> list[TrainedEntry]: ...
    def load_stats(self) -> list[scorer_pb2.FinetuneScoringStats]: ...
    def scored_replies(self, conversation_id: str) -> set[int]: ...
    def latest_scores(self, conversation_id: str) -> list[LatestScore]: ...
    def conversation(self, conversation_id: str) -> bytes | None: ...
    def conversation_ids(self) -> list[str]: ...
    def commit(self, change: StoreChange) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ScoringResult:
    replies: list[ScoredReply]
    max_divergence: float
    stats: scorer_pb2.FinetuneScoringStats


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    detail: str


class Scorer(Protocol):
    """The Scorer service, as the Review needs it. Raises `ScorerUnavailable` when down."""

    async def ready(self, timeout: float) -> None: ...
    async def score(
        self,
        conversation: conversation_pb2.Conversation,
        threshold: float,
        exclude: list[int],
        only: list[int],
        request_id: str,
    ) -> ScoringResult: ...
    async def alternate(
        self,
        conversation: conversation_pb2.Conversation,
        reply_timestamp_ns: int,
        request_id: str,
        timeout: float | None,
    ) -> str: ...
    def progress(self, activity_id: str) -> AsyncIterator[Progress]: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class EndpointReply:
    job_id: str
    accepted: set[str]
    # idempotency key -> the endpoint's reason
    rejected: dict[str, str]


class FinetuneEndpoint(Protocol):
    """POSTs training examples. Raises `EndpointError` when nothing was acknowledged."""

    async def post(
        self, url: str, body: dict[str, Any], timeout: float, retries: int
    ) -> EndpointReply: ...
    async def close(self) -> None: ...
