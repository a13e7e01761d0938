"""Domain errors of the Scorer. They carry no gRPC types: the servicer maps each class to a
status code in one table (`scorer_service.status`), so the domain and the backends stay
testable without a server."""

from __future__ import annotations


class ScorerError(Exception):
    """Base of every error the Scorer reports to a caller."""


class InvalidConversation(ScorerError):
    """The conversation itself is at fault. `path` says where, e.g. "nodes[3].children[0]"."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class ReplyNotFound(ScorerError):
    """A reply named by timestamp is not in the conversation."""


class BackendUnavailable(ScorerError):
    """The engine could not be reached, or kept failing (5xx) after the bounded retries."""


class BackendRejected(ScorerError):
    """The engine refused the request (4xx): the message says why, e.g. context too long."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class BackendProtocolError(ScorerError):
    """The engine answered, but what came back does not line up with what was sent."""


class WorkCancelled(ScorerError):
    """The caller's stop signal (a cancelled call, or a drain whose grace ended) stopped the
    work between two chunks; nothing it computed was kept."""


class AdapterNotFound(ScorerError):
    """The adapter folder named in a LoadAdapter request does not exist."""


class InvalidAdapter(ScorerError):
    """The adapter folder exists but is not a LoRA adapter this engine can serve."""
