"""The one status table: every code in it is reached by an example error, each service's
error classes take the code of the core class they extend, and nothing maps to UNKNOWN."""

from __future__ import annotations

import grpc
import pytest
from ftreview.core import errors
from ftreview.core.activity_hub import DuplicateActivity
from ftreview.core.status import STATUS_BY_ERROR, error_status, status_code
from google.rpc import error_details_pb2

from review_service.domain import errors as review_errors
from scorer_service import errors as scorer_errors

EXAMPLES: dict[type[Exception], Exception] = {
    errors.InvalidInput: errors.InvalidInput("conversation.nodes[2]", "unknown role"),
    errors.NotFound: errors.NotFound("candidate", "1772355600000000101", "no such candidate"),
    errors.AlreadyExists: errors.AlreadyExists("activity 'x' exists already"),
    errors.FailedPrecondition: errors.FailedPrecondition("candidate 7", "it was sent already"),
    errors.Unavailable: errors.Unavailable("http://127.0.0.1:9: connection refused"),
    errors.Cancelled: errors.Cancelled("the caller went away; the work stopped at the next chunk"),
    errors.DeadlineExceeded: errors.DeadlineExceeded("the Scorer did not answer in time"),
    TimeoutError: TimeoutError("deadline passed"),
    errors.UpstreamFailed: errors.UpstreamFailed("the Scorer said: out of memory"),
    NotImplementedError: NotImplementedError("Method not implemented!"),
}


def test_the_examples_cover_the_table() -> None:
    assert set(EXAMPLES) == set(STATUS_BY_ERROR)


@pytest.mark.parametrize("error_class", list(STATUS_BY_ERROR), ids=lambda c: c.__name__)
def test_every_error_in_the_table_has_its_code_message_and_details(
    error_class: type[Exception],
) -> None:
    error = EXAMPLES[error_class]
    status = error_status(error)
    assert status.code == STATUS_BY_ERROR[error_class].value[0]
    assert status.code not in (grpc.StatusCode.UNKNOWN.value[0], grpc.StatusCode.OK.value[0])
    assert status.message == str(error)
    assert status.details, "a client always gets a detail it can act on"


# Each service's classes, and the code a client must see for them.
Code = grpc.StatusCode
SERVICE_ERRORS: list[tuple[Exception, grpc.StatusCode]] = [
    (scorer_errors.InvalidConversation("conversation.nodes[0]", "bad"), Code.INVALID_ARGUMENT),
    (scorer_errors.ReplyNotFound("no reply at that timestamp"), Code.NOT_FOUND),
    (scorer_errors.BackendUnavailable("engine down"), Code.UNAVAILABLE),
    (scorer_errors.BackendRejected("context too long", 400), Code.FAILED_PRECONDITION),
    (scorer_errors.BackendProtocolError("position 7"), Code.FAILED_PRECONDITION),
    (DuplicateActivity("activity 'x' exists already"), Code.ALREADY_EXISTS),
    (review_errors.InvalidArgument("threshold", "must be finite"), Code.INVALID_ARGUMENT),
    (review_errors.NotFound("candidate", "x", "no such"), Code.NOT_FOUND),
    (review_errors.ConfigUnreadable("/h/c.json5", 3, 7, "bad"), Code.FAILED_PRECONDITION),
    (review_errors.FailedPrecondition("x", "already sent"), Code.FAILED_PRECONDITION),
    (review_errors.AlreadyExists("request id used"), Code.ALREADY_EXISTS),
    (review_errors.ScorerUnavailable("scorer down"), Code.UNAVAILABLE),
    (review_errors.EndpointError("endpoint down"), Code.UNAVAILABLE),
    (review_errors.DeadlineExceeded("too slow"), Code.DEADLINE_EXCEEDED),
    (review_errors.ScorerFailed("scorer broke"), Code.INTERNAL),
]  # fmt: skip


@pytest.mark.parametrize(("error", "code"), SERVICE_ERRORS, ids=lambda v: type(v).__name__)
def test_service_errors_take_the_code_of_their_core_class(
    error: Exception, code: grpc.StatusCode
) -> None:
    assert status_code(error) == code


def test_invalid_input_names_the_field() -> None:
    status = error_status(errors.InvalidInput("conversation.nodes[2].children[0]", "unknown role"))
    violation = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(violation)
    assert violation.field_violations[0].field == "conversation.nodes[2].children[0]"
    assert violation.field_violations[0].description == "unknown role"


def test_extra_details_come_first() -> None:
    extra = error_details_pb2.DebugInfo(detail="the call's own report")
    status = error_status(errors.Unavailable("engine down"), [extra])
    first = error_details_pb2.DebugInfo()
    assert status.details[0].Unpack(first) and first.detail == "the call's own report"
    info = error_details_pb2.ErrorInfo()
    assert status.details[1].Unpack(info) and info.reason == "UNAVAILABLE"


def test_an_unmapped_error_is_internal_with_a_generic_message() -> None:
    status = error_status(KeyError("secret internals"), method="Scorer/Tokenize")
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert "secret" not in status.message and "Scorer/Tokenize" in status.message
