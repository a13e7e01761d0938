"""Flattening a stored `Conversation` into the messages a reply was given.

Invariant: a candidate's context is exactly the messages rendered before its reply with the
memories removed, whole: a memory branch makes every descendant memory, however deep. That
context is what the training example teaches from (design §6, context distillation), so a
memory that leaked into it would teach the model to expect its memories rather than know
them. An unset (epoch) timestamp stays 0 here; such replies are never candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ftreview.conversations import derived_id
from ftreview.v1 import conversation_pb2 as pb
from ftreview.wire import timestamp_ns

from .errors import InvalidArgument
from .model import ContextMessage

ROLE_NAMES: dict[pb.Role, str] = {
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}
ROLE_VALUES: dict[str, pb.Role] = {name: value for value, name in ROLE_NAMES.items()}


@dataclass(frozen=True)
class FlatMessage:
    role: str
    content: str
    timestamp_ns: int
    memory: bool
    path: str


def validate(conversation: pb.Conversation) -> None:
    """Refuse a conversation the Scorer could not render, naming the node at fault."""
    if not conversation.nodes:
        raise InvalidArgument("conversation.nodes", "the conversation has no nodes")
    _validate_nodes(conversation.nodes, "conversation.nodes")


def _validate_nodes(nodes: Iterable[pb.Node], prefix: str) -> None:
    for index, node in enumerate(nodes):
        path = f"{prefix}[{index}]"
        kind = node.WhichOneof("kind")
        if kind == "leaf":
            if node.leaf.role not in ROLE_NAMES:
                raise InvalidArgument(
                    path, "a message needs a role (system, user, assistant, tool)"
                )
        elif kind == "branch":
            if not node.branch.children:
                raise InvalidArgument(path, "a branch needs at least one child")
            _validate_nodes(node.branch.children, f"{path}.branch.children")
        else:
            raise InvalidArgument(path, "a node must be a leaf or a branch")


def with_id(conversation: pb.Conversation) -> pb.Conversation:
    """A copy that carries an id: the given one, or one derived from the content."""
    copy = pb.Conversation()
    copy.CopyFrom(conversation)
    if not copy.id:
        copy.id = derived_id(copy)
    return copy


def flatten(conversation: pb.Conversation) -> list[FlatMessage]:
    """Every leaf in rendering order; `memory` is inherited from any memory ancestor."""
    out: list[FlatMessage] = []

    def walk(nodes: Iterable[pb.Node], prefix: str, inherited_memory: bool) -> None:
        for index, node in enumerate(nodes):
            path = f"{prefix}[{index}]"
            memory = inherited_memory or node.memory
            if node.WhichOneof("kind") == "branch":
                walk(node.branch.children, f"{path}.children", memory)
            elif node.WhichOneof("kind") == "leaf":
                out.append(
                    FlatMessage(
                        role=ROLE_NAMES.get(node.leaf.role, "system"),
                        content=node.leaf.content,
                        timestamp_ns=timestamp_ns(node.timestamp),
                        memory=memory,
                        path=path,
                    )
                )

    walk(conversation.nodes, "nodes", False)
    return out


def replies(conversation: pb.Conversation) -> list[int]:
    """Timestamps of the trackable replies: assistant messages, not memory, timestamp set."""
    seen: list[int] = []
    for message in flatten(conversation):
        if message.role == "assistant" and not message.memory and message.timestamp_ns != 0:
            if message.timestamp_ns not in seen:
                seen.append(message.timestamp_ns)
    return seen


def reply_contexts(conversation: pb.Conversation) -> dict[int, tuple[ContextMessage, ...]]:
    """For each trackable reply, the messages before it without the memories."""
    contexts: dict[int, tuple[ContextMessage, ...]] = {}
    before: list[ContextMessage] = []
    for message in flatten(conversation):
        if message.memory:
            continue
        is_reply = message.role == "assistant" and message.timestamp_ns != 0
        if is_reply and message.timestamp_ns not in contexts:
            contexts[message.timestamp_ns] = tuple(before)
        before.append(ContextMessage(message.role, message.content, message.timestamp_ns))
    return contexts
