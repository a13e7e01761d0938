"""Domain errors of the Scorer. They carry no gRPC types: each extends the core class whose
status code it takes (`ftreview.core.status` holds the one table), so the domain and the
backends stay testable without a server."""

from __future__ import annotations

from ftreview.core.errors import (
    Cancelled,
    FailedPrecondition,
    FtreviewServiceError,
    InvalidInput,
    NotFound,
    Unavailable,
)


class ScorerError(FtreviewServiceError):
    """Base of every error the Scorer reports to a caller."""


class InvalidConversation(ScorerError, InvalidInput):
    """A request field is at fault. `path` says which, e.g. "conversation.nodes[3]"."""

    def __init__(self, path: str, message: str) -> None:
        InvalidInput.__init__(self, path, message)
        self.path = path


class ReplyNotFound(ScorerError, NotFound):
    """A reply named by timestamp is not in the conversation."""

    def __init__(self, message: str) -> None:
        NotFound.__init__(self, "reply", "", message)


class BackendUnavailable(ScorerError, Unavailable):
    """The engine could not be reached, or kept failing (5xx) after the bounded retries.
    `engine_answers` holds the error answers the engine did give ("URL: HTTP 500: ..."),
    empty when nothing answered."""

    def __init__(self, message: str, engine_answers: list[str] | None = None) -> None:
        Unavailable.__init__(self, message)
        self.engine_answers = list(engine_answers or [])


class BackendRejected(ScorerError, FailedPrecondition):
    """The engine refused the request (4xx): the message says why, e.g. context too long."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        FailedPrecondition.__init__(self, "engine", message, kind="ENGINE_REJECTED")
        self.status_code = status_code


class BackendProtocolError(ScorerError, FailedPrecondition):
    """The engine answered, but what came back does not line up with what was sent."""

    def __init__(self, message: str) -> None:
        FailedPrecondition.__init__(self, "engine", message, kind="ENGINE_PROTOCOL")


class WorkCancelled(ScorerError, Cancelled):
    """The caller's stop signal (a cancelled call, or a drain whose grace ended) stopped the
    work between two chunks; nothing it computed was kept."""


class AdapterNotFound(ScorerError, NotFound):
    """The adapter folder named in a LoadAdapter request does not exist."""

    def __init__(self, message: str) -> None:
        NotFound.__init__(self, "adapter", "", message)


class InvalidAdapter(ScorerError, InvalidInput):
    """The adapter folder exists but is not a LoRA adapter this engine can serve."""

    def __init__(self, message: str) -> None:
        InvalidInput.__init__(self, "path", message)
