"""Every domain error maps to its documented gRPC status; nothing becomes UNKNOWN."""

from __future__ import annotations

import grpc
import pytest
from ftreview.activity_hub import DuplicateActivity
from google.rpc import error_details_pb2

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
from scorer_service.status import STATUS_BY_ERROR, error_status

EXAMPLES: dict[type[Exception], Exception] = {
    InvalidConversation: InvalidConversation("nodes[2]", "unknown role"),
    ReplyNotFound: ReplyNotFound("no reply at that timestamp"),
    DuplicateActivity: DuplicateActivity("activity 'x' exists already"),
    BackendUnavailable: BackendUnavailable("http://127.0.0.1:9: connection refused"),
    BackendRejected: BackendRejected("maximum context length is 8192 tokens", 400),
    BackendProtocolError: BackendProtocolError("position 7: expected token 42"),
    TimeoutError: TimeoutError("deadline passed"),
    AdapterNotFound: AdapterNotFound("adapter folder '/x/v3' does not exist"),
    InvalidAdapter: InvalidAdapter("'/x' is not a peft adapter folder"),
    WorkCancelled: WorkCancelled("scoring was cancelled"),
}


@pytest.mark.parametrize("error_class", list(STATUS_BY_ERROR))
def test_every_error_in_the_table_has_its_code_and_message(error_class: type[Exception]) -> None:
    error = EXAMPLES[error_class]
    status = error_status(error)
    assert status.code == STATUS_BY_ERROR[error_class].value[0]
    assert status.code != grpc.StatusCode.UNKNOWN.value[0]
    assert status.message == str(error)


def test_the_examples_cover_the_table() -> None:
    assert set(EXAMPLES) == set(STATUS_BY_ERROR)


def test_invalid_conversation_names_the_field() -> None:
    status = error_status(InvalidConversation("nodes[2].children[0]", "unknown role"))
    violation = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(violation)
    assert violation.field_violations[0].field == "conversation.nodes[2].children[0]"
    assert violation.field_violations[0].description == "unknown role"


def test_an_unmapped_error_is_internal_not_unknown() -> None:
    assert error_status(KeyError("x")).code == grpc.StatusCode.INTERNAL.value[0]
