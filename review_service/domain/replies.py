"""What each reply of a conversation was given: its context without the memories (and, for
the trainer's guard, with them), and the user turn it answered; and which reply holds which
timestamp.

Invariants:
- a reply's context is exactly the messages rendered before it with the memories removed,
  whole (a memory branch makes every descendant memory, however deep). That context is
  what the training example teaches from (docs/design.md §6, context distillation), so a memory
  that leaked into it would teach the model to expect its memories rather than know them;
- a timestamp names one reply: two different replies of a conversation that share one are
  found here (and refused by the Review), so their scores can never mix. An unset (epoch)
  timestamp stays 0; such replies are never candidates.

Pure functions of `model.Conversation`: no protobuf, no store.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftreview.core.values import Message

from review_service.domain.model import ContextMessage, Conversation


@dataclass(frozen=True)
class Given:
    """What one reply was given: its context (no memories) and the user turn it answered."""

    context: tuple[ContextMessage, ...]
    question: str


def is_trackable(message: Message) -> bool:
    """An assistant reply outside the memories with a set timestamp: a reply with identity."""
    return message.role == "assistant" and not message.memory and message.timestamp_ns != 0


def replies(conversation: Conversation) -> list[int]:
    """Timestamps of the trackable replies, in conversation order, each once."""
    return list(dict.fromkeys(m.timestamp_ns for m in conversation.messages if is_trackable(m)))


def reply_paths(conversation: Conversation) -> dict[int, str]:
    """Timestamp -> where its (first) reply sits."""
    paths: dict[int, str] = {}
    for message in conversation.messages:
        if is_trackable(message):
            paths.setdefault(message.timestamp_ns, message.node_path)
    return paths


def shared_timestamp(conversation: Conversation) -> tuple[int, str, str] | None:
    """(timestamp, first path, second path) of two replies that carry the same timestamp
    with different content, or None. The same reply repeated verbatim is one reply."""
    seen: dict[int, Message] = {}
    for message in conversation.messages:
        if not is_trackable(message):
            continue
        first = seen.setdefault(message.timestamp_ns, message)
        if first is not message and first.content != message.content:
            return message.timestamp_ns, first.node_path, message.node_path
    return None


def given(conversation: Conversation) -> dict[int, Given]:
    """For each trackable reply, the messages before it without the memories, and the
    last user message since the previous reply ("" when there is none)."""
    out: dict[int, Given] = {}
    before: list[ContextMessage] = []
    question = ""
    for message in conversation.messages:
        if message.memory:
            continue
        if is_trackable(message) and message.timestamp_ns not in out:
            out[message.timestamp_ns] = Given(tuple(before), question)
        if message.role == "user":
            question = message.content
        elif message.role == "assistant":
            question = ""
        before.append(ContextMessage(message.role, message.content, message.timestamp_ns))
    return out


def contexts_with_memories(conversation: Conversation) -> dict[int, tuple[ContextMessage, ...]]:
    """For each trackable reply, every message rendered before it, the memories included:
    the prompt the reply was written with (the trainer measures divergence against it)."""
    out: dict[int, tuple[ContextMessage, ...]] = {}
    before: list[ContextMessage] = []
    for message in conversation.messages:
        if is_trackable(message) and message.timestamp_ns not in out:
            out[message.timestamp_ns] = tuple(before)
        before.append(ContextMessage(message.role, message.content, message.timestamp_ns))
    return out
