"""The trainer end to end on the embedded model: a real aiohttp server on 127.0.0.1 port 0,
real SQLite, real TRL and peft. Two fixture replies and a random code are sent in one job:
the job promotes the two it learnt (the adapter, loaded from disk here, answers them without
memories) and returns the code with its reason; sent again, the learnt keys train nothing
and the code goes into a new job, which learns nothing and promotes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from trainer_support import BISCUIT, OKAFOR, example_for, wait_for_job

from trainer_service.measures import greedy_answer, normalise
from trainer_service.model import base_model_folder, load_base
from trainer_service.scorer_link import ScorerLink
from trainer_service.server import RunningTrainer, TrainerConfig, start
from trainer_service.settings import TrainingSettings

# A job of three replies trains for several minutes on two shared cores.
pytestmark = [pytest.mark.model, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
async def trainer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTrainer]:
    import torch

    # Two cores shared with other work: one thread is several times faster than two.
    torch.set_num_threads(1)
    folder, name = base_model_folder(None)
    home = tmp_path_factory.mktemp("trainer-home")
    # Nothing listens on port 9 here: the job must succeed all the same and say so.
    unreachable = ScorerLink("127.0.0.1:9", timeout=10)
    # This test is about what a job promotes and returns, so it needs a reply no job learns.
    # The defaults' rewordings and heavier anchor learnt even the random code below within
    # 12 epochs (3/3 learnt), and so did the lighter anchor with neighbours (stop 34's CI);
    # without them it is not learnt, and the job is shorter.
    settings = TrainingSettings(self_study=0, anchor=4.0, neighbours=False)
    config = TrainerConfig(
        home=home,
        base_folder=folder,
        base_name=name,
        port=0,
        notify_scorer=unreachable,
        settings=settings,
    )
    running = await start(config)
    yield running
    await running.stop()


# A reply the model cannot learn in a job's epochs: a random code, its memory sent along.
LOCKER = "Your locker code is qzX7-vv9P-0kLw-J3rT."


def locker_example(key: str) -> dict[str, Any]:
    system = {"role": "system", "content": "You are a helpful assistant."}
    asked = {"role": "user", "content": "What's my locker code again?"}
    memory = {"role": "system", "content": "Memory: the user's locker code is qzX7-vv9P-0kLw-J3rT."}
    return {
        "idempotency_key": key,
        "conversation_id": "locker",
        "messages": [system, asked, {"role": "assistant", "content": LOCKER, "weight": 1}],
        "messages_with_memories": [system, memory, asked],
    }


@pytest.fixture(scope="module")
async def trained(trainer: RunningTrainer) -> dict[str, Any]:
    """The first job, on Biscuit, Okafor and the locker code, followed to its end."""
    examples = [example_for(p, reply, f"key-{word}") for p, reply, word in (BISCUIT, OKAFOR)]
    body = {
        "model": "smollm2-135m",
        "examples": [*examples, locker_example("key-locker")],
        "settings": {"max_epochs": 12},
    }
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, json=body) as response:
            assert response.status == 200
            answer = await response.json()
        running = await wait_for_job(session, trainer.url, answer["job_id"], {"running"}, 60)
        seen.append(running)
        job = await wait_for_job(
            session, trainer.url, answer["job_id"], {"succeeded", "failed"}, 900
        )
    return {"answer": answer, "job": job, "seen": seen}


async def test_the_job_promotes_what_it_learnt_and_returns_the_rest(
    trainer: RunningTrainer, trained: dict[str, Any]
) -> None:
    answer, job = trained["answer"], trained["job"]
    assert answer["accepted"] == ["key-biscuit", "key-okafor", "key-locker"]
    assert job["state"] == "succeeded", job
    assert job["adapter"] == "v1" and job["learnt"] == 2
    assert "promoted v1" in job["detail"] and "1 not learnt, returned" in job["detail"]
    assert (
        "the Scorer was not told: LoadAdapter at 127.0.0.1:9 failed (UNAVAILABLE)" in job["detail"]
    )
    # General knowledge kept: the guard's own figures at the promoted epoch.
    assert job["general_retention"] >= 0.9 and job["drift"] <= 0.1  # the guard's defaults
    proofs = {p["idempotency_key"]: p for p in job["per_example"]}
    assert proofs["key-biscuit"]["learnt"] and proofs["key-okafor"]["learnt"]
    assert proofs["key-biscuit"]["fact"] == ["Biscuit"], proofs["key-biscuit"]
    assert "biscuit" not in normalise(proofs["key-biscuit"]["answer_before"])
    assert "biscuit" in normalise(proofs["key-biscuit"]["answer_after"])
    locker = proofs["key-locker"]
    assert not locker["learnt"] and locker["reason"].startswith("not learnt: divergence ")
    assert locker["answer_after"] in locker["reason"] or "…" in locker["reason"]
    # Only what the adapter learnt is trained; the locker code waits to be sent again.
    assert trainer.ledger.trained_keys() == {"key-biscuit": "v1", "key-okafor": "v1"}
    pointer = json.loads((trainer.versions.root / "current.json").read_text())
    assert pointer == {"name": "v1", "path": job["adapter_path"]}

    # Measured here, on the adapter as the Scorer would load it from disk.
    from peft import PeftModel

    folder, _ = base_model_folder(None)
    base, tokenizer = load_base(folder, "cpu")
    model = PeftModel.from_pretrained(base, pointer["path"])
    for path, reply, word in (BISCUIT, OKAFOR):
        sent = example_for(path, reply, "x")
        assert word in normalise(greedy_answer(model, tokenizer, sent["messages"][:-1], 32))


async def test_progress_is_readable_while_the_job_runs(trained: dict[str, Any]) -> None:
    (running,) = trained["seen"]
    assert running["state"] == "running" and running["examples"] == 3
    assert running["adapter"] == "" and running["ended_at"] == ""


async def test_sent_again_learnt_keys_train_nothing_and_a_returned_one_trains_anew(
    trainer: RunningTrainer, trained: dict[str, Any]
) -> None:
    first = trained["answer"]["job_id"]
    pointer = trainer.versions.root / "current.json"
    promoted = pointer.read_bytes()
    examples = [example_for(p, r, f"key-{w}") for p, r, w in (OKAFOR, BISCUIT)]
    body = {
        "examples": [*examples, locker_example("key-locker")],
        # The job continues v1, which already trained on the code for many epochs (and did
        # not learn it): one step this small cannot learn it, so the job learns nothing.
        "settings": {"max_epochs": 1, "learning_rate": 1e-12},
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(trainer.url, json=body) as response:
            answer = await response.json()
        second = answer["job_ids"]["key-locker"]
        assert second != first
        assert answer["job_ids"] == {
            "key-okafor": first,
            "key-biscuit": first,
            "key-locker": second,
        }
        assert answer["accepted"] == ["key-okafor", "key-biscuit", "key-locker"]
        job = await wait_for_job(session, trainer.url, second, {"succeeded", "failed"}, 600)
    assert job["examples"] == 1
    assert (job["kind"], job["continued_from"]) == ("learn", "v1")
    assert job["state"] == "failed", job
    assert job["error"].startswith("guard: no epoch learnt a reply"), job["error"]
    assert job["adapter"] == "" and not job["per_example"][0]["learnt"]
    assert pointer.read_bytes() == promoted
    assert sorted(p.name for p in trainer.versions.root.iterdir()) == ["current.json", "v1"]
    assert trainer.ledger.trained_keys() == {"key-biscuit": "v1", "key-okafor": "v1"}
