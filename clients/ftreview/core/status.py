"""The one table from service errors to gRPC status codes, with google.rpc details.

Invariant: every error a caller can cause or meet has exactly one meaningful code here
(looked up along the exception's class hierarchy, so a service's subclasses inherit the
code of the core class they extend); a field at fault travels as a `BadRequest` violation,
a missing resource as `ResourceInfo`, a refused state as `PreconditionFailure`, and every
other service error as `ErrorInfo`. An exception the table does not know is a bug: INTERNAL
with a generic message, never UNKNOWN and never the exception's text (it may hold internals).
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from ftreview.core.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FtreviewServiceError,
    InvalidInput,
    NotFound,
    Unavailable,
    UpstreamFailed,
)

STATUS_BY_ERROR: dict[type[Exception], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Cancelled: grpc.StatusCode.CANCELLED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    TimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    # Known failures of another service: INTERNAL, but with the message that says which.
    UpstreamFailed: grpc.StatusCode.INTERNAL,
    # A method of the contract this server does not implement (the generated base raises it).
    NotImplementedError: grpc.StatusCode.UNIMPLEMENTED,
}
# The caller's own mistakes: the log notes them without alarm (no traceback, INFO).
CALLER_MISTAKES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
INTERNAL_MESSAGE = "{method} failed inside the service; its log has the details"
_DOMAIN = "ftreview"


def status_code(error: BaseException) -> grpc.StatusCode | None:
    """The table's code for `error`, or None when it is not a known failure."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return None


def rich_status(
    code: grpc.StatusCode, message: str, details: Iterable[Message] = ()
) -> status_pb2.Status:
    """A google.rpc.Status with `details` packed, ready for `rpc_status.to_status`."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def error_details(error: BaseException) -> list[Message]:
    """What a client can act on: the field, resource or precondition at fault."""
    if isinstance(error, InvalidInput):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.field, description=error.description
        )
        return [error_details_pb2.BadRequest(field_violations=[violation])]
    if isinstance(error, NotFound):
        return [
            error_details_pb2.ResourceInfo(
                resource_type=error.resource_type, resource_name=error.name
            )
        ]
    if isinstance(error, FailedPrecondition):
        violation = error_details_pb2.PreconditionFailure.Violation(
            type=error.kind, subject=error.subject, description=error.message
        )
        return [error_details_pb2.PreconditionFailure(violations=[violation])]
    return [error_details_pb2.ErrorInfo(reason=type(error).__name__.upper(), domain=_DOMAIN)]


def error_status(
    error: BaseException, extra: Iterable[Message] = (), method: str = "the call"
) -> status_pb2.Status:
    """The status a client gets for `error`; `extra` details (a call's own report, such as
    the scoring stats of a failed pass) come first, then the table's."""
    code = status_code(error)
    if code is None:
        return rich_status(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE.format(method=method))
    message = error.message if isinstance(error, FtreviewServiceError) else str(error)
    return rich_status(code, message, [*extra, *error_details(error)])
