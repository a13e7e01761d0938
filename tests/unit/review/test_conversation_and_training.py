"""Contexts without memories, and the training examples built from them."""

from __future__ import annotations

import json

from ftreview.core.wire import to_timestamp
from ftreview.v1 import conversation_pb2 as pb

from review_service.adapters.scorer_wire import conversation_from_wire
from review_service.domain import examples as training
from review_service.domain import replies
from review_service.domain.model import Candidate, ContextMessage


def leaf(role: int, content: str, ts: int, memory: bool = False) -> pb.Node:
    node = pb.Node(memory=memory, leaf=pb.Leaf(role=role, content=content))
    node.timestamp.CopyFrom(to_timestamp(ts))
    return node


def test_a_memory_branch_removes_every_descendant_from_the_context() -> None:
    inner = pb.Node(
        branch=pb.Branch(label="notes", children=[leaf(pb.ROLE_USER, "deep memory", 3)])
    )
    memories = pb.Node(memory=True, branch=pb.Branch(label="m", children=[
        leaf(pb.ROLE_SYSTEM, "cat is Biscuit", 2), inner,
    ]))  # fmt: skip
    conv = pb.Conversation(id="c", nodes=[
        leaf(pb.ROLE_SYSTEM, "sys", 1), memories, leaf(pb.ROLE_USER, "name?", 4),
        leaf(pb.ROLE_ASSISTANT, "Biscuit.", 5), leaf(pb.ROLE_ASSISTANT, "old log", 0),
        leaf(pb.ROLE_ASSISTANT, "remembered reply", 6, memory=True),
    ])  # fmt: skip
    conversation = conversation_from_wire(conv)
    given = replies.given(conversation)
    # unset timestamps and memory leaves are not trackable
    assert replies.replies(conversation) == [5]
    assert [m.content for m in given[5].context] == ["sys", "name?"]
    assert given[5].question == "name?"


def candidate() -> Candidate:
    context = (
        ContextMessage("system", "sys", 1),
        ContextMessage("user", "hi", 2),
        ContextMessage("assistant", "hello", 3),
        ContextMessage("user", "cat?", 4),
    )
    return Candidate(5, "c", "Biscuit.", context, 1.8, 3.0)


def test_openai_example_trains_only_the_reply() -> None:
    example = training.openai_example(candidate())
    assert example["messages"][-1] == {"role": "assistant", "content": "Biscuit.", "weight": 1}
    assert [m.get("weight") for m in example["messages"][:-1]] == [None, None, 0, None]


def test_trl_example_puts_the_context_in_the_prompt() -> None:
    example = training.trl_example(candidate())
    assert [m["content"] for m in example["prompt"]] == ["sys", "hi", "hello", "cat?"]
    assert example["completion"] == [{"role": "assistant", "content": "Biscuit."}]


def test_the_endpoint_request_carries_one_stable_key_per_reply() -> None:
    body = training.endpoint_request([candidate()], model="smol")
    (example,) = body["examples"]
    assert example["idempotency_key"] == training.idempotency_key(5) == "ftreview-reply-5"
    assert body["model"] == "smol"
    assert json.loads(training.jsonl([candidate()], "openai")) == training.openai_example(
        candidate()
    )


def test_an_idempotency_key_names_its_reply_and_a_foreign_key_names_none() -> None:
    assert training.keyed_reply(training.idempotency_key(1_767_225_600_000_000_001)) == (
        1_767_225_600_000_000_001
    )
    assert training.keyed_reply("someone-elses-key-7") is None
    assert training.keyed_reply("ftreview-reply-") is None
    assert training.keyed_reply("ftreview-reply-12ab") is None


def test_the_proof_of_a_relayed_job_names_the_reply_it_is_about() -> None:
    from ftreview.core.wire import timestamp_ns
    from ftreview.v1 import review_pb2

    from review_service.adapters.job_http import parse_job
    from review_service.api.convert import job_to_wire

    key = training.idempotency_key(1_767_225_600_000_000_001)
    answer = {
        "state": "succeeded", "adapter": "v2", "learnt": 1,
        "per_example": [{"idempotency_key": key, "learnt": True, "fact": ["dr", "okafor"]},
                        {"idempotency_key": "theirs", "learnt": False, "fact": "biscuit"}],
    }  # fmt: skip
    wire = job_to_wire(parse_job(answer, "ft-1", "http://trainer"))
    assert (wire.id, wire.adapter, wire.state) == (
        "ft-1", "v2", review_pb2.TRAINING_JOB_STATE_SUCCEEDED,
    )  # fmt: skip
    ours, theirs = wire.per_example
    assert timestamp_ns(ours.timestamp) == 1_767_225_600_000_000_001
    assert ours.fact == "dr okafor"  # the trainer's list of fact words, as one line
    assert not theirs.HasField("timestamp") and theirs.learnt is False
    assert theirs.fact == "biscuit"
    assert wire.learnt == 1
