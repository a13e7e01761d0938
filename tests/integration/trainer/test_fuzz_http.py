"""The trainer's HTTP contract against hostile bodies: mutations of a valid request (wrong
types, missing and extra fields, huge and negative numbers, NaN and Infinity literals, deep
nesting, lone surrogates, any Unicode, broken and random bytes) under any Content-Type.
No answer may be a 5xx, and every refusal is JSON with an `error` saying what.

A real trainer on 127.0.0.1 port 0 (its own event loop on a thread, so hypothesis drives
plain blocking HTTP calls). Accepted requests are stored and queued but never trained: the
worker is not started (`run_jobs=False`). Derandomized, so CI sends the same bodies.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer_service.model import base_model_folder
from trainer_service.server import PATH, RunningTrainer, TrainerConfig, start

BODIES = 1200
CONTENT_TYPES = [
    None,
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "image/png",
]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTrainer]:
    folder, name = base_model_folder(None)
    config = TrainerConfig(
        home=tmp_path_factory.mktemp("trainer-fuzz"),
        base_folder=folder,
        base_name=name,
        port=0,
        run_jobs=False,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="trainer-loop", daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start(config), loop).result(120)
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _valid(key: str) -> dict[str, Any]:
    question = {"role": "user", "content": "What's my cat's name?"}
    return {
        "model": "smollm2-135m",
        "examples": [
            {
                "idempotency_key": key,
                "conversation_id": "biscuit",
                "divergence": 1.5,
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    question,
                    {"role": "assistant", "content": "Your cat is named Biscuit.", "weight": 1},
                ],
                "messages_with_memories": [
                    {"role": "system", "content": "Memory: the user's cat is Biscuit."},
                    question,
                ],
            }
        ],
        "held_out": [
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!", "weight": 1},
                ]
            }
        ],
        "settings": {"max_epochs": 4, "learning_rate": 0.001},
    }


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*at, i))
    return found


PATHS = _paths(_valid("k"))[1:]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 1, 10**20, 2**63, -(2**63), 1e308, 5e-324, 0.5, 1000, 1001])
)
SETTING_NAMES = st.sampled_from(
    [
        "target_divergence",
        "max_drift",
        "min_retention",
        "learning_rate",
        "max_epochs",
        "max_lost_facts",
        "rank",
    ]
)


def _set(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return body


def _delete(body: Any, path: tuple[Any, ...]) -> Any:
    node = body
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return body


Mutation = Callable[[dict[str, Any]], Any]


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    """One change to a valid body: a dict (sent as JSON) or bytes (sent as they are)."""
    kind = draw(
        st.sampled_from(
            ["none", "value", "delete", "extra", "setting", "text", "raw", "nest", "bytes"]
        )
    )
    path = draw(st.sampled_from(PATHS))
    if kind == "value":
        value = draw(VALUES)
        return lambda b: _set(b, path, value)
    if kind == "delete":
        return lambda b: _delete(b, path)
    if kind == "extra":
        name, value = draw(st.text(max_size=12)), draw(VALUES)
        dicts = [p for p in [(), *PATHS] if isinstance(_at(_valid("k"), p), dict)]
        where = draw(st.sampled_from(dicts))
        return lambda b: (_at(b, where).__setitem__(name, value), b)[1]
    if kind == "setting":
        name, number = draw(SETTING_NAMES), draw(NUMBERS)
        return lambda b: (b["settings"].__setitem__(name, number), b)[1]
    if kind == "text":
        strings = [p for p in PATHS if isinstance(_at(_valid("k"), p), str)]
        where, text = draw(st.sampled_from(strings)), draw(st.text(max_size=300))
        return lambda b: _set(b, where, text)
    if kind == "raw":
        literal = draw(
            st.sampled_from(["NaN", "Infinity", "-Infinity", '"\\ud800"', '"a\\udfff"'])
            | st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n)
            | st.sampled_from(['"\\ud83d\\ude00"', "1e999", "-0", "[]", "{}", '""'])
        )
        which = draw(st.integers(min_value=0, max_value=200))
        return lambda b: _replace_nth_value(json.dumps(b), which, literal).encode()
    if kind == "nest":
        depth = draw(st.sampled_from([2, 15, 16, 17, 100, 999, 1000, 5000, 100_000]))
        opener = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        return lambda b: (
            _set(b, path, "@NEST@")
            and json.dumps(b).replace('"@NEST@"', opener * depth + "1" + closer * depth).encode()
        )
    if kind == "bytes":
        raw = draw(st.binary(max_size=300))
        cut = draw(st.integers(min_value=0, max_value=2000))
        if draw(st.booleans()):
            return lambda b: raw
        return lambda b: json.dumps(b).encode()[:cut] + raw
    return lambda b: b


def _at(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


_VALUE = re.compile(r'(?<=: )("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null)')


def _replace_nth_value(text: str, n: int, literal: str) -> str:
    found = list(_VALUE.finditer(text))
    if not found:
        return text
    match = found[n % len(found)]
    return text[: match.start()] + literal + text[match.end() :]


def _request(
    port: int, method: str, path: str, body: bytes | None, content_type: str | None
) -> tuple[int, bytes, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        connection.close()


def _check(status: int, data: bytes, content_type: str, sent: str) -> Any:
    assert status < 500, f"{status} for {sent}: {data[:300]!r}"
    assert content_type.startswith("application/json"), (status, content_type, sent)
    answer = json.loads(data)
    if status != 200:
        assert status in (400, 404, 413), (status, answer, sent)
        assert isinstance(answer.get("error"), str) and answer["error"], (answer, sent)
    return answer


def test_no_body_gets_a_5xx_and_every_refusal_is_a_json_error(trainer: RunningTrainer) -> None:
    tally: collections.Counter[int] = collections.Counter()
    counter = iter(range(10**9))

    @settings(
        max_examples=BODIES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(change=mutations(), content_type=st.sampled_from(CONTENT_TYPES))
    def post(change: Mutation, content_type: str | None) -> None:
        body = change(_valid(f"fuzz-{next(counter)}"))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, answer, kind = _request(trainer.port, "POST", PATH, data, content_type)
        _check(status, answer, kind, data[:300].decode(errors="replace"))
        tally[status] += 1

    post()
    print(f"\nfuzzed trainer bodies: {sum(tally.values())}, statuses {dict(sorted(tally.items()))}")
    assert sum(tally.values()) >= 1000
    assert tally[200] and tally[400]  # both sides of the contract were reached
    # Nothing was trained: every accepted job is still queued.
    assert {job["state"] for job in trainer.ledger.jobs()} <= {"queued"}


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(job_id=st.text(max_size=60))
def test_any_job_id_is_404_or_a_job(trainer: RunningTrainer, job_id: str) -> None:
    quoted = quote(job_id.encode("utf-8", "surrogatepass"), safe="")
    status, data, kind = _request(trainer.port, "GET", f"{PATH}/jobs/{quoted}", None, None)
    _check(status, data, kind, job_id)
