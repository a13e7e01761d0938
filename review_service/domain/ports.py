"""The interfaces the Review's domain depends on: the store, the Scorer, the endpoint, and
the decoding of a stored conversation.

Invariant: the domain knows these shapes only, never SQLite, gRPC, protobuf or HTTP; every
port takes and returns the plain values of `model`. So the rules are tested against
in-memory fakes (tests/unit/review) and the real adapters alike, and an adapter can change
(another store, another endpoint protocol) without touching a rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from review_service.domain.jobs import TrainingJob
from review_service.domain.model import (
    Candidate,
    Conversation,
    DecisionRecord,
    LatestScore,
    ScoredReply,
    ScoringStats,
    SendInFlight,
    TrainedEntry,
)


@dataclass
class StoreChange:
    """Everything one change writes; the store applies it in one transaction."""

    upsert: list[Candidate] = field(default_factory=list)
    # Listed candidates whose decision alone changed (status, decision time, reject reason):
    # the store writes those three columns, not the whole row with its context and tokens.
    decided: list[Candidate] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    trained: list[TrainedEntry] = field(default_factory=list)
    # Replies taken out of the ledger: entries an earlier version wrote at acceptance for a
    # job that then did not learn them (removed before `trained` is written).
    untrained: list[int] = field(default_factory=list)
    # A scoring pass of one conversation: (conversation_id, the latest scores it gives; see
    # `latest_scores.from_pass`). Scores with a set timestamp replace theirs; the pass's
    # unset-timestamp scores replace all of that conversation's.
    scores: tuple[str, list[LatestScore]] | None = None
    # Kept for rescoring, alternates and GetConversation.
    conversation: Conversation | None = None
    stats: ScoringStats | None = None
    # Reply timestamp -> the conversation that holds it (a timestamp names one reply of one
    # conversation; a claim is never moved to another conversation).
    owners: dict[int, str] = field(default_factory=dict)
    # Sends about to be posted, and the replies whose send answer is now recorded.
    sends_started: list[SendInFlight] = field(default_factory=list)
    sends_ended: list[int] = field(default_factory=list)
    # Ledger entries whose measurements (adapter, divergence after) or knowledge state
    # (state, reason, delivery, comes back) changed: replace the entries of the same
    # timestamp; an entry not in the ledger is not created by this.
    ledger_updates: list[TrainedEntry] = field(default_factory=list)
    # Training jobs as now known (replace the job of the same destination and id).
    jobs: list[TrainingJob] = field(default_factory=list)
    # Decisions to add to the history (never changed or removed once written).
    logged: list[DecisionRecord] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.upsert or self.decided or self.delete or self.trained or self.untrained
            or self.scores or self.conversation or self.stats or self.owners
            or self.sends_started or self.sends_ended or self.ledger_updates or self.jobs
            or self.logged
        )  # fmt: skip


class CandidateStore(Protocol):
    """Durable candidates, ledger, scored replies, conversations, stats, reply owners and
    sends in flight. Blocking calls; the domain runs them on one worker thread, in order."""

    def load_candidates(self) -> list[Candidate]: ...
    def load_ledger(self) -> list[TrainedEntry]: ...
    def load_stats(self) -> list[ScoringStats]: ...
    def load_owners(self) -> dict[int, str]: ...
    def load_sends_in_flight(self) -> list[SendInFlight]: ...
    def load_jobs(self) -> list[TrainingJob]: ...
    def decisions(self, limit: int) -> list[DecisionRecord]:
        """The decision history, newest first; `limit` 0: all of it."""
        ...

    def scored_replies(self, conversation_id: str) -> set[int]: ...
    def latest_scores(self, conversation_id: str) -> list[LatestScore]: ...
    def conversation_body(self, conversation_id: str) -> bytes | None: ...
    def conversation_ids(self) -> list[str]: ...
    def generic_replies(self, limit: int) -> list[tuple[str, int]]:
        """(conversation id, timestamp) of up to `limit` replies whose latest score is below
        the threshold and that are not trained, the least memory-dependent first."""
        ...

    def commit(self, changes: Sequence[StoreChange]) -> None:
        """Write all `changes` in one transaction (all or none), durable on return."""
        ...

    def close(self) -> None: ...


class ConversationCodec(Protocol):
    """The wire encodings the Review keeps without reading them: it reads back a stored
    conversation (`Conversation.body`), and writes the stats of a pass the Scorer could not
    run (`ScoringStats.body`)."""

    def decode(self, body: bytes) -> Conversation: ...
    def asking(self, base: Conversation | None, question: str) -> Conversation:
        """`base` (or an empty conversation) followed by a user message with `question`."""
        ...

    def failed_stats(
        self, conversation_id: str, threshold: float, error: str, taken_at_ns: int
    ) -> ScoringStats:
        """The stats of a pass that did not run, saying why."""
        ...


@dataclass(frozen=True)
class ScoringResult:
    replies: list[ScoredReply]
    max_divergence: float
    stats: ScoringStats
    adapter: str = ""  # the adapter that scored ("" for the base model)


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
        conversation: Conversation,
        threshold: float,
        exclude: list[int],
        only: list[int],
        request_id: str,
        skip_attribution: bool = False,
    ) -> ScoringResult: ...
    async def alternate(
        self,
        conversation: Conversation,
        reply_timestamp_ns: int,
        request_id: str,
        timeout: float | None,
    ) -> str: ...
    async def answer(self, conversation: Conversation, max_new_tokens: int) -> Answer:
        """What the model says greedily after `conversation`, its memories removed."""
        ...

    def progress(self, activity_id: str) -> AsyncIterator[Progress]: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Answer:
    text: str
    # The adapter that answered ("" for the base model).
    adapter: str


@dataclass(frozen=True)
class EndpointReply:
    job_id: str
    accepted: set[str]
    # idempotency key -> the endpoint's reason
    rejected: dict[str, str]


class JobSource(Protocol):
    """The endpoint's jobs route (`training_jobs.JobFollower`)."""

    async def follow(
        self,
        finetune_url: str,
        job: TrainingJob,
        on_update: Callable[[TrainingJob], Awaitable[None] | None],
    ) -> TrainingJob: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class RetractReply:
    """The endpoint's answer to a retraction (README, "Knowledge that changes")."""

    # False: the endpoint has no retract route (404): it keeps no knowledge to remove.
    supported: bool
    retracted: set[str] = field(default_factory=set)
    # Keys the endpoint never accepted.
    unknown: set[str] = field(default_factory=set)
    # The consolidation job it queued ("" when none).
    job_id: str = ""


class FinetuneEndpoint(Protocol):
    """POSTs training examples and retractions. Raises `EndpointError` when nothing was
    acknowledged."""

    async def post(
        self, url: str, body: dict[str, Any], timeout: float, retries: int
    ) -> EndpointReply: ...
    async def retract(
        self, url: str, keys: dict[str, str], timeout: float, retries: int
    ) -> RetractReply:
        """`POST {url}/retract` of `keys` (idempotency key -> reason), with the retries and
        timeout of `post`."""
        ...

    async def close(self) -> None: ...
