"""The plain values the review screen draws: candidates, memories, config, jobs.

Frozen dataclasses with no Textual and no gRPC in them: `ftreview.tui.link` makes them from
the wire messages, the board and the widgets only read them. What the screen only shows
as the Review relayed it (a scoring run's stats) it keeps as the wire message itself. A
view is a copy of what a service said at one moment; it is replaced whole, never changed
in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ftreview.core.defaults import DEFAULT_REJECT_REASONS


class Status(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENT = "sent"


@dataclass(frozen=True)
class TokenView:
    """One token of a reply (its text as cut from the reply by the tokenizer's offsets) and
    how much more likely the memories made it (nats)."""

    text: str
    divergence: float


@dataclass(frozen=True)
class MemoryView:
    """One memory in the reply's prompt and how much the reply leaned on it (nats/token)."""

    node_path: str
    content: str
    attribution: float


@dataclass(frozen=True)
class GroundingSpanView:
    """A memory-driven part of the reply (characters start..end) and its own verdict
    ("supported", "beyond_memories", "contradicts_memory"); `value` is what the memory
    `node_path` says there."""

    start: int
    end: int
    kind: str
    node_path: str = ""
    value: str = ""


@dataclass(frozen=True)
class CandidateView:
    timestamp_ns: int
    conversation_id: str
    content: str
    divergence: float
    peak: float
    status: Status
    tokens: tuple[TokenView, ...] = ()
    alternate: str = ""
    reject_reason: str = ""
    question: str = ""
    memories: tuple[MemoryView, ...] = ()
    """Largest attribution first, as the Review sends them."""
    send_error: str = ""
    """Why the last send did not train it: the endpoint's refusal, or the job that did not
    learn it and why (the reply is approved again)."""
    job_id: str = ""
    """The training job it is in while SENT."""
    grounding: str = ""
    """"supported", "beyond_memories", "contradicts_memory", or "" when the Review did not say."""
    grounding_spans: tuple[GroundingSpanView, ...] = ()
    supersedes: int = 0
    """The live trained fact (its reply's id) approving this reply replaces; 0 when none."""
    conflicts_with: tuple[int, ...] = ()
    """Undecided candidates about the same subject with another value, when it was sent."""
    change: str = ""
    """What differs, old value first ("18 March 14:30 -> 20 March"); "" when neither."""

    @property
    def in_training(self) -> bool:
        return self.status is Status.SENT

    @property
    def status_label(self) -> str:
        """`pending`, ..., or `training · ft-3` for a reply in a training job."""
        if self.in_training:
            return f"training · {self.job_id}" if self.job_id else "training"
        return self.status.value


@dataclass(frozen=True)
class ConfigView:
    threshold: float
    config_path: str = ""
    finetune_url: str = ""
    reject_reasons: tuple[str, ...] = ()
    model: str = ""

    @property
    def quick_reasons(self) -> tuple[str, ...]:
        """The reasons keys 1-9 pick: the config's, else sensible defaults."""
        return (self.reject_reasons or DEFAULT_REJECT_REASONS)[:9]


@dataclass(frozen=True)
class JobView:
    """A training job as the Review follows it (the status line shows the newest)."""

    id: str
    state: str
    examples: int
    divergence_before: float | None
    divergence_after: float | None
    recall: float | None
    error: str

    def describe(self) -> str:
        text = f"last training job {self.id}: {self.state}, {self.examples} examples"
        if self.divergence_before is not None and self.divergence_after is not None:
            text += f" · divergence {self.divergence_before:.2f} → {self.divergence_after:.2f}"
        if self.recall is not None:
            text += f" · recall {self.recall:.0%}"
        if self.error:
            text += f" · {self.error}"
        return text


@dataclass(frozen=True)
class TurnView:
    """One message of a stored conversation, in order, for the conversation view."""

    role: str
    content: str
    timestamp_ns: int
    memory: bool
    path: str


@dataclass(frozen=True)
class DecisionView:
    """One entry of the Review's decision history (ListDecisions), for the history view."""

    timestamp_ns: int
    status: str
    """What the reply became: "approved", "rejected", or "pending" (an undo)."""
    reason: str
    reviewer: str
    decided_at_ns: int
    conversation_id: str
    content: str
