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
