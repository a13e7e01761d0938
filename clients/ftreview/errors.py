"""Typed errors of the ftreview clients, and the one boundary that makes them.

Invariant: no `grpc.RpcError` leaves `ftreview.client`. Every failed call is turned into a
`FtreviewError` subclass by `from_rpc_error`, which keeps the server's message, the status
code, the `google.rpc` details the server attached (field violations, error info) and which
service at which address failed, and is raised `from` the original error so the traceback in
a log still shows the wire failure. Callers (the CLI, the review screen, scripts) branch on
the exception class, never on status codes or message text, so a new transport detail cannot
break them.

One question a caller always has about UNAVAILABLE is whether the service itself is missing
(start it) or it answered that something behind it is down (the Scorer's backend, the
fine-tuning endpoint). `Unavailable.unreachable` answers it: gRPC reports a connection that
never happened with a message of its own, which no ftreview server sends.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

# gRPC's own texts for "there was no server to talk to". Servers never send these.
_UNREACHABLE_MARKERS = (
    "failed to connect",
    "connection refused",
    "dns resolution failed",
    "connections to all backends failing",
    "name resolution",
    "no route to host",
)


@dataclass(frozen=True)
class FieldViolation:
    """A field of the request that the server refused (`google.rpc.BadRequest`)."""

    field: str
    description: str


class FtreviewError(Exception):
    """Base of every error a ftreview client raises.

    `message` is the server's text (or gRPC's, when no server answered); `service` and
    `address` say who was called; `details` are the decoded `google.rpc` detail messages.
    `str(error)` is one line fit for a user.
    """

    code: grpc.StatusCode | None = None

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        address: str = "",
        details: tuple[Message, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.address = address
        self.details = details

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        found: list[FieldViolation] = []
        for detail in self.details:
            if isinstance(detail, error_details_pb2.BadRequest):
                found.extend(
                    FieldViolation(v.field, v.description) for v in detail.field_violations
                )
        return tuple(found)

    def __str__(self) -> str:
        text = self.message or (self.code.name.lower() if self.code else "error")
        violations = [v for v in self.field_violations if v.description not in text]
        if violations:
            text += " (" + "; ".join(f"{v.field}: {v.description}" for v in violations) + ")"
        return text


class Cancelled(FtreviewError):
    code = grpc.StatusCode.CANCELLED


class Unknown(FtreviewError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(FtreviewError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(FtreviewError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(FtreviewError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(FtreviewError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(FtreviewError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(FtreviewError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(FtreviewError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(FtreviewError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(FtreviewError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(FtreviewError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(FtreviewError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(FtreviewError):
    """The service, or something it depends on, cannot be reached now."""

    code = grpc.StatusCode.UNAVAILABLE

    @property
    def unreachable(self) -> bool:
        """True when no server answered at `address` (it is not running, or not there)."""
        text = self.message.lower()
        return any(marker in text for marker in _UNREACHABLE_MARKERS)


class DataLoss(FtreviewError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(FtreviewError):
    code = grpc.StatusCode.UNAUTHENTICATED


ERROR_BY_CODE: dict[grpc.StatusCode, type[FtreviewError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
    if cls.code is not None
}

_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    error_details_pb2.RequestInfo,
)


def _rpc_details(error: grpc.RpcError) -> tuple[Message, ...]:
    """The `google.rpc` detail messages in the trailing metadata, decoded where known."""
    trailing = getattr(error, "trailing_metadata", None)
    if trailing is None:
        return ()
    try:
        pairs = trailing() or ()
    except Exception:  # a call that never started has no metadata to give
        return ()
    for key, value in pairs:
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return ()
        decoded: list[Message] = []
        for packed in status.details:
            for detail_type in _DETAIL_TYPES:
                if packed.Is(detail_type.DESCRIPTOR):
                    detail = detail_type()
                    packed.Unpack(detail)
                    decoded.append(detail)
                    break
            else:
                decoded.append(packed)
        return tuple(decoded)
    return ()


def from_rpc_error(error: grpc.RpcError, *, service: str = "", address: str = "") -> FtreviewError:
    """The typed error for a failed call (`grpc.RpcError` or `grpc.aio.AioRpcError`).

    The caller raises the result `from error`, so the cause stays chained.
    """
    code_of = getattr(error, "code", None)
    details_of = getattr(error, "details", None)
    code = code_of() if callable(code_of) else None
    message = details_of() if callable(details_of) else None
    cls = ERROR_BY_CODE.get(code, Unknown) if isinstance(code, grpc.StatusCode) else Unknown
    return cls(
        message or "",
        service=service,
        address=address,
        details=_rpc_details(error),
    )
