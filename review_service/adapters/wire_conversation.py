"""The Review's reading of a wire `Conversation`: checked by the shared model's rules and
given an id when it has none.

Flattening, validation and derived ids are the shared model's (`ftreview.core.conversation`),
so the Review refuses exactly what the Scorer could not render, and a conversation that
grows turn by turn keeps the id it was first given.
"""

from __future__ import annotations

from ftreview.core.conversation import ROLE_NAMES, derived_id, flatten, validate
from ftreview.v1 import conversation_pb2 as pb

__all__ = ["ROLE_NAMES", "flatten", "validate", "with_id"]


def with_id(conversation: pb.Conversation) -> pb.Conversation:
    """A copy that carries an id: the given one, or one derived from the content."""
    copy = pb.Conversation()
    copy.CopyFrom(conversation)
    if not copy.id:
        copy.id = derived_id(copy)
    return copy
