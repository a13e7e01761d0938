"""Domain errors of the Review service.

Every failure a caller can cause or meet is one of these classes; each extends the core
class whose status code it takes (`ftreview.core.status` holds the one table, applied to
every call by the status interceptor), so anything else is a bug and surfaces as INTERNAL,
never UNKNOWN. Messages are written for the person who reads them: what failed and what to
do.
"""

from __future__ import annotations

from ftreview.core import errors as core


class ReviewError(core.FtreviewServiceError):
    """Base of all errors the Review reports to its callers."""


class InvalidArgument(ReviewError, core.InvalidInput):
    """A request field is malformed (a NaN threshold, an empty conversation...)."""


class NotFound(ReviewError, core.NotFound):
    """No candidate (or conversation) with that identity is kept."""


class FailedPrecondition(ReviewError, core.FailedPrecondition):
    """The request is well formed but the state does not allow it (approving a sent reply)."""


class AlreadyExists(ReviewError, core.AlreadyExists):
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


class ScorerUnavailable(ReviewError, core.Unavailable):
    """The Scorer service cannot be reached or its backend is down."""


class ScorerFailed(ReviewError, core.UpstreamFailed):
    """The Scorer answered with an error that is not about availability."""


class DeadlineExceeded(ReviewError, core.DeadlineExceeded):
    """The caller's deadline ran out while the Review waited on another service."""


class Cancelled(ReviewError, core.Cancelled):
    """Another service stopped the work before it finished (it is shutting down)."""


class EndpointError(ReviewError, core.Unavailable):
    """The fine-tuning endpoint did not accept a request (reason in the message)."""
