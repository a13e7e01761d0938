"""Per-memory attribution on the real embedded model, over real gRPC: each candidate names
the memory it leaned on, found by leaving that memory out (docs/design.md §4)."""

from __future__ import annotations

import grpc
from ftreview.conversations import parse_conversation
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc

CAT = "Memory: the user's cat is named Biscuit."
DENTIST = "Memory: the user's dentist is Dr. Okafor."


def _request(**options: object) -> scorer_pb2.ScoreConversationRequest:
    conversation = parse_conversation(
        {
            "id": "two-memories",
            "nodes": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "system", "content": CAT, "memory": True},
                {"role": "system", "content": DENTIST, "memory": True},
                {"role": "user", "content": "What's my cat's name?"},
                {"role": "assistant", "content": "Your cat is named Biscuit.", "timestamp": 1},
                {"role": "user", "content": "And who is my dentist?"},
                {"role": "assistant", "content": "Your dentist is Dr. Okafor.", "timestamp": 2},
            ],
        }
    )
    return scorer_pb2.ScoreConversationRequest(
        conversation=conversation,
        threshold=0.5,
        **options,  # type: ignore[arg-type]
    )


async def test_each_reply_is_attributed_to_the_memory_that_states_its_fact(
    scorer_address: str,
) -> None:
    async with grpc.aio.insecure_channel(scorer_address) as channel:
        response = await scorer_pb2_grpc.ScorerStub(channel).ScoreConversation(_request())
    cat, dentist = response.replies
    assert cat.candidate and dentist.candidate
    for reply, memory, other in ((cat, CAT, DENTIST), (dentist, DENTIST, CAT)):
        contents = [a.content for a in reply.attributions]
        assert contents == [memory, other], contents
        top, second = reply.attributions
        assert top.attribution > second.attribution + 0.5
        assert top.node_path == ("nodes[1]" if memory == CAT else "nodes[2]")


async def test_attribution_is_skipped_on_request_and_for_non_candidates(
    scorer_address: str,
) -> None:
    async with grpc.aio.insecure_channel(scorer_address) as channel:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        skipped = await stub.ScoreConversation(_request(skip_attribution=True))
        high = _request()
        high.threshold = 100.0  # nothing is a candidate
        none = await stub.ScoreConversation(high)
    assert all(r.candidate for r in skipped.replies)
    assert all(not r.attributions for r in skipped.replies)
    assert all(not r.candidate and not r.attributions for r in none.replies)
