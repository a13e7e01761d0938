"""The trainer end to end on the embedded model: a real aiohttp server on 127.0.0.1 port 0,
real SQLite, real TRL and peft. Two fixture replies are trained in; then the promoted
adapter, loaded from disk here, must know them without memories and keep generic replies;
the same keys sent again train nothing; a setting that over-trains is refused by the guard
and promotes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, FIXTURES, OKAFOR, example_for, wait_for_job

from trainer_service.measures import greedy_answer, normalise, reply_logprob
from trainer_service.model import base_model_folder, load_base
from trainer_service.scorer_link import ScorerLink
from trainer_service.server import RunningTrainer, TrainerConfig, start

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    import torch

    # Two cores shared with other work: one thread is several times faster than two.
    torch.set_num_threads(1)
    folder, name = base_model_folder(None)
    home = tmp_path_factory.mktemp("trainer-home")
    # Nothing listens on port 9 here: the job must succeed all the same and say so.
    unreachable = ScorerLink("127.0.0.1:9", timeout=10)
    config = TrainerConfig(
        home=home, base_folder=folder, base_name=name, port=0, notify_scorer=unreachable
    )
    running = await start(config)
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def trained(trainer: RunningTrainer) -> dict[str, Any]:
    """The first job, on Biscuit and Okafor, followed to its end; what was seen on the way."""
    body = {
        "model": "smollm2-135m",
        "examples": [example_for(p, reply, f"key-{word}") for p, reply, word in (BISCUIT, OKAFOR)],
    }
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, json=body) as response:
            assert response.status == 200
            answer = await response.json()
        running = await wait_for_job(session, trainer.url, answer["job_id"], {"running"}, 60)
        seen.append(running)
        job = await wait_for_job(
            session, trainer.url, answer["job_id"], {"succeeded", "failed"}, 600
        )
    return {"answer": answer, "job": job, "seen": seen}


async def test_the_job_trains_the_replies_in_and_keeps_generic_replies(
    trainer: RunningTrainer, trained: dict[str, Any]
) -> None:
    answer, job = trained["answer"], trained["job"]
    assert answer["accepted"] == ["key-biscuit", "key-okafor"] and answer["rejected"] == []
    assert job["state"] == "succeeded", job
    assert job["adapter"] == "v1" and job["recall"] == 1.0
    assert job["trained_divergence_after"] < 0.2 < job["trained_divergence_before"]
    assert job["generic_loglik_change"] > -0.2
    assert job["epochs"] >= 1 and "promoted v1" in job["detail"]
    # Both replies leaned on a memory with a subject: the guard counted their statements.
    assert "memories 2/2" in job["detail"] or "(held)" in job["detail"], job["detail"]
    assert (
        "the Scorer was not told: LoadAdapter at 127.0.0.1:9 failed (UNAVAILABLE)" in job["detail"]
    )
    pointer = json.loads((trainer.versions.root / "current.json").read_text())
    assert pointer == {"name": "v1", "path": job["adapter_path"]}
    proofs = {p["idempotency_key"]: p for p in job["per_example"]}
    assert proofs["key-biscuit"]["divergence_before"] > 1.0
    assert proofs["key-biscuit"]["divergence_after"] < 0.2
    assert "biscuit" not in normalise(proofs["key-biscuit"]["answer_before"])
    assert "biscuit" in normalise(proofs["key-biscuit"]["answer_after"])

    # Measured here, on the adapter as the Scorer would load it from disk.
    from peft import PeftModel

    folder, _ = base_model_folder(None)
    base, tokenizer = load_base(folder, "cpu")
    generic = [
        example_for(FIXTURES / "no-memories.json", "The capital of France is Paris.", "g1"),
        example_for(FIXTURES / "build-server.json", "You're welcome, goodbye!", "g2"),
    ]
    before = [
        reply_logprob(base, tokenizer, g["messages"][:-1], g["messages"][-1]["content"])
        for g in generic
    ]
    model = PeftModel.from_pretrained(base, pointer["path"])
    for path, reply, word in (BISCUIT, OKAFOR):
        sent = example_for(path, reply, "x")
        plain, full = sent["messages"][:-1], sent["messages_with_memories"]
        divergence = reply_logprob(model, tokenizer, full, reply) - reply_logprob(
            model, tokenizer, plain, reply
        )
        assert divergence < 0.2, (reply, divergence)
        assert word in normalise(greedy_answer(model, tokenizer, plain, 32))
    after = [
        reply_logprob(model, tokenizer, g["messages"][:-1], g["messages"][-1]["content"])
        for g in generic
    ]
    assert sum(a - b for a, b in zip(after, before, strict=True)) / len(generic) > -0.2


async def test_progress_is_readable_while_the_job_runs(trained: dict[str, Any]) -> None:
    (running,) = trained["seen"]
    assert running["state"] == "running" and running["examples"] == 2
    assert running["adapter"] == "" and running["ended_at"] == ""


async def test_the_same_keys_again_are_accepted_with_their_job_and_train_nothing(
    trainer: RunningTrainer, trained: dict[str, Any]
) -> None:
    first = trained["answer"]["job_id"]
    body = {"examples": [example_for(p, r, f"key-{w}") for p, r, w in (OKAFOR, BISCUIT)]}
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, json=body) as response:
            answer = await response.json()
        async with session.get(f"{trainer.url}/jobs") as response:
            jobs = (await response.json())["jobs"]
    assert answer["job_id"] == first
    assert answer["accepted"] == ["key-okafor", "key-biscuit"]
    assert answer["job_ids"] == {"key-okafor": first, "key-biscuit": first}
    assert [j["job_id"] for j in jobs] == [first]


async def test_the_guard_refuses_a_setting_that_overtrains(
    trainer: RunningTrainer, trained: dict[str, Any]
) -> None:
    pointer = trainer.versions.root / "current.json"
    promoted = pointer.read_bytes()
    path = FIXTURES / "build-server.json"
    body = {
        "examples": [
            example_for(path, "The nightly ktest run happens on fennec at 02:00 UTC.", "key-fennec")
        ],
        "settings": {"learning_rate": 0.05, "max_epochs": 3},
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, json=body) as response:
            job_id = (await response.json())["job_id"]
        job = await wait_for_job(session, trainer.url, job_id, {"succeeded", "failed"}, 600)
    assert job["state"] == "failed", job
    assert job["error"].startswith("guard: no epoch reached divergence < 0.1"), job["error"]
    assert "best epoch" in job["error"] and job["adapter"] == ""
    assert job["generic_loglik_change"] < -0.1
    assert pointer.read_bytes() == promoted
    assert sorted(p.name for p in trainer.versions.root.iterdir()) == ["current.json", "v1"]
