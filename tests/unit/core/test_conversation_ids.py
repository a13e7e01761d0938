"""Derived conversation ids: stable while a conversation grows, different for another."""

from __future__ import annotations

from ftreview.core.conversation import derived_id
from ftreview.v1 import conversation_pb2 as pb


def _conversation(
    turns: int, memory: str = "the cat is Biscuit", first: str = "hi"
) -> pb.Conversation:
    nodes = [pb.Node(memory=True, leaf=pb.Leaf(role=pb.ROLE_SYSTEM, content=memory))]
    for i in range(turns):
        for role, text in (
            (pb.ROLE_USER, first if i == 0 else f"q{i}"),
            (pb.ROLE_ASSISTANT, f"a{i}"),
        ):
            node = pb.Node(leaf=pb.Leaf(role=role, content=text))
            node.timestamp.FromNanoseconds(1_000 + 2 * i + (role == pb.ROLE_ASSISTANT))
            nodes.append(node)
    return pb.Conversation(nodes=nodes)


def test_a_growing_conversation_keeps_its_id() -> None:
    assert derived_id(_conversation(1)) == derived_id(_conversation(5))


def test_other_memories_keep_the_id_but_another_first_turn_does_not() -> None:
    assert derived_id(_conversation(2)) == derived_id(_conversation(2, memory="the dog is Rex"))
    assert derived_id(_conversation(2)) != derived_id(_conversation(2, first="hello"))


def test_a_conversation_of_memories_only_is_named_by_its_content() -> None:
    only = pb.Conversation(
        nodes=[pb.Node(memory=True, leaf=pb.Leaf(role=pb.ROLE_SYSTEM, content="x"))]
    )
    other = pb.Conversation(
        nodes=[pb.Node(memory=True, leaf=pb.Leaf(role=pb.ROLE_SYSTEM, content="y"))]
    )
    assert derived_id(only).startswith("c-") and derived_id(only) != derived_id(other)
