"""Domain errors of the Review service.

Every failure a caller can cause or meet is one of these classes, so the servicer can map
each to exactly one gRPC status code in one table (`servicer.ERROR_STATUS`); anything else
is a bug and surfaces as INTERNAL, never UNKNOWN. Messages are written for the person who
reads them: what failed and what to do.
"""

from __future__ import annotations


class ReviewError(Exception):
    """Base of all errors the Review reports to its callers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ReviewError):
    """A request field is malformed (a NaN threshold, an empty conversation...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message


class NotFound(ReviewError):
    """No candidate (or conversation) with that identity is kept."""

    def __init__(self, resource_type: str, name: str, message: str) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.name = name


class FailedPrecondition(ReviewError):
    """The request is well formed but the state does not allow it (approving a sent reply)."""

    def __init__(self, subject: str, message: str, kind: str = "STATE") -> None:
        super().__init__(message)
        self.subject = subject
        self.kind = kind


class AlreadyExists(ReviewError):
    """A request id names an activity that exists already."""


class ConfigUnreadable(FailedPrecondition):
    """The config file does not parse; it is left untouched."""

    def __init__(self, path: str, line: int, column: int, reason: str) -> None:
        super().__init__(
            path,
            f"{path} line {line}, column {column}: {reason}; fix the file by hand "
            "(it was not changed)",
            kind="CONFIG",
        )
        self.path = path
        self.line = line
        self.column = column


class ScorerUnavailable(ReviewError):
    """The Scorer service cannot be reached or its backend is down."""


class ScorerFailed(ReviewError):
    """The Scorer answered with an error that is not about availability."""


class DeadlineExceeded(ReviewError):
    """The caller's deadline ran out while the Review waited on another service."""


class EndpointError(ReviewError):
    """The fine-tuning endpoint did not accept a request (reason in the message)."""
