"""A trainer with a bearer token (a real aiohttp server on 127.0.0.1 port 0), and the Review's
HTTP clients that send it: a request without the token, or with another, is refused with
401 and stores nothing; the Review's Send and job following carry it to the URL it is for.

No job is trained here: the requests that pass the token name another base model, which
the contract refuses (400) after the token check, so a 400 proves the token was accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, example_for

from review_service.adapters.finetune_http import FinetuneAuth, HttpFinetuneEndpoint
from review_service.adapters.job_http import JobFollower
from review_service.domain.errors import EndpointError
from review_service.domain.jobs import NotFollowable
from trainer_service.model import base_model_folder
from trainer_service.server import RunningTrainer, TrainerConfig, start

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    folder, name = base_model_folder(None)
    home = tmp_path_factory.mktemp("trainer-token")
    config = TrainerConfig(home=home, base_folder=folder, base_name=name, port=0, token=TOKEN)
    running = await start(config)
    yield running
    await running.stop()


def _another_model() -> dict[str, Any]:
    path, reply, _ = BISCUIT
    return {"model": "llama-3-70b", "examples": [example_for(path, reply, "k0")]}


async def _call(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, json=body, headers=headers) as response:
            return response.status, await response.json()


@pytest.mark.parametrize(
    ("headers", "what"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer another"}, "wrong bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "wrong bearer token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "wrong bearer token"),
    ],
)
async def test_every_route_refuses_a_request_without_the_token(
    trainer: RunningTrainer, headers: dict[str, str], what: str
) -> None:
    for method, url, body in (
        ("POST", trainer.url, _another_model()),
        ("GET", f"{trainer.url}/jobs", None),
        ("GET", f"{trainer.url}/jobs/ft-1", None),
    ):
        status, answer = await _call(method, url, headers, body)
        assert status == 401, (method, url)
        assert answer["error"].startswith(what) and "Authorization: Bearer" in answer["error"]
    assert trainer.ledger.jobs() == [], "a refused request stores nothing"


async def test_the_token_lets_a_request_through_to_the_contract(trainer: RunningTrainer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status, answer = await _call("POST", trainer.url, headers, _another_model())
    assert status == 400 and "'llama-3-70b'" in answer["error"]
    assert await _call("GET", f"{trainer.url}/jobs", headers) == (200, {"jobs": []})


def test_which_url_gets_which_token() -> None:
    served = "http://127.0.0.1:8431/v1/ftreview"
    theirs = "https://trainer.example/v1/ftreview"
    bearer = {"Authorization": "Bearer own"}
    auth = FinetuneAuth(token=None, default_url=served, own_token="own")
    assert auth.headers(served) == bearer, "the trainer `serve` started shares the token"
    assert auth.headers(theirs) == {}, "a user's endpoint never gets the Review's own token"
    assert FinetuneAuth(None, "", "own").headers("") == {}
    given = FinetuneAuth(token="theirs", default_url=served, own_token="own")
    assert given.headers(theirs) == given.headers(served) == {"Authorization": "Bearer theirs"}
    assert FinetuneAuth().headers(served) == {}


async def test_the_reviews_send_and_job_following_carry_the_token(
    trainer: RunningTrainer,
) -> None:
    auth = FinetuneAuth(token=None, default_url=trainer.url, own_token=TOKEN)
    locked_out = HttpFinetuneEndpoint()
    with_token = HttpFinetuneEndpoint(headers_for=auth.headers)
    follower = JobFollower(headers_for=auth.headers)
    try:
        with pytest.raises(EndpointError, match=r"\(401\).*missing bearer token"):
            await locked_out.post(trainer.url, _another_model(), 5.0, 0)
        with pytest.raises(EndpointError, match=r"\(400\).*llama-3-70b"):
            await with_token.post(trainer.url, _another_model(), 5.0, 0)
        with pytest.raises(NotFollowable, match="answered 404"):
            await follower.fetch(trainer.url, "ft-9")  # an unknown job: past the token check
        with pytest.raises(ConnectionError, match=r"401: .*missing bearer token"):
            await JobFollower().fetch(trainer.url, "ft-9")
    finally:
        for client in (locked_out, with_token, follower):
            await client.close()
