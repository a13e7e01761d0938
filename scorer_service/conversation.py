"""A conversation as the Scorer renders it: the shared flat model (`ftreview.core.conversation`:
one flattener and validator for every service) and the two variants it compares.

The two variants differ only by dropping memory messages, whole; nothing else moves.
"""

from __future__ import annotations

import enum

from ftreview.core.conversation import flatten
from ftreview.core.values import Message

__all__ = ["Message", "Variant", "flatten", "has_memories", "select"]


class Variant(enum.Enum):
    WITH_MEMORIES = "with memories"
    WITHOUT_MEMORIES = "without memories"


def select(messages: list[Message], variant: Variant) -> list[Message]:
    if variant is Variant.WITH_MEMORIES:
        return messages
    return [m for m in messages if not m.memory]


def has_memories(messages: list[Message]) -> bool:
    return any(m.memory for m in messages)
