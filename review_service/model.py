"""The Review's domain values: candidates, their decisions, and the trained ledger.

A reply's identity is its `timestamp_ns` (an int, never a float: nanoseconds are part of
the identity). All values here are immutable; a change is a new value, so the in-memory
view, the SQLite rows and the events sent to watchers can never disagree about one object
that someone mutated in place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Only the most recently rejected are kept in the list (design §6); older ones are
# forgotten (hidden, and never brought back by a rescoring pass).
REJECTED_KEPT = 10


class Status(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    # Sent candidates leave the list; the trained ledger remembers them. This status only
    # appears on the event that says a candidate left.
    SENT = "sent"
    # A rejected candidate pushed out of the capped rejected list. Kept as a row so that
    # rescoring cannot bring it back as pending.
    FORGOTTEN = "forgotten"


VISIBLE = (Status.PENDING, Status.APPROVED, Status.REJECTED)


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

    @property
    def visible(self) -> bool:
        return self.status in VISIBLE


@dataclass(frozen=True)
class TrainedEntry:
    """One line of the trained ledger: this reply went to fine-tuning, never send it again."""

    timestamp_ns: int
    conversation_id: str
    trained_at_ns: int
    destination: str  # the fine-tuning URL, or "export:<format>"
    job_id: str = ""


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
    # Why it is not a candidate: a `ftreview.v1.NotCandidateReason` value (0 for a candidate).
    reason: int = 0
    context_tokens_cut: int = 0


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
    reason: int  # a `ftreview.v1.NotCandidateReason` value; 0 for a candidate
    context_tokens_cut: int = 0
    scored_at_ns: int = 0
