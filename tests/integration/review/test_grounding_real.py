"""The grounding rule on the real model's per-token divergences: conversations scored by the
embedded Scorer over gRPC, read back through the Review's Scorer adapter, then grounded
(review_service.domain.grounding). The unit cases mark the memory-driven words by hand;
these check that the real values mark the same ones."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from ftreview.conversations import parse_conversation

from review_service.adapters.scorer_grpc import GrpcScorer
from review_service.adapters.scorer_wire import conversation_from_wire
from review_service.domain.grounding import Grounding, GroundingResult, ground

_CALLS = itertools.count()
DENTIST = "Memory: the user's dentist appointment is on 18 March at 14:30 with Dr. Haller."


@pytest.fixture
async def review_scorer(scorer_address: str) -> AsyncIterator[GrpcScorer]:
    scorer = GrpcScorer(scorer_address, 64 * 1024 * 1024)
    await scorer.ready(10.0)
    yield scorer
    await scorer.close()


async def grounded(scorer: GrpcScorer, memory: str, question: str, reply: str) -> GroundingResult:
    call = next(_CALLS)
    wire = parse_conversation(
        {
            "id": f"grounding-{call}",
            "nodes": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "system", "content": memory, "memory": True},
                {"role": "user", "content": question},
                {"role": "assistant", "content": reply, "timestamp": 1},
            ],
        }
    )
    result = await scorer.score(conversation_from_wire(wire), 0.0, [], [], f"grounding-{call}")
    (scored,) = result.replies
    assert scored.candidate and scored.tokens and scored.attributions
    return ground(scored.content, scored.tokens, scored.attributions, question)


def said(reply: str, result: GroundingResult) -> list[tuple[str, Grounding, str]]:
    return [(reply[s.start : s.end], s.kind, s.value) for s in result.spans]


async def test_a_reply_that_repeats_its_memory_is_supported(review_scorer: GrpcScorer) -> None:
    reply = "Your cat is Biscuit."
    result = await grounded(
        review_scorer, "Memory: the user's cat is named Biscuit.", "What's my cat's name?", reply
    )
    assert result.verdict is Grounding.SUPPORTED
    assert said(reply, result) == [("Biscuit", Grounding.SUPPORTED, "Biscuit")]


async def test_the_right_date_is_supported_and_a_wrong_one_contradicts(
    review_scorer: GrpcScorer,
) -> None:
    right = "It's on 18 March at 14:30 with Dr. Haller."
    result = await grounded(review_scorer, DENTIST, "When is my dentist appointment?", right)
    assert result.verdict is Grounding.SUPPORTED
    wrong = "It's on 12 March at 10:00 with Dr. Haller."
    result = await grounded(review_scorer, DENTIST, "When is my dentist appointment?", wrong)
    assert result.verdict is Grounding.CONTRADICTS_MEMORY
    spans = said(wrong, result)
    assert ("12 March", Grounding.CONTRADICTS_MEMORY, "18 March") in spans
    assert ("Haller", Grounding.SUPPORTED, "Haller") in spans
    assert all(s.node_path == "nodes[1]" for s in result.flagged)


async def test_a_time_no_memory_gives_goes_beyond_them(review_scorer: GrpcScorer) -> None:
    reply = "Your flight to Boston leaves at 9:00 on 3 June."
    result = await grounded(
        review_scorer,
        "Memory: the user's flight to Boston departs on 3 June.",
        "When is my flight?",
        reply,
    )
    assert result.verdict is Grounding.BEYOND_MEMORIES
    spans = said(reply, result)
    assert ("9:00", Grounding.BEYOND_MEMORIES, "") in spans
    assert ("3 June", Grounding.SUPPORTED, "3 June") in spans
