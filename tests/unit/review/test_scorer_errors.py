"""Every status the Scorer can answer with becomes a Review error with a status of its own:
a refusal stays a refusal (never INTERNAL); only the Scorer's own failures are INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from ftreview import errors as client_errors
from ftreview.core.status import error_status, status_code
from google.rpc import error_details_pb2

from review_service.adapters.scorer_grpc import scorer_error
from review_service.domain import errors

Code = grpc.StatusCode
ADDRESS = "127.0.0.1:50051"

EXPECTED: dict[grpc.StatusCode, tuple[type[errors.ReviewError], grpc.StatusCode, str]] = {
    Code.INVALID_ARGUMENT: (errors.InvalidArgument, Code.INVALID_ARGUMENT, "the Scorer refused"),
    Code.OUT_OF_RANGE: (errors.InvalidArgument, Code.INVALID_ARGUMENT, "the Scorer refused"),
    Code.RESOURCE_EXHAUSTED: (errors.InvalidArgument, Code.INVALID_ARGUMENT, "too large"),
    Code.FAILED_PRECONDITION: (errors.FailedPrecondition, Code.FAILED_PRECONDITION, "refused"),
    Code.UNAUTHENTICATED: (errors.FailedPrecondition, Code.FAILED_PRECONDITION, "--scorer-token"),
    Code.PERMISSION_DENIED: (errors.FailedPrecondition, Code.FAILED_PRECONDITION, "refused"),
    Code.UNIMPLEMENTED: (errors.FailedPrecondition, Code.FAILED_PRECONDITION, "older version"),
    Code.NOT_FOUND: (errors.NotFound, Code.NOT_FOUND, "found none"),
    Code.ALREADY_EXISTS: (errors.AlreadyExists, Code.ALREADY_EXISTS, "has it already"),
    Code.CANCELLED: (errors.Cancelled, Code.CANCELLED, "stopped the work"),
    Code.UNAVAILABLE: (errors.ScorerUnavailable, Code.UNAVAILABLE, "is unavailable"),
    Code.DEADLINE_EXCEEDED: (errors.DeadlineExceeded, Code.DEADLINE_EXCEEDED, "in time"),
    Code.INTERNAL: (errors.ScorerFailed, Code.INTERNAL, "failed (INTERNAL)"),
    Code.UNKNOWN: (errors.ScorerFailed, Code.INTERNAL, "failed (UNKNOWN)"),
    Code.DATA_LOSS: (errors.ScorerFailed, Code.INTERNAL, "failed (DATA_LOSS)"),
    Code.ABORTED: (errors.ScorerFailed, Code.INTERNAL, "failed (ABORTED)"),
}


def test_every_status_code_is_covered() -> None:
    assert set(EXPECTED) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize("code", list(EXPECTED), ids=lambda code: code.name)
def test_a_scorer_status_maps_to_a_review_status(code: grpc.StatusCode) -> None:
    cls, review_code, words = EXPECTED[code]
    error = client_errors.ERROR_BY_CODE[code]("what the Scorer said", service="Scorer")
    mapped = scorer_error(error, ADDRESS)
    assert type(mapped) is cls
    assert status_code(mapped) == review_code
    assert words in mapped.message and "what the Scorer said" in mapped.message
    # The status the Review's caller gets carries the message, not the generic INTERNAL text.
    assert error_status(mapped).message == mapped.message


def test_a_refused_precondition_keeps_the_scorers_kind() -> None:
    violation = error_details_pb2.PreconditionFailure.Violation(
        type="ENGINE_REJECTED", subject="engine", description="context too long"
    )
    error = client_errors.FailedPrecondition(
        "context too long",
        details=(error_details_pb2.PreconditionFailure(violations=[violation]),),
    )
    mapped = scorer_error(error, ADDRESS)
    assert isinstance(mapped, errors.FailedPrecondition)
    assert (mapped.kind, mapped.subject) == ("ENGINE_REJECTED", "scorer")


def test_a_refused_prompt_names_the_conversation() -> None:
    error = client_errors.InvalidArgument("conversation: the prompt is 9000 tokens")
    mapped = scorer_error(error, ADDRESS)
    assert isinstance(mapped, errors.InvalidArgument) and mapped.field == "conversation"
