"""The one table from domain errors to gRPC status codes, with google.rpc details.

Every error a caller can cause or meet has a meaningful code: INVALID_ARGUMENT names the
field (a node path) at fault, UNAVAILABLE means the engine is down, and nothing reaches a
client as UNKNOWN or with a traceback (the log keeps the traceback).
"""

from __future__ import annotations

import grpc
from ftreview.activity_hub import DuplicateActivity
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from scorer_service.errors import (
    AdapterNotFound,
    BackendProtocolError,
    BackendRejected,
    BackendUnavailable,
    InvalidAdapter,
    InvalidConversation,
    ReplyNotFound,
    WorkCancelled,
)

STATUS_BY_ERROR: dict[type[Exception], grpc.StatusCode] = {
    InvalidConversation: grpc.StatusCode.INVALID_ARGUMENT,
    ReplyNotFound: grpc.StatusCode.NOT_FOUND,
    DuplicateActivity: grpc.StatusCode.ALREADY_EXISTS,
    BackendUnavailable: grpc.StatusCode.UNAVAILABLE,
    # The engine refused (a 4xx): a configuration or input the engine cannot take.
    BackendRejected: grpc.StatusCode.FAILED_PRECONDITION,
    # The engine answered something that does not line up with what was asked.
    BackendProtocolError: grpc.StatusCode.FAILED_PRECONDITION,
    TimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    AdapterNotFound: grpc.StatusCode.NOT_FOUND,
    InvalidAdapter: grpc.StatusCode.INVALID_ARGUMENT,
    WorkCancelled: grpc.StatusCode.CANCELLED,
}


def status_code(error: Exception) -> grpc.StatusCode | None:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return None


def rich_status(
    code: grpc.StatusCode, message: str, details: list[object] | None = None
) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details or []:
        packed = any_pb2.Any()
        packed.Pack(detail)  # type: ignore[arg-type]
        status.details.append(packed)
    return status


def error_status(error: Exception, extra: list[object] | None = None) -> status_pb2.Status:
    code = status_code(error) or grpc.StatusCode.INTERNAL
    details: list[object] = list(extra or [])
    if isinstance(error, InvalidConversation):
        details.insert(
            0,
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=f"conversation.{error.path}" if error.path else "conversation",
                        description=error.message,
                    )
                ]
            ),
        )
    return rich_status(code, str(error), details)
