"""The `vllm` and `vllm-score` adapters against a stand-in vLLM over real loopback HTTP.

What a user would notice: the right numbers at the right positions, -inf kept, an engine's
refusal shown in its own words and not retried, a flaky replica retried, a dead replica
skipped, an answer that does not line up with the prompt refused instead of scored.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.vllm import VllmBackend, VllmServerBackend
from scorer_service.backends.vllm_score import VllmScoreBackend
from scorer_service.errors import BackendProtocolError, BackendRejected, BackendUnavailable
from tests.support.fake_vllm import (
    ADAPTER,
    IMPOSSIBLE_TOKEN,
    MAX_MODEL_LEN,
    MODEL,
    FakeVllm,
    expected_logprobs,
    greedy_continuation,
    token_text,
)

BACKENDS = [VllmBackend, VllmScoreBackend]
SCORE_PATH = {VllmBackend: "/v1/completions", VllmScoreBackend: "/score"}

# Two prompts, as the Scorer sends them: the same replies with and without memories.
WITH_MEMORIES = ScoreRequest(
    token_ids=[1, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 512, 2],
    ranges=[(3, 6), (9, 13)],
)
WITHOUT_MEMORIES = ScoreRequest(
    token_ids=[1, 503, 504, 505, 506, 510, 511, 512, 2],
    ranges=[(1, 4), (5, 8)],
)


def expected(request: ScoreRequest) -> list[list[float]]:
    values = expected_logprobs(request.token_ids)
    return [[_value(v) for v in values[start:end]] for start, end in request.ranges]


def _value(value: float | None) -> float:
    assert value is not None
    return value


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with FakeVllm() as server:
        yield server


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback port that refuses connections: bound, so nobody else takes it, but not
    listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


BackendFactory = Callable[..., VllmServerBackend]


@pytest.fixture
async def make() -> AsyncIterator[BackendFactory]:
    """Builds backends with fast retries and closes them after the test."""
    made: list[VllmServerBackend] = []

    def build(kind: type[VllmServerBackend], urls: list[str], **options: Any) -> VllmServerBackend:
        options = {"model": MODEL, "backoff": 0.0, "timeout": 5.0, **options}
        backend = kind(urls, **options)
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.aclose()


# --- success -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
async def test_scores_every_requested_range_at_its_positions(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    backend = make(kind, [fake.url])

    results = await backend.score([WITH_MEMORIES, WITHOUT_MEMORIES])

    assert results == [expected(WITH_MEMORIES), expected(WITHOUT_MEMORIES)]
    assert [len(values) for values in results[0]] == [3, 4]
    sent = fake.requests_to(SCORE_PATH[kind])
    assert sorted(exchange.request["prompt"] for exchange in sent) == sorted(
        [list(WITH_MEMORIES.token_ids), list(WITHOUT_MEMORIES.token_ids)]
    )


async def test_vllm_sends_a_one_token_prompt_logprobs_request(
    fake: FakeVllm, make: BackendFactory
) -> None:
    await make(VllmBackend, [fake.url]).score([WITH_MEMORIES])

    (exchange,) = fake.requests_to("/v1/completions")
    assert exchange.request == {
        "model": MODEL,
        "prompt": list(WITH_MEMORIES.token_ids),
        "max_tokens": 1,
        "temperature": 0,
        "top_p": 1,
        "prompt_logprobs": 0,
    }
    # The documented shape came back: null first, then one entry per position keyed by id.
    answer = exchange.response["choices"][0]["prompt_logprobs"]
    assert answer[0] is None
    assert list(answer[3]) == [str(WITH_MEMORIES.token_ids[3])]


async def test_prompt_logprobs_1_reads_the_sent_token_not_the_first_entry(
    fake: FakeVllm, make: BackendFactory
) -> None:
    backend = make(VllmBackend, [fake.url], prompt_logprobs=1)

    results = await backend.score([WITH_MEMORIES])

    assert results == [expected(WITH_MEMORIES)]
    entry = fake.requests_to("/v1/completions")[0].response["choices"][0]["prompt_logprobs"][3]
    assert next(iter(entry)) != str(WITH_MEMORIES.token_ids[3])  # the top token comes first


@pytest.mark.parametrize("kind", BACKENDS)
async def test_first_position_is_scored_from_the_null_entry_onwards(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    request = ScoreRequest(token_ids=[1, 700, 701, 702], ranges=[(1, 4)])

    (result,) = await make(kind, [fake.url]).score([request])

    assert result == expected(request)
    assert len(result[0]) == 3


@pytest.mark.parametrize("kind", BACKENDS)
async def test_clamped_minus_9999_comes_back_as_minus_infinity(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    request = ScoreRequest(token_ids=[1, 800, IMPOSSIBLE_TOKEN, 801], ranges=[(1, 4)])

    ((values,),) = await make(kind, [fake.url]).score([request])

    assert values[1] == -math.inf
    assert math.isfinite(values[0]) and math.isfinite(values[2])
    assert b"-9999.0" in _body_of(fake.requests_to(SCORE_PATH[kind])[0])


def _body_of(exchange: Any) -> bytes:
    return json.dumps(exchange.response).encode()


@pytest.mark.parametrize("kind", BACKENDS)
async def test_progress_is_reported_as_each_prompt_is_scored(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    seen: list[tuple[int, int]] = []

    await make(kind, [fake.url]).score(
        [WITH_MEMORIES, WITHOUT_MEMORIES], lambda done, total, detail: seen.append((done, total))
    )

    assert seen == [(1, 2), (2, 2)]


async def test_model_is_resolved_from_the_server_before_the_first_request(
    fake: FakeVllm, make: BackendFactory
) -> None:
    backend = make(VllmBackend, [fake.url], model=None)

    await backend.score([WITH_MEMORIES])
    await backend.score([WITHOUT_MEMORIES])

    assert [exchange.path for exchange in fake.exchanges] == [
        "/v1/models",
        "/v1/completions",
        "/v1/completions",
    ]
    assert fake.requests_to("/v1/completions")[0].request["model"] == MODEL


# --- engine refusals (4xx) ------------------------------------------------------------------


@pytest.mark.parametrize("envelope", ["nested", "flat"])
@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_refusal_is_reported_in_the_engines_words_and_not_retried(
    kind: type[VllmServerBackend], envelope: str, fake: FakeVllm, make: BackendFactory
) -> None:
    message = "This model's maximum context length is 8192 tokens. However, you requested 9000"
    fake.reject_next(message, envelope=envelope)

    with pytest.raises(BackendRejected) as caught:
        await make(kind, [fake.url], retries=3).score([WITH_MEMORIES])

    assert message in str(caught.value)
    assert caught.value.status_code == 400
    assert len(fake.requests_to(SCORE_PATH[kind])) == 1


async def test_a_refusal_that_is_not_json_is_still_reported(
    fake: FakeVllm, make: BackendFactory
) -> None:
    fake.send_raw_next(413, b"<html><body>Request Entity Too Large</body></html>")

    with pytest.raises(BackendRejected) as caught:
        await make(VllmBackend, [fake.url]).score([WITH_MEMORIES])

    assert "Request Entity Too Large" in str(caught.value)
    assert caught.value.status_code == 413


async def test_a_too_long_prompt_is_refused_by_the_server_with_its_reason(
    fake: FakeVllm, make: BackendFactory
) -> None:
    request = ScoreRequest(token_ids=[5] * MAX_MODEL_LEN, ranges=[(1, 2)])

    with pytest.raises(BackendRejected, match="maximum context length is 8192"):
        await make(VllmBackend, [fake.url]).score([request])


# --- flaky and dead replicas --------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_5xx_is_retried_and_the_retry_scores(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    fake.fail_next(1)

    results = await make(kind, [fake.url], retries=2).score([WITH_MEMORIES])

    assert results == [expected(WITH_MEMORIES)]
    assert [exchange.status for exchange in fake.requests_to(SCORE_PATH[kind])] == [500, 200]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_retries_run_out_on_a_failing_engine(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    fake.fail_next(10, status=503)

    with pytest.raises(BackendUnavailable) as caught:
        await make(kind, [fake.url], retries=2).score([WITH_MEMORIES])

    assert len(fake.requests_to(SCORE_PATH[kind])) == 3
    assert fake.url in str(caught.value)
    assert "HTTP 503" in str(caught.value)
    assert "engine step failed" in str(caught.value)


async def test_a_read_timeout_is_retried_then_reported(
    fake: FakeVllm, make: BackendFactory
) -> None:
    fake.stall_next(2)

    with pytest.raises(BackendUnavailable, match="timed out"):
        await make(VllmBackend, [fake.url], retries=1, timeout=0.3).score([WITH_MEMORIES])

    assert len(fake.requests_to("/v1/completions")) == 2


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_dead_url_among_several_is_skipped(
    kind: type[VllmServerBackend], fake: FakeVllm, dead_url: str, make: BackendFactory
) -> None:
    backend = make(kind, [dead_url, fake.url], retries=0)

    results = await backend.score([WITH_MEMORIES, WITHOUT_MEMORIES])
    results += await backend.score([WITH_MEMORIES])

    assert results == [
        expected(WITH_MEMORIES),
        expected(WITHOUT_MEMORIES),
        expected(WITH_MEMORIES),
    ]
    assert len(fake.requests_to(SCORE_PATH[kind])) == 3


async def test_the_two_variants_go_to_different_replicas(make: BackendFactory) -> None:
    with FakeVllm() as first, FakeVllm() as second:
        backend = make(VllmBackend, [first.url, second.url])

        results = await backend.score([WITH_MEMORIES, WITHOUT_MEMORIES])

        assert results == [expected(WITH_MEMORIES), expected(WITHOUT_MEMORIES)]
        assert len(first.requests_to("/v1/completions")) == 1
        assert len(second.requests_to("/v1/completions")) == 1


async def test_a_5xx_retry_moves_to_the_next_replica(make: BackendFactory) -> None:
    with FakeVllm() as first, FakeVllm() as second:
        first.fail_next(5)
        backend = make(VllmBackend, [first.url, second.url], retries=1)

        results = await backend.score([WITH_MEMORIES])

        assert results == [expected(WITH_MEMORIES)]
        assert [x.status for x in first.requests_to("/v1/completions")] == [500]
        assert [x.status for x in second.requests_to("/v1/completions")] == [200]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_no_replica_listening_is_unavailable_and_names_them(
    kind: type[VllmServerBackend], make: BackendFactory
) -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in (a, b)]

        with pytest.raises(BackendUnavailable) as caught:
            await make(kind, urls, retries=2).score([WITH_MEMORIES])

    for url in urls:
        assert url in str(caught.value)
    assert "cannot connect" in str(caught.value)
    assert "3 attempt(s)" in str(caught.value)


# --- answers that do not line up --------------------------------------------------------


def _drop_last_position(answer: dict[str, Any]) -> None:
    answer["choices"][0]["prompt_logprobs"].pop()


def _shift_positions(answer: dict[str, Any]) -> None:
    # Same length, but every entry one position late: what an extra BOS upstream looks like.
    entries = answer["choices"][0]["prompt_logprobs"]
    entries[:] = [None, None, *entries[1:-1]]


def _other_token_at_4(answer: dict[str, Any]) -> None:
    entries = answer["choices"][0]["prompt_logprobs"]
    entries[4] = {"999": {"logprob": -1.0, "rank": 1, "decoded_token": " x"}}


def _no_prompt_logprobs(answer: dict[str, Any]) -> None:
    answer["choices"][0]["prompt_logprobs"] = None


@pytest.mark.parametrize(
    ("rewrite", "complaint"),
    [
        (_drop_last_position, "13 entries for a prompt of 14 tokens"),
        (_shift_positions, "prompt_logprobs[3] does not score the sent token 503"),
        (_other_token_at_4, "prompt_logprobs[4] does not score the sent token 504"),
        (_no_prompt_logprobs, "no prompt_logprobs"),
    ],
)
async def test_vllm_refuses_an_answer_that_does_not_line_up(
    rewrite: Callable[[dict[str, Any]], None],
    complaint: str,
    fake: FakeVllm,
    make: BackendFactory,
) -> None:
    fake.rewrite_next(rewrite)

    with pytest.raises(BackendProtocolError, match=complaint.replace("[", r"\[")):
        await make(VllmBackend, [fake.url]).score([WITH_MEMORIES])


def _set_logprob_at_4(value: float) -> Callable[[dict[str, Any]], None]:
    def rewrite(answer: dict[str, Any]) -> None:
        if "choices" in answer:
            entry = answer["choices"][0]["prompt_logprobs"][4]
            entry[str(WITH_MEMORIES.token_ids[4])]["logprob"] = value
        else:  # /score: range [3, 6) holds position 4 at offset 1
            answer["ranges"][0]["logprobs"][1] = value

    return rewrite


@pytest.mark.parametrize("value", [math.inf, math.nan, 0.5, 3.0])
@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_logprob_that_is_not_in_minus_inf_to_0_is_refused_naming_its_position(
    kind: type[VllmServerBackend], value: float, fake: FakeVllm, make: BackendFactory
) -> None:
    fake.non_finite_json = True
    fake.rewrite_next(_set_logprob_at_4(value))

    with pytest.raises(BackendProtocolError) as caught:
        await make(kind, [fake.url]).score([WITH_MEMORIES])

    where = "prompt_logprobs[4]" if kind is VllmBackend else "range [3, 6) logprobs[1]"
    assert where in str(caught.value)


@pytest.mark.parametrize("kind", BACKENDS)
async def test_float_rounding_just_above_0_reads_as_0(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    fake.rewrite_next(_set_logprob_at_4(2e-7))

    ((values, _),) = await make(kind, [fake.url]).score([WITH_MEMORIES])

    assert values[1] == 0.0


# --- vllm-score specifics -----------------------------------------------------------------


async def test_vllm_score_sends_and_gets_back_only_the_requested_ranges(
    fake: FakeVllm, make: BackendFactory
) -> None:
    results = await make(VllmScoreBackend, [fake.url]).score([WITH_MEMORIES])

    assert results == [expected(WITH_MEMORIES)]
    (exchange,) = fake.requests_to("/score")
    assert exchange.request == {
        "model": MODEL,
        "prompt": list(WITH_MEMORIES.token_ids),
        "score_ranges": [[3, 6], [9, 13]],
    }
    returned = exchange.response["ranges"]
    assert [(r["start"], r["end"], len(r["logprobs"])) for r in returned] == [
        (3, 6, 3),
        (9, 13, 4),
    ]


def _drop_second_range(answer: dict[str, Any]) -> None:
    del answer["ranges"][1]


def _short_first_range(answer: dict[str, Any]) -> None:
    answer["ranges"][0]["logprobs"].pop()


def _extra_range(answer: dict[str, Any]) -> None:
    answer["ranges"].append({"start": 1, "end": 2, "logprobs": [-1.0]})


def _range_twice(answer: dict[str, Any]) -> None:
    answer["ranges"].append(dict(answer["ranges"][0]))


def _other_prompt_length(answer: dict[str, Any]) -> None:
    answer["usage"]["prompt_tokens"] = 15


@pytest.mark.parametrize(
    ("rewrite", "complaint"),
    [
        (_drop_second_range, r"left out requested range\(s\) \[\[9, 13\]\]"),
        (_short_first_range, r"range \[3, 6\) has 2 logprobs, expected 3"),
        (_extra_range, r"returned range \[1, 2\], which was not asked"),
        (_range_twice, r"returned range \[3, 6\] twice"),
        (_other_prompt_length, "read 15 prompt tokens of the 14 sent"),
    ],
)
async def test_vllm_score_refuses_ranges_that_do_not_line_up(
    rewrite: Callable[[dict[str, Any]], None],
    complaint: str,
    fake: FakeVllm,
    make: BackendFactory,
) -> None:
    fake.rewrite_next(rewrite)

    with pytest.raises(BackendProtocolError, match=complaint):
        await make(VllmScoreBackend, [fake.url]).score([WITH_MEMORIES])


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_range_outside_the_prompt_is_refused_before_anything_is_sent(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    request = ScoreRequest(token_ids=[1, 2, 3], ranges=[(0, 2)])

    with pytest.raises(ValueError, match=r"range \[0, 2\)"):
        await make(kind, [fake.url]).score([request])

    assert fake.exchanges == []


# --- generation and info -----------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
async def test_generate_returns_the_greedy_continuation(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    prompt = [1, 42, 43, 44]
    tokens = greedy_continuation(prompt, 6)

    generation = await make(kind, [fake.url]).generate(prompt, 6)

    assert generation.text == "".join(token_text(token) for token in tokens)
    assert generation.token_count == 6
    (exchange,) = fake.requests_to("/v1/completions")
    assert exchange.request["max_tokens"] == 6
    assert exchange.request["temperature"] == 0


@pytest.mark.parametrize("kind", BACKENDS)
async def test_generate_stops_before_a_stop_token(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    prompt = [1, 42, 43, 44]
    tokens = greedy_continuation(prompt, 10)
    stop = tokens[3]
    assert stop not in tokens[:3]

    generation = await make(kind, [fake.url]).generate(prompt, 10, stop_token_ids=[stop])

    assert generation.text == "".join(token_text(token) for token in tokens[:3])
    assert generation.token_count == 3
    assert fake.requests_to("/v1/completions")[0].request["stop_token_ids"] == [stop]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_info_reports_the_served_model_and_context_once(
    kind: type[VllmServerBackend], fake: FakeVllm, make: BackendFactory
) -> None:
    backend = make(kind, [fake.url], model=None)

    first = await backend.info()
    second = await backend.info()

    assert first == second
    assert (first.backend, first.model, first.context_length) == (kind.name, MODEL, MAX_MODEL_LEN)
    assert first.urls == [fake.url]
    assert len(fake.requests_to("/v1/models")) == 1


async def test_info_uses_the_named_model_entry(fake: FakeVllm, make: BackendFactory) -> None:
    info = await make(VllmBackend, [fake.url], model=ADAPTER).info()

    assert info.model == ADAPTER


async def test_a_model_the_server_does_not_serve_is_refused_with_what_it_serves(
    fake: FakeVllm, make: BackendFactory
) -> None:
    with pytest.raises(BackendRejected, match=f"'no-such-model' is not served.*'{MODEL}'"):
        await make(VllmBackend, [fake.url], model="no-such-model").info()


# --- every attempt's error, and vLLM's LoRA batching bug ----------------------------------


async def test_every_attempt_is_reported_with_the_engines_answer_first(
    fake: FakeVllm, make: BackendFactory
) -> None:
    fake.stall_next(1)
    fake.fail_next(1, status=500)

    with pytest.raises(BackendUnavailable) as caught:
        await make(VllmBackend, [fake.url], retries=1, timeout=0.3).score([WITH_MEMORIES])

    message = str(caught.value)
    assert "2 attempt(s)" in message
    assert message.index("HTTP 500: engine step failed") < message.index("timed out")
    assert "(attempt 2)" in message and "(attempt 1)" in message
    assert caught.value.engine_answers == [
        f"{fake.url}: HTTP 500: engine step failed (InternalServerError)"
    ]


async def test_an_engine_that_answers_500_and_dies_is_reported_by_its_500(
    make: BackendFactory,
) -> None:
    # What a user met: vLLM's engine failed a request with its reason, then the server exited.
    fake = FakeVllm()
    fake.__enter__()

    def answer_then_die(handler: Any, exchange: Any) -> bool:
        handler.send_error_envelope(
            exchange, 500, "nested", "InternalServerError", "EngineCore encountered an issue."
        )
        handler.close_connection = True
        threading.Thread(target=fake.close).start()
        return True

    fake._add_fault("/v1/completions", answer_then_die)
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await make(VllmBackend, [fake.url], retries=3, backoff=0.2).score([WITH_MEMORIES])
    finally:
        fake.close()

    message = str(caught.value)
    assert "HTTP 500: EngineCore encountered an issue." in message
    assert message.index("EngineCore") < message.index("cannot connect")
    assert "(attempts 2-4)" in message


async def test_batched_requests_failing_with_a_5xx_are_scored_one_at_a_time_from_then_on(
    fake: FakeVllm, make: BackendFactory, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(1, status=500, path="/v1/completions")
    backend = make(VllmBackend, [fake.url], retries=0)

    results = await backend.score([WITH_MEMORIES, WITHOUT_MEMORIES])
    results += await backend.score([WITH_MEMORIES, WITHOUT_MEMORIES])

    assert results == [expected(WITH_MEMORIES), expected(WITHOUT_MEMORIES)] * 2
    (note,) = (await backend.info()).notes
    assert "one request at a time" in note and "engine step failed" in note
    assert sum("one request at a time" in r.getMessage() for r in caplog.records) == 1


async def test_a_single_request_failing_does_not_change_how_the_engine_is_used(
    fake: FakeVllm, make: BackendFactory
) -> None:
    fake.fail_next(1, status=500, path="/v1/completions")
    backend = make(VllmBackend, [fake.url], retries=0)

    with pytest.raises(BackendUnavailable, match="engine step failed"):
        await backend.score([WITH_MEMORIES])

    assert (await backend.info()).notes == []
