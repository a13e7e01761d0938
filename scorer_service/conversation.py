"""A conversation as the Scorer sees it: a flat, validated list of messages.

Branches are resolved in order, a memory branch makes every descendant memory, and each
message keeps the node path it came from, so every error and every reply can say where it
is. The two variants differ only by dropping memory messages, whole; nothing else moves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ftreview.v1 import conversation_pb2 as pb
from ftreview.wire import timestamp_ns

from scorer_service.errors import InvalidConversation

ROLE_NAMES: dict[int, str] = {
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}


class Variant(enum.Enum):
    WITH_MEMORIES = "with memories"
    WITHOUT_MEMORIES = "without memories"


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    timestamp_ns: int
    memory: bool
    path: str

    @property
    def is_reply(self) -> bool:
        return self.role == "assistant" and not self.memory


def flatten(conversation: pb.Conversation) -> list[Message]:
    """All leaves in order; raises InvalidConversation naming the node at fault."""
    if not conversation.nodes:
        raise InvalidConversation("nodes", "the conversation has no nodes")
    messages: list[Message] = []
    for index, node in enumerate(conversation.nodes):
        _flatten_node(node, f"nodes[{index}]", False, messages)
    return messages


def _flatten_node(node: pb.Node, path: str, in_memory: bool, out: list[Message]) -> None:
    memory = in_memory or node.memory
    kind = node.WhichOneof("kind")
    if kind == "leaf":
        role = ROLE_NAMES.get(node.leaf.role)
        if role is None:
            raise InvalidConversation(
                path, "unknown role (expected system, user, assistant or tool)"
            )
        out.append(Message(role, node.leaf.content, timestamp_ns(node.timestamp), memory, path))
    elif kind == "branch":
        if not node.branch.children:
            raise InvalidConversation(path, "a branch needs at least one child")
        for index, child in enumerate(node.branch.children):
            _flatten_node(child, f"{path}.children[{index}]", memory, out)
    else:
        raise InvalidConversation(path, "a node must be a leaf or a branch")


def select(messages: list[Message], variant: Variant) -> list[Message]:
    if variant is Variant.WITH_MEMORIES:
        return messages
    return [m for m in messages if not m.memory]


def has_memories(messages: list[Message]) -> bool:
    return any(m.memory for m in messages)
