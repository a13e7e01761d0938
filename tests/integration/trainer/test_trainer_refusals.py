"""Bad input is refused with 400 (or 413 for size) and a JSON error saying where and what,
never a 500 or a hang, and one large body never holds up the other requests (a real
aiohttp server on 127.0.0.1 port 0; accepted jobs stay queued: the worker is not started)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from ftreview.core.defaults import MAX_CONTENT_CHARS
from trainer_support import BISCUIT, example_for

from trainer_service.body import MAX_DEPTH, MAX_ELEMENTS
from trainer_service.lengths import MAX_REPLY_TOKENS
from trainer_service.model import base_model_folder
from trainer_service.server import RunningTrainer, TrainerConfig, start


async def _start(home: Any, **options: Any) -> RunningTrainer:
    folder, name = base_model_folder(None)
    config = TrainerConfig(
        home=home, base_folder=folder, base_name=name, port=0, run_jobs=False, **options
    )
    return await start(config)


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    running = await _start(tmp_path_factory.mktemp("trainer-refusals"))
    yield running
    await running.stop()


async def _post(
    trainer: RunningTrainer, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, data=data, headers=headers) as response:
            assert response.content_type == "application/json"
            return response.status, await response.json()


def _good(key: str = "k0") -> dict[str, Any]:
    path, reply, _ = BISCUIT
    return {"examples": [example_for(path, reply, key)]}


def _with_reply(reply: str) -> dict[str, Any]:
    body = _good()
    body["examples"][0]["messages"][-1]["content"] = reply
    body["examples"][0].pop("messages_with_memories")
    return body


async def test_a_valid_request_is_accepted_and_waits_untrained(trainer: RunningTrainer) -> None:
    status, answer = await _post(trainer, _good("accepted-1"))
    assert status == 200 and answer["accepted"] == ["accepted-1"]
    (job,) = [j for j in trainer.ledger.jobs() if j["job_id"] == answer["job_id"]]
    assert job["state"] == "queued"


@pytest.mark.parametrize(
    ("raw", "starts"),
    [
        (b"[" * 200_000 + b"]" * 200_000, f"the body nests deeper than {MAX_DEPTH} levels"),
        (b"{" + b'"a":{' * 200_000 + b"}" * 200_001, f"the body nests deeper than {MAX_DEPTH}"),
        (b'{"examples": [' + b"9" * 100_000 + b"]}", "the body is not JSON we take: a number"),
        (b'{"examples": [], "settings": {"max_epochs": NaN}}', "the body is not JSON: NaN"),
        (b'{"examples": [], "x": -Infinity}', "the body is not JSON: -Infinity"),
        (b'{"examples": [], "x": "\xff"}', "the body is not UTF-8 text"),
        (b"{not json", "the body is not JSON: Expecting property name"),
        (b"", "the body is not JSON"),
        (
            json.dumps({"examples": [], "x": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}).encode(),
            f"x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than {MAX_DEPTH}",
        ),
        (
            json.dumps({"examples": [], "x": [0] * (MAX_ELEMENTS + 1)}).encode(),
            f"the body holds more than {MAX_ELEMENTS} values",
        ),
    ],
    ids=[
        "deep-arrays",
        "deep-objects",
        "digits",
        "nan",
        "infinity",
        "not-utf8",
        "broken",
        "empty",
        "depth",
        "elements",
    ],
)
async def test_json_beyond_the_limits_is_400(
    trainer: RunningTrainer, raw: bytes, starts: str
) -> None:
    status, answer = await _post(trainer, raw)
    assert status == 400 and answer["error"].startswith(starts), answer


async def test_a_lone_surrogate_is_refused_naming_where(trainer: RunningTrainer) -> None:
    text = json.dumps(_good()).replace('"k0"', '"k\\ud800"')
    status, answer = await _post(trainer, text.encode())
    assert (status, answer["error"]) == (
        400,
        "examples[0].idempotency_key: a lone surrogate \\ud800 is not text",
    )
    # A surrogate pair is one character, and welcome.
    text = json.dumps(_good()).replace('"k0"', '"k\\ud83d\\ude00"')
    assert (await _post(trainer, text.encode()))[0] == 200


async def test_settings_out_of_bounds_are_400(trainer: RunningTrainer) -> None:
    jobs = len(trainer.ledger.jobs())
    body = {**_good("epochs"), "settings": {"max_epochs": 10**20}}
    assert await _post(trainer, body) == (
        400,
        {"error": "settings.max_epochs: must be at most 1000, got 1e+20"},
    )
    assert len(trainer.ledger.jobs()) == jobs


async def test_a_long_reply_is_refused_at_once_naming_the_field_and_the_limit(
    trainer: RunningTrainer,
) -> None:
    # The case: a 2 MB reply sat measuring for 150 s at 7.7 GB.
    status, answer = await _post(trainer, _with_reply("word " * 400_000))
    assert (status, answer["error"]) == (
        400,
        f"examples[0].messages: more than {MAX_CONTENT_CHARS} characters of content",
    )
    # Within the characters, beyond the tokens: that reply is rejected, as the contract's
    # `rejected` says, and the request's other replies are trained.
    jobs = len(trainer.ledger.jobs())
    body = _with_reply("word " * 2_000)
    body["examples"][0]["idempotency_key"] = "long-reply"
    body["examples"].append(_good("fits")["examples"][0])
    status, answer = await _post(trainer, body)
    assert status == 200 and answer["accepted"] == ["fits"]
    assert answer["rejected"] == [{
        "idempotency_key": "long-reply",
        "reason": f"examples[0].messages[4].content: the reply is 2001 tokens, at most "
                  f"{MAX_REPLY_TOKENS}",
    }]  # fmt: skip
    assert len(trainer.ledger.jobs()) == jobs + 1


async def test_a_context_beyond_the_model_is_rejected(trainer: RunningTrainer) -> None:
    body = _good("long-context")
    body["examples"][0]["messages"][1]["content"] = "word " * 9_000
    status, answer = await _post(trainer, body)
    assert (status, answer["accepted"], answer["job_id"]) == (200, [], "")
    (rejected,) = answer["rejected"]
    assert rejected["idempotency_key"] == "long-context"
    assert rejected["reason"].startswith("examples[0].messages: the context and its reply are ")
    assert rejected["reason"].endswith("the base model's context is 8192 tokens")
    body = _good("long-memories")
    body["examples"][0]["messages_with_memories"][0]["content"] += " word" * 9_000
    status, answer = await _post(trainer, body)
    (rejected,) = answer["rejected"]
    assert rejected["reason"].startswith("examples[0].messages_with_memories: the context and")


async def test_a_body_over_the_limit_is_413_before_it_is_read(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    small = await _start(tmp_path_factory.mktemp("trainer-small"), max_body_bytes=1000)
    try:
        status, answer = await _post(small, b" " * 1001)
        assert (status, answer) == (413, {"error": "the body is over 1000 bytes"})

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(10):
                yield b" " * 200

        async with aiohttp.ClientSession() as session:
            async with session.post(small.url, data=chunks()) as response:
                assert response.status == 413
                assert (await response.json())["error"] == "the body is over 1000 bytes"
    finally:
        await small.stop()


async def test_other_routes_and_methods_answer_json(trainer: RunningTrainer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(trainer.url.replace("/v1/ftreview", "/nowhere")) as response:
            assert response.status == 404 and "error" in await response.json()
        async with session.put(trainer.url) as response:
            assert response.status == 405 and "error" in await response.json()


async def _get_rounds(url: str, stop: asyncio.Event | None, count: int) -> list[float]:
    """Seconds per round of `GET url` and a 5 ms pause, one after another: `count` rounds,
    or until `stop` is set. A blocked loop stretches the round it falls in, GET or pause."""
    seen: list[float] = []
    async with aiohttp.ClientSession() as session:
        while (stop is None and len(seen) < count) or (stop is not None and not stop.is_set()):
            began = time.perf_counter()
            async with session.get(url) as response:
                assert response.status == 200
                await response.read()
            await asyncio.sleep(0.005)
            seen.append(time.perf_counter() - began)
    return seen


async def test_a_large_body_does_not_hold_up_other_requests(trainer: RunningTrainer) -> None:
    # 34 MB of small objects: the shape json.loads is slowest on, while it holds the GIL.
    body = json.dumps(
        {"examples": [], "padding": [{"role": "user", "content": "hi", "weight": 0}] * 700_000}
    ).encode()
    assert len(body) > 30_000_000
    began = time.perf_counter()
    json.loads(body)
    blocking = time.perf_counter() - began  # what parsing on the loop would cost each GET
    jobs = f"{trainer.url}/jobs"
    baseline = max(await _get_rounds(jobs, None, 20))

    done = asyncio.Event()

    async def post() -> tuple[int, Any]:
        try:
            return await _post(trainer, body)
        finally:
            done.set()

    posting = asyncio.ensure_future(post())
    during = await _get_rounds(jobs, done, 0)
    status, answer = await posting
    assert status == 400 and answer["error"] == f"the body holds more than {MAX_ELEMENTS} values"
    assert len(during) >= 5, "the body was refused before it could be parsed"
    assert max(during) < baseline + blocking / 2, (max(during), baseline, blocking)
