"""The plain names clients use for the wire's enums and addresses, in both directions.

Invariant: a status, order, export format or variant is a short lower-case string
(`"pending"`, `"divergence"`, `"openai"`, `"without"`) everywhere outside the generated code,
and this module is the only place that maps those strings to enum numbers and back. An
unknown name is refused before any call is made, with the names that would work.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp

from ftreview.core.wire import to_timestamp
from ftreview.v1 import activity_pb2, review_pb2, scorer_pb2

DEFAULT_SCORER_ADDRESS = "127.0.0.1:50051"
DEFAULT_REVIEW_ADDRESS = "127.0.0.1:50052"
SCORER_ADDRESS_ENV = "FTREVIEW_SCORER_ADDR"
REVIEW_ADDRESS_ENV = "FTREVIEW_REVIEW_ADDR"

CandidateStatus = Literal["pending", "approved", "rejected", "sent"]
CandidateOrder = Literal["divergence", "time"]
ExportFormat = Literal["openai", "trl"]
Variant = Literal["with", "without"]

STATUS_BY_NAME: dict[str, int] = {
    "pending": review_pb2.CANDIDATE_STATUS_PENDING,
    "approved": review_pb2.CANDIDATE_STATUS_APPROVED,
    "rejected": review_pb2.CANDIDATE_STATUS_REJECTED,
    "sent": review_pb2.CANDIDATE_STATUS_SENT,
}
ORDER_BY_NAME: dict[str, int] = {
    "divergence": review_pb2.CANDIDATE_ORDER_DIVERGENCE,
    "time": review_pb2.CANDIDATE_ORDER_TIME,
}
FORMAT_BY_NAME: dict[str, int] = {
    "openai": review_pb2.EXPORT_FORMAT_OPENAI,
    "trl": review_pb2.EXPORT_FORMAT_TRL,
}
GROUNDING_BY_NAME: dict[str, int] = {
    "supported": review_pb2.GROUNDING_SUPPORTED,
    "beyond_memories": review_pb2.GROUNDING_BEYOND_MEMORIES,
    "contradicts_memory": review_pb2.GROUNDING_CONTRADICTS_MEMORY,
}
VARIANT_BY_NAME: dict[str, int] = {
    "with": scorer_pb2.VARIANT_WITH_MEMORIES,
    "without": scorer_pb2.VARIANT_WITHOUT_MEMORIES,
}
# snake_case of the wire enum's own names ("below_threshold"): a reason added to the proto
# is named here with no change.
_REASON_PREFIX = "NOT_CANDIDATE_REASON_"
_REASON_NAMES: dict[int, str] = {
    value: "" if value == scorer_pb2.NOT_CANDIDATE_REASON_UNSPECIFIED
    else name.removeprefix(_REASON_PREFIX).lower()
    for name, value in scorer_pb2.NotCandidateReason.items()
}  # fmt: skip
_ACTIVITY_STATE_NAMES: dict[int, str] = {
    activity_pb2.ACTIVITY_STATE_UNSPECIFIED: "unknown",
    activity_pb2.ACTIVITY_STATE_RUNNING: "running",
    activity_pb2.ACTIVITY_STATE_SUCCEEDED: "succeeded",
    activity_pb2.ACTIVITY_STATE_FAILED: "failed",
    activity_pb2.ACTIVITY_STATE_CANCELLED: "cancelled",
}
_JOB_STATE_NAMES: dict[int, str] = {
    review_pb2.TRAINING_JOB_STATE_UNSPECIFIED: "unknown",
    review_pb2.TRAINING_JOB_STATE_QUEUED: "queued",
    review_pb2.TRAINING_JOB_STATE_RUNNING: "running",
    review_pb2.TRAINING_JOB_STATE_SUCCEEDED: "succeeded",
    review_pb2.TRAINING_JOB_STATE_FAILED: "failed",
}


def status_name(status: int) -> str:
    """`"pending"`, `"approved"`, `"rejected"`, `"sent"` (or `"unknown"`)."""
    for name, value in STATUS_BY_NAME.items():
        if value == status:
            return name
    return "unknown"


def grounding_name(grounding: int) -> str:
    """`"supported"`, `"beyond_memories"`, `"contradicts_memory"`, or "" when the Review did
    not say (GROUNDING_UNSPECIFIED, or a value this client does not know)."""
    for name, value in GROUNDING_BY_NAME.items():
        if value == grounding:
            return name
    return ""


def reason_name(reason: int) -> str:
    """Why a reply is not a candidate, snake_case (`"below_threshold"`); "" for none."""
    return _REASON_NAMES.get(reason, "unknown")


def activity_state_name(state: int) -> str:
    return _ACTIVITY_STATE_NAMES.get(state, "unknown")


KNOWLEDGE_STATE_BY_NAME = {
    "live": review_pb2.KNOWLEDGE_STATE_LIVE,
    "superseded": review_pb2.KNOWLEDGE_STATE_SUPERSEDED,
    "retracted": review_pb2.KNOWLEDGE_STATE_RETRACTED,
}


def knowledge_state_name(state: int) -> str:
    """`"live"`, `"superseded"`, `"retracted"`; a Review from before the states were kept
    leaves the field unset, and every fact it has is live."""
    for name, value in KNOWLEDGE_STATE_BY_NAME.items():
        if value == state:
            return name
    return "live"


def job_state_name(state: int) -> str:
    """`"queued"`, `"running"`, `"succeeded"`, `"failed"` (or `"unknown"`)."""
    return _JOB_STATE_NAMES.get(state, "unknown")


def lookup(table: dict[str, Any], name: str, what: str) -> Any:
    """The enum number of `name`, or ValueError listing the names `table` knows."""
    try:
        return table[name]
    except KeyError:
        choices = ", ".join(sorted(table))
        raise ValueError(f"unknown {what} {name!r} (one of: {choices})") from None


def timestamps(ns: int | Iterable[int]) -> list[Timestamp]:
    """Wire timestamps of one reply id or several."""
    values = [ns] if isinstance(ns, int) else list(ns)
    return [to_timestamp(v) for v in values]


def reply_id(reply: int | str) -> int:
    """A reply's id (its timestamp in integer nanoseconds) given as a number or as text;
    ValueError for text that is not one."""
    if isinstance(reply, int):
        return reply
    try:
        return int(reply.strip())
    except ValueError:
        raise ValueError(
            f"{reply!r} is not a reply id (the timestamp in integer nanoseconds)"
        ) from None


def new_request_id() -> str:
    """A fresh activity id, to watch an activity before the call that runs it returns."""
    return uuid.uuid4().hex


def resolve_scorer_address(address: str | None = None) -> str:
    return address or os.environ.get(SCORER_ADDRESS_ENV) or DEFAULT_SCORER_ADDRESS


def resolve_review_address(address: str | None = None) -> str:
    return address or os.environ.get(REVIEW_ADDRESS_ENV) or DEFAULT_REVIEW_ADDRESS
