"""Hostile requests for every RPC, generated from the message descriptors.

Hypothesis draws each field from values a careless or malicious client sends: extremes of
every integer width, NaN and infinities, empty and huge strings, timestamps outside the
protobuf range, conversations nested past any sane depth. The strategies are derived from
the descriptors, so an RPC or field added to the contract is fuzzed without editing this.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

_T = FieldDescriptor


def _edge_ints(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [low, high, 0, 1, -1 if low < 0 else 2, 253402300799, 10**18]
    return st.one_of(
        st.sampled_from([e for e in edges if low <= e <= high]), st.integers(low, high)
    )


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    _T.TYPE_DOUBLE: st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e-320]),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    _T.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
    _T.TYPE_INT32: _edge_ints(*_INT32),
    _T.TYPE_SINT32: _edge_ints(*_INT32),
    _T.TYPE_SFIXED32: _edge_ints(*_INT32),
    _T.TYPE_INT64: _edge_ints(*_INT64),
    _T.TYPE_SINT64: _edge_ints(*_INT64),
    _T.TYPE_SFIXED64: _edge_ints(*_INT64),
    _T.TYPE_UINT32: _edge_ints(0, 2**32 - 1),
    _T.TYPE_FIXED32: _edge_ints(0, 2**32 - 1),
    _T.TYPE_UINT64: _edge_ints(0, 2**64 - 1),
    _T.TYPE_FIXED64: _edge_ints(0, 2**64 - 1),
    _T.TYPE_BOOL: st.booleans(),
    _T.TYPE_STRING: st.one_of(
        st.text(max_size=40),
        st.sampled_from(["", " ", "../../etc/passwd", "\x00", "🐱" * 50, "x" * 5000]),
    ),
    _T.TYPE_BYTES: st.binary(max_size=40),
}


def _field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == _T.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    if field.type == _T.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), _edge_ints(*_INT32))
    return _SCALARS[field.type]


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor` with a random subset of fields set to hostile values."""
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(descriptor)
    if depth > 4:
        return st.just(cls())

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        for field in descriptor.fields:
            if not draw(st.booleans()):
                continue
            values = _field_values(field, depth)
            try:
                if field.is_repeated:
                    items = draw(st.lists(values, max_size=3))
                    target = getattr(message, field.name)
                    for item in items:
                        if field.type == _T.TYPE_MESSAGE:
                            target.add().CopyFrom(item)
                        else:
                            target.append(item)
                elif field.type == _T.TYPE_MESSAGE:
                    getattr(message, field.name).CopyFrom(draw(values))
                else:
                    setattr(message, field.name, draw(values))
            except (ValueError, TypeError):
                # The Python runtime itself refuses the value (e.g. an enum in a closed
                # enum); such a message cannot be sent at all, so leave the field unset.
                message.ClearField(field.name)
        return message

    return build()
