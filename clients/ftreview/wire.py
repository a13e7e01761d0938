"""Conversions between the wire types and plain Python values.

A reply's identity is its timestamp at nanosecond precision (`timestamp_ns`, an int). On
the wire it travels as `google.protobuf.Timestamp` (seconds + nanos); these helpers are the
only place that converts, so no party can round it through a float and lose nanoseconds.
The Unix epoch (0) means "unset".
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

NS_PER_SECOND = 1_000_000_000
UNSET_NS = 0


def timestamp_ns(ts: Timestamp) -> int:
    """Nanoseconds since the epoch of a wire timestamp (0 when unset)."""
    return ts.seconds * NS_PER_SECOND + ts.nanos


def to_timestamp(ns: int) -> Timestamp:
    """A wire timestamp for `ns` nanoseconds since the epoch (exact, negative allowed)."""
    seconds, nanos = divmod(ns, NS_PER_SECOND)
    return Timestamp(seconds=seconds, nanos=nanos)


def is_set(ns: int) -> bool:
    return ns != UNSET_NS


def format_ns(ns: int) -> str:
    """RFC 3339 with all nine fractional digits, or "unset"."""
    if not is_set(ns):
        return "unset"
    return to_timestamp(ns).ToJsonString()
