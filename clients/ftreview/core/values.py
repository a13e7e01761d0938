"""Plain values every party shares, with no protobuf and no service: a flattened message
and how a reply's time is written.

A reply's identity is its timestamp in integer nanoseconds; 0 (the Unix epoch) means
"unset" (old logs carry no time). `format_ns` never raises, whatever the int, because it
is used to describe bad input as much as good.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

NS_PER_SECOND = 1_000_000_000
UNSET_NS = 0


@dataclass(frozen=True)
class Message:
    """One leaf of a conversation, flattened in rendering order."""

    role: str  # system, user, assistant, tool
    content: str
    timestamp_ns: int
    # Inside a memory node (however deep): in the prompt, never in a training example.
    memory: bool
    # Where it sits, e.g. "nodes[3]" or "nodes[1].children[0]".
    node_path: str

    @property
    def is_reply(self) -> bool:
        """An assistant message that is not a memory: what the Scorer scores."""
        return self.role == "assistant" and not self.memory


def is_set(ns: int) -> bool:
    return ns != UNSET_NS


def format_ns(ns: int) -> str:
    """RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits (as protobuf's JSON writes a
    Timestamp), or "unset" for 0."""
    if not is_set(ns):
        return "unset"
    seconds, nanos = divmod(ns, NS_PER_SECOND)
    try:
        moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    except OverflowError:
        return f"{ns} ns"
    fraction = ""
    if nanos:
        digits = f"{nanos:09d}"
        kept = 3 if nanos % 1_000_000 == 0 else 6 if nanos % 1000 == 0 else 9
        fraction = "." + digits[:kept]
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"
