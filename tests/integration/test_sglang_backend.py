"""The `sglang` adapter against an in-test server speaking SGLang's documented `/generate`
format (`tests/support/fake_sglang.py`; no GPU here to run SGLang), over real loopback HTTP."""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.sglang import SglangBackend
from scorer_service.errors import BackendProtocolError, BackendRejected, BackendUnavailable
from tests.support.fake_sglang import FakeSglang
from tests.support.fake_vllm import IMPOSSIBLE_TOKEN, MODEL, greedy_continuation, token_text

WITH_MEMORIES = ScoreRequest(
    token_ids=[1, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 512, 2],
    ranges=[(3, 6), (9, 13)],
)
WITHOUT_MEMORIES = ScoreRequest(
    token_ids=[1, 503, 504, 505, 506, 510, 511, 512, 2], ranges=[(1, 4)]
)


def expected(request: ScoreRequest) -> list[list[float]]:
    from tests.support.fake_vllm import expected_logprobs

    values = expected_logprobs(request.token_ids)
    return [[float(v) for v in values[s:e] if v is not None] for s, e in request.ranges]


@pytest.fixture
def fake() -> Iterator[FakeSglang]:
    with FakeSglang() as server:
        yield server


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., SglangBackend]]:
    made: list[SglangBackend] = []

    def build(urls: list[str], **options: Any) -> SglangBackend:
        backend = SglangBackend(urls, **{"backoff": 0.0, "timeout": 5.0, **options})
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.aclose()


async def test_scores_the_ranges_from_one_before_the_first_scored_position(
    fake: FakeSglang, make: Callable[..., SglangBackend]
) -> None:
    results = await make([fake.url]).score([WITH_MEMORIES, WITHOUT_MEMORIES])

    assert results == [expected(WITH_MEMORIES), expected(WITHOUT_MEMORIES)]
    sent = {tuple(x.request["input_ids"]): x for x in fake.requests_to("/generate")}
    assert len(sent) == 2  # one request per variant
    first = sent[tuple(WITH_MEMORIES.token_ids)]
    assert first.request["logprob_start_len"] == 2
    assert first.request["return_logprob"] is True
    assert first.request["sampling_params"]["max_new_tokens"] == 0
    # Only positions 2.. came back, the first of them null, as SGLang answers.
    entries = first.response["meta_info"]["input_token_logprobs"]
    assert len(entries) == len(WITH_MEMORIES.token_ids) - 2 and entries[0][0] is None
    assert sent[tuple(WITHOUT_MEMORIES.token_ids)].request["logprob_start_len"] == 0


async def test_a_null_at_a_scored_position_is_refused_naming_it(
    fake: FakeSglang, make: Callable[..., SglangBackend]
) -> None:
    request = ScoreRequest([1, 800, IMPOSSIBLE_TOKEN, 801], [(1, 4)])

    with pytest.raises(BackendProtocolError, match=r"position 2\): logprob is null"):
        await make([fake.url]).score([request])


def _shift(answer: dict[str, Any]) -> None:
    entries = answer["meta_info"]["input_token_logprobs"]
    entries[:] = [[None, 1, None], *entries[:-1]]


def _drop_last(answer: dict[str, Any]) -> None:
    answer["meta_info"]["input_token_logprobs"].pop()


def _positive(answer: dict[str, Any]) -> None:
    answer["meta_info"]["input_token_logprobs"][2][0] = 0.7


def _other_prompt_length(answer: dict[str, Any]) -> None:
    answer["meta_info"]["prompt_tokens"] = 99


@pytest.mark.parametrize(
    ("rewrite", "complaint"),
    [
        (_shift, r"input_token_logprobs\[1\] \(position 3\) does not score the sent token 503"),
        (_drop_last, "11 entries for positions 2 to 13"),
        (_positive, r"position 4\): logprob is 0.7, above 0"),
        (_other_prompt_length, "read 99 prompt tokens of the 14 sent"),
    ],
)
async def test_an_answer_that_does_not_line_up_is_refused(
    rewrite: Callable[[dict[str, Any]], None],
    complaint: str,
    fake: FakeSglang,
    make: Callable[..., SglangBackend],
) -> None:
    fake.rewrite_next(rewrite, path="/generate")

    with pytest.raises(BackendProtocolError, match=complaint):
        await make([fake.url]).score([WITH_MEMORIES])


