"""Conversions between the wire types and plain Python values.

A reply's identity is its timestamp at nanosecond precision (`timestamp_ns`, an int). On
the wire it travels as `google.protobuf.Timestamp` (seconds + nanos); these helpers are the
only place that converts, so no party can round it through a float and lose nanoseconds.
The Unix epoch (0) means "unset". A timestamp is stored as a signed 64-bit integer of
nanoseconds, so one outside that range (years 1677 to 2262) is refused where it enters.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from ftreview.core.errors import InvalidInput
from ftreview.core.values import NS_PER_SECOND

MIN_NS = -(2**63)
MAX_NS = 2**63 - 1


def timestamp_ns(ts: Timestamp) -> int:
    """Nanoseconds since the epoch of a wire timestamp (0 when unset)."""
    return ts.seconds * NS_PER_SECOND + ts.nanos


def checked_timestamp_ns(ts: Timestamp, field: str) -> int:
    """`timestamp_ns(ts)`, or InvalidInput naming `field` when it cannot be a reply's id."""
    if not 0 <= ts.nanos < NS_PER_SECOND:
        raise InvalidInput(field, f"nanos must be 0 to 999999999, not {ts.nanos}")
    ns = timestamp_ns(ts)
    if not MIN_NS <= ns <= MAX_NS:
        raise InvalidInput(
            field, f"{ts.seconds} s is outside the 64-bit nanosecond range (years 1677 to 2262)"
        )
    return ns


def to_timestamp(ns: int) -> Timestamp:
    """A wire timestamp for `ns` nanoseconds since the epoch (exact, negative allowed)."""
    seconds, nanos = divmod(ns, NS_PER_SECOND)
    return Timestamp(seconds=seconds, nanos=nanos)
