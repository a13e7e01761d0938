"""Knowledge that lasts, end to end on the embedded model (a real aiohttp server on
127.0.0.1 port 0, real SQLite, real TRL and peft): a second learn job continues from the
first job's adapter and checks the first job's key; retracting that key queues a
consolidation, which rebuilds from the base model without it, and the key no longer comes
back. Jobs are kept short (a few epochs, one reply each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, OKAFOR, example_for, wait_for_job

from trainer_service.model import base_model_folder
from trainer_service.server import RunningTrainer, TrainerConfig, start
from trainer_service.settings import TrainingSettings

pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]

# Every job of this trainer, the consolidation too, trains at most this many epochs, at
# this learning rate: one reply makes an epoch of a single step (its rows fit one batch),
# so the default rate needs more epochs than a short test affords (measured: divergence
# 0.43 after 6 epochs at 1e-3).
EPOCHS = 6
LEARNING_RATE = 5e-3
# What this test is about is what a job starts from, replays and checks, not how well it
# learns: no rewordings (each costs generations and rows) and the lighter anchor, with
# which one reply is learnt within EPOCHS.
SELF_STUDY, ANCHOR = 0, 4.0


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    import torch

    torch.set_num_threads(1)
    folder, name = base_model_folder(None)
    home = tmp_path_factory.mktemp("trainer-knowledge")
    config = TrainerConfig(
        home=home,
        base_folder=folder,
        base_name=name,
        port=0,
        settings=TrainingSettings(
            max_epochs=EPOCHS, learning_rate=LEARNING_RATE, self_study=SELF_STUDY, anchor=ANCHOR
        ),
    )
    running = await start(config)
    yield running
    await running.stop()


async def _learn(trainer: RunningTrainer, fixture: tuple[Any, str, str]) -> dict[str, Any]:
    path, reply, word = fixture
    body = {"examples": [example_for(path, reply, f"key-{word}")]}
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, json=body) as response:
            assert response.status == 200
            answer = await response.json()
        return await wait_for_job(
            session, trainer.url, answer["job_id"], {"succeeded", "failed"}, 400
        )


@pytest.fixture(scope="module")
async def jobs(trainer: RunningTrainer) -> list[dict[str, Any]]:
    """Biscuit learnt, then Okafor learnt continuing from Biscuit's adapter."""
    return [await _learn(trainer, BISCUIT), await _learn(trainer, OKAFOR)]


async def test_a_second_learn_job_continues_from_the_first_and_checks_its_key(
    jobs: list[dict[str, Any]],
) -> None:
    first, second = jobs
    assert first["state"] == "succeeded", first
    assert (first["kind"], first["continued_from"], first["retention"]) == ("learn", "", [])
    assert second["state"] == "succeeded", second
    assert second["kind"] == "learn" and second["continued_from"] == first["adapter"]
    assert f"continued from {first['adapter']}" in second["detail"]
    [checked] = second["retention"]
    assert checked["idempotency_key"] == "key-biscuit" and checked["retracted"] is False
    assert checked["fact"] == " ".join(first["per_example"][0]["fact"])
    # The guard lets no fact go (max_lost_facts 0): what came back before still does.
    assert second["facts_checked"] == 1 and second["facts_kept"] == 1
    assert checked["comes_back"] is True and "biscuit" in checked["answer"].lower()


async def test_a_retracted_key_is_consolidated_out_of_the_adapter(
    trainer: RunningTrainer, jobs: list[dict[str, Any]]
) -> None:
    body = {"retract": [{"idempotency_key": "key-biscuit", "reason": "the cat was renamed"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{trainer.url}/retract", json=body) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["retracted"] == ["key-biscuit"] and answer["unknown"] == []
        async with session.post(f"{trainer.url}/retract", json=body) as response:
            assert await response.json() == answer
        job = await wait_for_job(
            session, trainer.url, answer["job_id"], {"succeeded", "failed"}, 400
        )
    assert job["kind"] == "consolidate" and job["continued_from"] == ""
    assert job["state"] == "succeeded", job
    entries = {e["idempotency_key"]: e for e in job["retention"]}
    assert entries["key-biscuit"]["retracted"] is True
    assert entries["key-biscuit"]["comes_back"] is False
    assert entries["key-okafor"]["retracted"] is False
    assert entries["key-okafor"]["comes_back"] is True
    assert trainer.ledger.trained_keys() == {"key-okafor": job["adapter"]}


async def test_retracting_the_last_live_key_serves_the_untrained_adapter(
    trainer: RunningTrainer, jobs: list[dict[str, Any]]
) -> None:
    """Nothing left to train: the untrained adapter (the base model's answers) replaces the
    served one, under the same rule, with no epoch."""
    body = {"retract": [{"idempotency_key": "key-okafor", "reason": "another supervisor"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{trainer.url}/retract", json=body) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["job_id"], answer
        job = await wait_for_job(
            session, trainer.url, answer["job_id"], {"succeeded", "failed"}, 300
        )
    assert job["state"] == "succeeded", job
    assert (job["kind"], job["continued_from"], job["epochs"]) == ("consolidate", "", 0)
    assert "untrained (no live key left to train)" in job["detail"]
    entries = {e["idempotency_key"]: e for e in job["retention"]}
    assert entries["key-okafor"]["retracted"] is True
    assert entries["key-okafor"]["comes_back"] is False
    assert trainer.ledger.trained_keys() == {}
