"""The conversation model every party shares: one flattener, one set of rules.

A `Conversation` on the wire is a tree (branches group messages, a memory branch makes
every descendant memory). `flatten` turns it into the flat list of `Message`s in rendering
order, each keeping the node path it came from ("nodes[2].children[0]"), so every error
and every reply can say where it is. Invariants:

- a conversation that flattens is one every service can render: it has nodes, every leaf
  has a known role, every branch has children, no branch nests deeper than
  `MAX_NESTING_DEPTH`, and every timestamp fits the 64-bit nanoseconds a reply is known
  by; anything else is refused with `InvalidInput` naming "conversation.<node path>";
- memory is inherited: a message is memory when it or any ancestor is marked memory, so a
  memory can never leak into a context that must not see it.

Plain Python over the generated messages: no gRPC, no service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ftreview.core.defaults import MAX_CONTENT_CHARS, MAX_MESSAGES, MAX_NESTING_DEPTH
from ftreview.core.errors import InvalidInput
from ftreview.core.values import Message
from ftreview.core.wire import checked_timestamp_ns
from ftreview.v1 import conversation_pb2 as pb

ROLE_NAMES: dict[int, str] = {
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}
ROLE_VALUES: dict[str, int] = {name: value for value, name in ROLE_NAMES.items()}
FIELD = "conversation"


def flatten(conversation: pb.Conversation, max_depth: int = MAX_NESTING_DEPTH) -> list[Message]:
    """Every leaf in rendering order; raises InvalidInput naming the node at fault."""
    if not conversation.nodes:
        raise InvalidInput(f"{FIELD}.nodes", "the conversation has no nodes")
    messages: list[Message] = []
    _walk(conversation.nodes, "nodes", False, 1, max_depth, messages)
    _check_size(messages)
    return messages


def _check_size(messages: list[Message]) -> None:
    if len(messages) > MAX_MESSAGES:
        raise InvalidInput(
            f"{FIELD}.nodes",
            f"{len(messages)} messages is over the limit of {MAX_MESSAGES}; split the conversation",
        )
    chars = sum(len(m.content) for m in messages)
    if chars > MAX_CONTENT_CHARS:
        raise InvalidInput(
            f"{FIELD}.nodes",
            f"{chars} characters of content is over the limit of {MAX_CONTENT_CHARS}; "
            "split the conversation",
        )


def derived_id(conversation: pb.Conversation) -> str:
    """An id for a conversation that has none, stable while the conversation grows.

    It is derived from the first message that is not a memory (its role, content and
    timestamp): an agent that appends turns, or recalls other memories, keeps one id, so
    its replies stay owned by one conversation. With no such message, the whole content.
    """
    first = next((m for m in flatten(conversation) if not m.memory), None)
    if first is not None:
        seed = f"{first.role}\0{first.content}\0{first.timestamp_ns}".encode()
    else:
        copy = pb.Conversation()
        copy.CopyFrom(conversation)
        copy.id = ""
        seed = copy.SerializeToString(deterministic=True)
    return f"c-{hashlib.sha256(seed).hexdigest()[:16]}"


def validate(conversation: pb.Conversation, max_depth: int = MAX_NESTING_DEPTH) -> None:
    """Refuse a conversation no service could render, naming the node at fault."""
    flatten(conversation, max_depth)


def _walk(
    nodes: Iterable[pb.Node],
    prefix: str,
    in_memory: bool,
    depth: int,
    max_depth: int,
    out: list[Message],
) -> None:
    for index, node in enumerate(nodes):
        path = f"{prefix}[{index}]"
        memory = in_memory or node.memory
        kind = node.WhichOneof("kind")
        if kind == "leaf":
            role = ROLE_NAMES.get(node.leaf.role)
            if role is None:
                raise InvalidInput(
                    f"{FIELD}.{path}", "unknown role (expected system, user, assistant or tool)"
                )
            ns = checked_timestamp_ns(node.timestamp, f"{FIELD}.{path}.timestamp")
            out.append(Message(role, node.leaf.content, ns, memory, path))
        elif kind == "branch":
            if not node.branch.children:
                raise InvalidInput(f"{FIELD}.{path}", "a branch needs at least one child")
            if depth >= max_depth:
                raise InvalidInput(
                    f"{FIELD}.{path}", f"branches nest deeper than {max_depth} levels"
                )
            _walk(node.branch.children, f"{path}.children", memory, depth + 1, max_depth, out)
        else:
            raise InvalidInput(f"{FIELD}.{path}", "a node must be a leaf or a branch")
