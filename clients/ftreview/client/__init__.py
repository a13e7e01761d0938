"""Typed Python clients of the Scorer and the Review service, sync and asyncio.

`ScorerClient`, `ReviewClient` (blocking) and `AsyncScorerClient`, `AsyncReviewClient`
(asyncio) wrap the generated stubs. What they guarantee, so that callers need not:

- **One description per call.** Each RPC is written once (`ftreview.client.base`): the
  blocking and asyncio clients run the same description, so they take the same arguments
  and return the same results.
- **Plain arguments.** A reply is named by its `timestamp_ns` (int nanoseconds, the reply's
  identity everywhere in ftreview); statuses, orders, variants and export formats are short
  lower-case strings (`"pending"`, `"divergence"`, `"without"`, `"openai"`).
- **Proto results.** Results are the generated messages (`Candidate`, `Config`,
  `FinetuneScoringStats`, `Activity`, ...), typed by the committed `.pyi` stubs; a repeated
  field comes back as a `list`. Use `ftreview.core.wire.timestamp_ns(candidate.timestamp)` for a
  reply's id and `status_name()` / `reason_name()` for the enums.
- **Deadlines by default.** Every unary call has one: `timeout` (30 s) for quick calls,
  `long_timeout` (15 min) for calls that run the model or an HTTP endpoint (scoring,
  alternates, answers, send). Streams have none: they stay open until the caller stops
  iterating, which cancels the call.
- **One error boundary.** A failed call raises a `ftreview.errors.FtreviewError` subclass
  (`NotFound`, `InvalidArgument`, `Unavailable`, ...), chained to the `grpc.RpcError`. No
  `grpc.RpcError` escapes, not from streams either.
- **Addresses.** The argument, else `FTREVIEW_SCORER_ADDR` / `FTREVIEW_REVIEW_ADDR`, else
  127.0.0.1:50051 (Scorer) / 127.0.0.1:50052 (Review). A client of the Review needs only
  the Review's address: its activity stream carries the work the Review starts, with the
  Scorer's progress relayed under the same activity id.

This package never imports a UI library: the CLI and the review screen both build on it.
"""

from __future__ import annotations

from ftreview.client.base import DEFAULT_LONG_TIMEOUT_S, DEFAULT_TIMEOUT_S, MAX_MESSAGE_BYTES
from ftreview.client.names import (
    DEFAULT_REVIEW_ADDRESS,
    DEFAULT_SCORER_ADDRESS,
    REVIEW_ADDRESS_ENV,
    SCORER_ADDRESS_ENV,
    CandidateOrder,
    CandidateStatus,
    ExportFormat,
    Variant,
    activity_state_name,
    grounding_name,
    job_state_name,
    knowledge_state_name,
    new_request_id,
    reason_name,
    resolve_review_address,
    resolve_scorer_address,
    status_name,
)
from ftreview.client.review import AsyncReviewClient, ReviewClient
from ftreview.client.scorer import AsyncScorerClient, ScorerClient

__all__ = [
    "DEFAULT_LONG_TIMEOUT_S",
    "DEFAULT_REVIEW_ADDRESS",
    "DEFAULT_SCORER_ADDRESS",
    "DEFAULT_TIMEOUT_S",
    "MAX_MESSAGE_BYTES",
    "REVIEW_ADDRESS_ENV",
    "SCORER_ADDRESS_ENV",
    "AsyncReviewClient",
    "AsyncScorerClient",
    "CandidateOrder",
    "CandidateStatus",
    "ExportFormat",
    "ReviewClient",
    "ScorerClient",
    "Variant",
    "activity_state_name",
    "grounding_name",
    "job_state_name",
    "knowledge_state_name",
    "new_request_id",
    "reason_name",
    "resolve_review_address",
    "resolve_scorer_address",
    "status_name",
]
