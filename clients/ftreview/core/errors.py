"""The errors a service reports to its callers, in plain Python (no gRPC types).

Invariant: every failure a caller can cause or meet is an `FtreviewServiceError` subclass
(or a builtin the status table names), so the status interceptor (`ftreview.core.status`)
maps it to exactly one gRPC code; anything else is a bug and ends INTERNAL with a generic
message. A service's own error classes subclass these, so its domain modules stay free of
gRPC and the services never need each other's classes. Messages are written for the person
who reads them: what failed and what to do.
"""

from __future__ import annotations


class FtreviewServiceError(Exception):
    """Base of every error a service reports; `message` is what the caller is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(FtreviewServiceError):
    """A request field is malformed. `field` says which, e.g. "conversation.nodes[3]"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.description = message


class NotFound(FtreviewServiceError):
    """Nothing is kept under the name the caller gave."""

    def __init__(self, resource_type: str, name: str, message: str) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(FtreviewServiceError):
    """The caller named something new (a request id) that exists already."""


class FailedPrecondition(FtreviewServiceError):
    """The request is well formed but the state does not allow it (approving a sent reply)."""

    def __init__(self, subject: str, message: str, kind: str = "STATE") -> None:
        super().__init__(message)
        self.subject = subject
        self.kind = kind


class Cancelled(FtreviewServiceError):
    """The work was stopped before it finished (the caller went away, or a drain ended)."""


class Unavailable(FtreviewServiceError):
    """Something this service depends on (an engine, another service) cannot be reached."""


class DeadlineExceeded(FtreviewServiceError):
    """The caller's deadline ran out while this service waited on another."""


class UpstreamFailed(FtreviewServiceError):
    """Another service answered with an error that is not about availability; the message
    says which and what it said (the call ends INTERNAL, but not with a generic text)."""
