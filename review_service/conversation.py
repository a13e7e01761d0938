"""What the Review reads from a stored `Conversation`: its replies and their contexts.

Invariant: a candidate's context is exactly the messages rendered before its reply with the
memories removed, whole: a memory branch makes every descendant memory, however deep. That
context is what the training example teaches from (design §6, context distillation), so a
memory that leaked into it would teach the model to expect its memories rather than know
them. An unset (epoch) timestamp stays 0 here; such replies are never candidates.

Flattening and validation are the shared model's (`ftreview.core.conversation`), so the
Review refuses exactly what the Scorer could not render.
"""

from __future__ import annotations

from ftreview.conversations import derived_id
from ftreview.core.conversation import Message, flatten, validate
from ftreview.v1 import conversation_pb2 as pb

from .model import ContextMessage

__all__ = ["flatten", "replies", "reply_contexts", "validate", "with_id"]


def with_id(conversation: pb.Conversation) -> pb.Conversation:
    """A copy that carries an id: the given one, or one derived from the content."""
    copy = pb.Conversation()
    copy.CopyFrom(conversation)
    if not copy.id:
        copy.id = derived_id(copy)
    return copy


def _trackable(message: Message) -> bool:
    return message.is_reply and message.timestamp_ns != 0


def replies(conversation: pb.Conversation) -> list[int]:
    """Timestamps of the trackable replies: assistant messages, not memory, timestamp set."""
    seen: list[int] = []
    for message in flatten(conversation):
        if _trackable(message) and message.timestamp_ns not in seen:
            seen.append(message.timestamp_ns)
    return seen


def reply_contexts(conversation: pb.Conversation) -> dict[int, tuple[ContextMessage, ...]]:
    """For each trackable reply, the messages before it without the memories."""
    contexts: dict[int, tuple[ContextMessage, ...]] = {}
    before: list[ContextMessage] = []
    for message in flatten(conversation):
        if message.memory:
            continue
        if _trackable(message) and message.timestamp_ns not in contexts:
            contexts[message.timestamp_ns] = tuple(before)
        before.append(ContextMessage(message.role, message.content, message.timestamp_ns))
    return contexts
