"""Requests that break the README contract get a 400 saying where and what, and store
nothing (a real aiohttp server on 127.0.0.1 port 0; no job is trained)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, example_for

from trainer_service.model import base_model_folder
from trainer_service.server import RunningTrainer, TrainerConfig, start


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    folder, name = base_model_folder(None)
    home = tmp_path_factory.mktemp("trainer-contract")
    running = await start(TrainerConfig(home=home, base_folder=folder, base_name=name, port=0))
    yield running
    await running.stop()


async def _post(trainer: RunningTrainer, body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with session.post(trainer.url, **kwargs) as response:
            return response.status, await response.json()


def _good() -> dict[str, Any]:
    path, reply, _ = BISCUIT
    return {"examples": [example_for(path, reply, "k0")]}


async def test_contract_breaks_are_400_naming_the_field(trainer: RunningTrainer) -> None:
    assert await _post(trainer, {"model": "x"}) == (400, {"error": "examples: missing"})
    no_target = _good()
    no_target["examples"][0]["messages"][-1]["weight"] = 0
    assert await _post(trainer, no_target) == (
        400,
        {"error": "examples[0].messages: no message with weight 1"},
    )
    status, body = await _post(trainer, b"{not json")
    assert status == 400 and body["error"].startswith("the body is not JSON")


async def test_a_request_for_another_base_model_is_refused_naming_both(
    trainer: RunningTrainer,
) -> None:
    body = {**_good(), "model": "llama-3-70b"}
    status, answer = await _post(trainer, body)
    assert status == 400
    assert "'llama-3-70b'" in answer["error"] and "SmolLM2-135M-Instruct" in answer["error"]


async def test_refused_requests_store_nothing_and_unknown_jobs_are_404(
    trainer: RunningTrainer,
) -> None:
    assert trainer.ledger.jobs() == []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{trainer.url}/jobs/ft-404") as response:
            assert response.status == 404
            assert (await response.json()) == {"error": "no job 'ft-404'"}
        async with session.get(f"{trainer.url}/jobs") as response:
            assert (await response.json()) == {"jobs": []}
