"""The Review's domain values: conversations, candidates, their decisions, scores, the ledger.

A reply's identity is its `timestamp_ns` (an int, never a float: nanoseconds are part of
the identity), and a timestamp names one reply of one conversation. All values here are
immutable plain Python (no protobuf): a change is a new value, so the in-memory view, the
SQLite rows and the events sent to watchers can never disagree about one object that
someone mutated in place, and the rules are tested without a server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ftreview.core.values import Message

# Only the most recently rejected are kept in the list (docs/design.md §6); older ones are
# forgotten (hidden, and never brought back by a rescoring pass).
REJECTED_KEPT = 10

# The range a reply timestamp may take: it is stored as SQLite INTEGER (int64 ns) and
# travels as google.protobuf.Timestamp (years 0001..9999); int64 is the narrower.
MIN_NS = -(2**63)
MAX_NS = 2**63 - 1


class Status(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    # Accepted by the fine-tuning endpoint and in a training job (`Candidate.job_id`): not
    # pending or approved work any more, so it cannot be decided, sent or exported. The job's
    # end takes it off the list into the trained ledger (learnt) or back to APPROVED (not).
    SENT = "sent"
    # A rejected candidate pushed out of the capped rejected list. Kept as a row so that
    # rescoring cannot bring it back as pending.
    FORGOTTEN = "forgotten"


VISIBLE = (Status.PENDING, Status.APPROVED, Status.REJECTED, Status.SENT)


class NotCandidateReason(enum.Enum):
    """Why a scored reply is not a candidate. The values are what the store keeps (the
    numbering of the wire enum, so rows written by earlier versions read back)."""

    NONE = 0
    BELOW_THRESHOLD = 1
    UNSET_TIMESTAMP = 2
    ALREADY_TRAINED = 3
    TOO_LONG = 4
    TOKENIZATION_MISMATCH = 5
    NOT_REQUESTED = 6


@dataclass(frozen=True)
class Conversation:
    """A conversation as the Review keeps it: its id, its flattened messages, and its wire
    encoding (`body`, opaque here: stored as is and forwarded to the Scorer)."""

    id: str
    messages: tuple[Message, ...]
    body: bytes


@dataclass(frozen=True)
class ContextMessage:
    """One message the reply was given, as rendered into the prompt."""

    role: str  # system, user, assistant, tool
    content: str
    timestamp_ns: int = 0


@dataclass(frozen=True)
class TokenValue:
    """The divergence one token of a reply carried."""

    token_id: int
    text: str
    logprob_with_memories: float
    logprob_without_memories: float
    divergence: float


@dataclass(frozen=True)
class MemoryAttribution:
    """How much a reply leaned on one memory (leave-one-out divergence, nats/token)."""

    node_path: str
    content: str
    attribution: float


@dataclass(frozen=True)
class Candidate:
    """A reply that leaned on memories the model has not learned, and its review state."""

    timestamp_ns: int
    conversation_id: str
    content: str
    # Everything before the reply, without the memories: the training example's prompt.
    context: tuple[ContextMessage, ...]
    divergence: float
    peak: float
    tokens: tuple[TokenValue, ...] = ()
    alternate: str = ""
    status: Status = Status.PENDING
    scored_at_ns: int = 0
    decided_at_ns: int = 0
    reject_reason: str = ""
    # The user turn the reply answered ("" when none).
    question: str = ""
    # The memories in its prompt, largest attribution first (empty until the Scorer says).
    memories: tuple[MemoryAttribution, ...] = ()
    # Why the last send did not train it (the endpoint's refusal, or the job that did not
    # learn it), kept until it is sent again.
    send_error: str = ""
    # While SENT: the training job it is in, and the fine-tuning URL that runs it (a job
    # is named by both). "" otherwise.
    job_id: str = ""
    sent_to: str = ""

    @property
    def visible(self) -> bool:
        return self.status in VISIBLE

    @property
    def in_training(self) -> bool:
        return self.status == Status.SENT


class KnowledgeState(enum.Enum):
    """What a trained fact is worth now (docs/design.md §13)."""

    # The model should know it.
    LIVE = "live"
    # A later approved reply says otherwise about the same subject (`superseded_by_ns`).
    SUPERSEDED = "superseded"
    # Taken back: forgotten by a person, or a later conversation's memory changed it.
    RETRACTED = "retracted"


@dataclass(frozen=True)
class TrainedEntry:
    """One line of the trained ledger: never send this reply again.

    With a followed endpoint, only a job that learnt the reply writes it (with the adapter
    it promoted); an export with `mark_trained`, or an endpoint that names no job or has no
    jobs route, writes it at once: that hand-over is all anyone will know.

    An entry never leaves the ledger for a change of knowledge: a fact that is no longer
    true becomes SUPERSEDED or RETRACTED (with the reason) and stays, so the reply is never
    sent again; `retraction_delivered` says whether its destination was told (the trainer's
    retract route), and until it was, every Send tells it first."""

    timestamp_ns: int
    conversation_id: str
    trained_at_ns: int
    destination: str  # the fine-tuning URL, or "export:<format>"
    job_id: str = ""
    # The proof (docs/design.md §9): its divergence when it was sent, and re-scored on the adapter
    # its job promoted (None until measured); `adapter` is "" when no job was followed.
    divergence_before: float | None = None
    divergence_after: float | None = None
    adapter: str = ""
    state: KnowledgeState = KnowledgeState.LIVE
    # SUPERSEDED: the approved reply that replaces it (0: none).
    superseded_by_ns: int = 0
    # Why it is not live ("" while it is), in a person's words.
    reason: str = ""
    # Not LIVE: whether its destination was told (an export or an endpoint without the
    # retract route counts as told: there is nobody more to tell).
    retraction_delivered: bool = False
    # Whether the model's answer without memories still says its fact, as the last job that
    # checked it found (None: never checked), and that job.
    comes_back: bool | None = None
    checked_by_job: str = ""
    # The reply's text ("" for an entry of an older file whose text was nowhere kept).
    content: str = ""
    # The candidate as it was trained (its memories and per-token values, what the change
    # rules read); None for entries written before it was kept.
    candidate: Candidate | None = None

    @property
    def live(self) -> bool:
        return self.state == KnowledgeState.LIVE

    @property
    def retraction_pending(self) -> bool:
        """Not live, and its destination not told yet."""
        return not self.live and not self.retraction_delivered

    def as_candidate(self) -> Candidate:
        """The reply as a candidate, for the change rules (built from the entry when the
        candidate was not kept)."""
        if self.candidate is not None:
            return self.candidate
        return Candidate(
            self.timestamp_ns, self.conversation_id, self.content, (),
            self.divergence_before or 0.0, 0.0,
        )  # fmt: skip


@dataclass(frozen=True)
class SendInFlight:
    """A reply posted (or about to be) to an endpoint whose answer is not recorded yet.

    Written before the POST and removed once the answer is: after a crash in between, the
    endpoint may have trained the reply, so it is held back from export and re-sent only
    under the same idempotency key (which the endpoint trains at most once)."""

    timestamp_ns: int
    idempotency_key: str
    url: str
    started_at_ns: int


@dataclass(frozen=True)
class ScoredReply:
    """What one scoring pass said about one assistant reply."""

    timestamp_ns: int
    content: str
    divergence: float
    peak: float
    scored: bool
    candidate: bool
    tokens: tuple[TokenValue, ...] = field(default=())
    # Where the reply sits, e.g. "nodes[5]": the only handle on a reply without a timestamp.
    node_path: str = ""
    reason: NotCandidateReason = NotCandidateReason.NONE
    context_tokens_cut: int = 0
    # Candidates only: the memories it leaned on, largest first.
    attributions: tuple[MemoryAttribution, ...] = ()


@dataclass(frozen=True)
class DecisionRecord:
    """One decision in the history: a candidate set to `status` (APPROVED, REJECTED, or
    PENDING for an undo) by `reviewer`, with its reason. Kept for good, unlike the list's
    rejections (`REJECTED_KEPT`)."""

    timestamp_ns: int
    status: Status
    reason: str
    reviewer: str
    decided_at_ns: int
    conversation_id: str
    content: str


@dataclass(frozen=True)
class ScoringStats:
    """The Scorer's account of one scoring pass of one conversation, or of its failure (the
    wire `FinetuneScoringStats`). The Review stores and relays it and never reads its
    counts, so it keeps the message's bytes (`body`); the conversation and the time are
    what it files and orders the snapshots by. The wire message is the one schema
    (docs/design.md §12): a counter added there reaches every client with no change here."""

    conversation_id: str
    taken_at_ns: int
    body: bytes


@dataclass(frozen=True)
class LatestScore:
    """The latest score of one reply, as the Review keeps it for `GetStats` (no per-token
    values: candidates carry those).

    A reply with a set timestamp is known by that timestamp (its identity everywhere); one
    with an unset timestamp (0) by (conversation id, node path), and it counts only while
    the stored conversation still has that content at that path.
    """

    conversation_id: str
    timestamp_ns: int
    node_path: str
    content: str
    scored: bool
    divergence: float
    peak: float
    candidate: bool
    reason: NotCandidateReason
    context_tokens_cut: int = 0
    scored_at_ns: int = 0