async def test_a_refusal_is_reported_in_sglangs_words_and_not_retried(
    fake: FakeSglang, make: Callable[..., SglangBackend]
) -> None:
    fake.reject_next(
        "The input (9000 tokens) is longer than the model's context length", path="/generate"
    )

    with pytest.raises(BackendRejected, match="longer than the model's context length"):
        await make([fake.url], retries=3).score([WITH_MEMORIES])

    assert len(fake.requests_to("/generate")) == 1


async def test_a_5xx_is_retried_on_the_next_replica_and_a_dead_one_skipped(
    make: Callable[..., SglangBackend],
) -> None:
    with socket.socket() as dead, FakeSglang() as first, FakeSglang() as second:
        dead.bind(("127.0.0.1", 0))
        first.fail_next(1, path="/generate")
        urls = [first.url, f"http://127.0.0.1:{dead.getsockname()[1]}", second.url]

        results = await make(urls, retries=1, model=MODEL).score([WITH_MEMORIES])

        assert results == [expected(WITH_MEMORIES)]
        assert [x.status for x in first.requests_to("/generate")] == [500]
        assert [x.status for x in second.requests_to("/generate")] == [200]


async def test_retries_run_out_as_unavailable_naming_the_engine(
    fake: FakeSglang, make: Callable[..., SglangBackend]
) -> None:
    fake.fail_next(10, status=503, path="/generate")

    with pytest.raises(BackendUnavailable) as caught:
        await make([fake.url], retries=2).score([WITH_MEMORIES])

    assert fake.url in str(caught.value) and len(fake.requests_to("/generate")) == 3


async def test_generate_is_greedy_and_stops_before_a_stop_token(
    fake: FakeSglang, make: Callable[..., SglangBackend]
) -> None:
    prompt = [1, 42, 43, 44]
    tokens = greedy_continuation(prompt, 10)
    stop = tokens[3]
    assert stop not in tokens[:3]

    generation = await make([fake.url]).generate(prompt, 10, stop_token_ids=[stop])

    assert generation.text == "".join(token_text(t) for t in tokens[:3])
    assert generation.token_count == 3
    (exchange,) = fake.requests_to("/generate")
    assert exchange.request["sampling_params"]["temperature"] == 0
    assert exchange.request["sampling_params"]["stop_token_ids"] == [stop]


async def test_info_reports_the_served_model_and_its_context(
    make: Callable[..., SglangBackend],
) -> None:
    with FakeSglang(max_model_len=32768) as fake:
        info = await make([fake.url]).info()

    assert (info.backend, info.model, info.context_length) == ("sglang", MODEL, 32768)


def test_all_positions_are_finite_in_the_fixture() -> None:
    assert all(math.isfinite(v) for values in expected(WITH_MEMORIES) for v in values)


async def test_the_scorer_scores_a_conversation_through_sglang(fixtures_dir: Any) -> None:
    """`--backend sglang` end to end: the Scorer's config builds this adapter, and a
    conversation with memories is scored with one /generate per variant."""
    from ftreview.conversations import load_conversations

    from scorer_service.conversation import flatten
    from scorer_service.scoring import score_conversation
    from scorer_service.server import ScorerConfig, build_backend

    with FakeSglang() as fake:
        backend, tokenizer = build_backend(ScorerConfig(backend="sglang", backend_urls=[fake.url]))
        assert isinstance(backend, SglangBackend)
        (conversation,) = load_conversations(fixtures_dir / "biscuit.json")
        result = await score_conversation(
            flatten(conversation),
            tokenizer,
            backend,
            conversation_id="biscuit",
            context_length=(await backend.info()).context_length,
            attribution=False,
        )
        await backend.aclose()
        assert all(r.scored for r in result.replies)
        assert len(fake.requests_to("/generate")) == 2
