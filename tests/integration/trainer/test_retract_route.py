"""`POST /v1/ftreview/retract` over real HTTP (aiohttp on 127.0.0.1 port 0, real SQLite), with
no job trained (`run_jobs=False`): the bearer token guards it like every route, a bad body
is a 400 naming the field, a key never accepted is `unknown`, a key in a queued job leaves
it (the emptied job fails, saying why), and retracting again answers the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, OKAFOR, example_for

from trainer_service.model import base_model_folder
from trainer_service.server import RunningTrainer, TrainerConfig, start

TOKEN = "retract-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    folder, name = base_model_folder(None)
    home = tmp_path_factory.mktemp("trainer-retract")
    config = TrainerConfig(
        home=home, base_folder=folder, base_name=name, port=0, token=TOKEN, run_jobs=False
    )
    running = await start(config)
    yield running
    await running.stop()


async def _call(url: str, body: Any, headers: dict[str, str] = AUTH) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        data = body if isinstance(body, bytes) else None
        json_body = None if isinstance(body, bytes) else body
        async with session.post(url, json=json_body, data=data, headers=headers) as response:
            return response.status, await response.json()


async def test_the_route_needs_the_token(trainer: RunningTrainer) -> None:
    body = {"retract": [{"idempotency_key": "k", "reason": "r"}]}
    status, answer = await _call(f"{trainer.url}/retract", body, {})
    assert status == 401 and answer["error"].startswith("missing bearer token")
    status, answer = await _call(f"{trainer.url}/retract", body, {"Authorization": "Bearer x"})
    assert status == 401 and answer["error"].startswith("wrong bearer token")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not JSON: Expecting property name enclosed in double quotes"),
        (b"[]", "the body must be a JSON object, got list"),
        (b'{"retract": []}', "retract: expected a non-empty list"),
        (b'{"retract": [{"idempotency_key": "k"}]}', "retract[0].reason: expected a string"),
        (
            b'{"retract": [{"idempotency_key": 7, "reason": "r"}]}',
            "retract[0].idempotency_key: expected a non-empty string",
        ),
        (b'{"retract": [{"idempotency_key": "k", "reason": Infinity}]}', "Infinity"),
    ],
)
async def test_a_bad_body_is_a_400_naming_the_field(
    trainer: RunningTrainer, body: bytes, error: str
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    status, answer = await _call(f"{trainer.url}/retract", body, headers)
    assert status == 400 and error in answer["error"], answer


async def test_unknown_keys_and_a_key_taken_out_of_its_queued_job(trainer: RunningTrainer) -> None:
    examples = [example_for(p, reply, f"route-{word}") for p, reply, word in (BISCUIT, OKAFOR)]
    status, accepted = await _call(trainer.url, {"examples": examples})
    assert status == 200
    job_id = accepted["job_id"]
    body = {
        "retract": [
            {"idempotency_key": "route-biscuit", "reason": "the cat was renamed"},
            {"idempotency_key": "never-sent", "reason": "?"},
        ]
    }
    status, answer = await _call(f"{trainer.url}/retract", body)
    assert (status, answer) == (
        200,
        {"retracted": ["route-biscuit"], "unknown": ["never-sent"], "job_id": ""},
    )
    # Retracting again answers the same; the job keeps its other key.
    assert await _call(f"{trainer.url}/retract", body) == (status, answer)
    job = trainer.ledger.job(job_id)
    assert job is not None and job["state"] == "queued" and job["examples"] == 1
    assert (job["kind"], job["continued_from"], job["retention"]) == ("learn", "", [])
    # Sent again, a retracted key starts nothing.
    status, again = await _call(trainer.url, {"examples": examples[:1]})
    assert status == 200 and again["job_ids"] == {"route-biscuit": job_id}
    last = {"retract": [{"idempotency_key": "route-okafor", "reason": "wrong"}]}
    status, answer = await _call(f"{trainer.url}/retract", last)
    assert status == 200 and answer["job_id"] == ""
    job = trainer.ledger.job(job_id)
    assert job is not None and job["state"] == "failed"
    assert "every key was retracted before the job ran" in job["detail"]
