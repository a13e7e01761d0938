"""A refused consolidation blocks no learning, on the embedded model (real SQLite, real TRL
and peft, the trainer's own worker run synchronously as `ftreview-trainer` runs it):
Biscuit is learnt, then retracted, and its consolidation is refused; the next request's
job still continues from the served adapter (which still holds Biscuit), asks Biscuit with
its retention sample as a retracted key, and queues the consolidation again only while
Biscuit still comes back.

The refusal is written into the ledger as the worker writes one: with one key, a real
consolidation would promote the untrained adapter, and which live fact a real rebuild
fails to relearn cannot be chosen (bench/bench_accumulation.py shows one: the held-out
change scenario)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trainer_support import BISCUIT, OKAFOR, example_for

from trainer_service.adapters import AdapterVersions
from trainer_service.contract import parse_request
from trainer_service.ledger import JobLedger
from trainer_service.model import base_model_folder
from trainer_service.settings import TrainingSettings
from trainer_service.worker import JobWorker

pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]

# As in test_trainer_knowledge, where Okafor is learnt continuing from Biscuit's adapter.
SETTINGS = TrainingSettings(max_epochs=6, learning_rate=5e-3, self_study=0, anchor=4.0)


def _run(ledger: JobLedger, worker: JobWorker, fixture: tuple[Path, str, str]) -> dict[str, Any]:
    path, reply, word = fixture
    request = parse_request({"examples": [example_for(path, reply, f"key-{word}")]})
    job_id, _ = ledger.accept(request.examples, [], {})
    worker.run_job(job_id)
    job = ledger.job(job_id)
    assert job is not None
    return job


def test_a_learn_job_continues_over_a_refused_consolidation(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    folder, _ = base_model_folder(None)
    ledger = JobLedger(tmp_path / "trainer.sqlite3")
    worker = JobWorker(ledger, AdapterVersions(tmp_path), SETTINGS, folder, "cpu", None)
    first = _run(ledger, worker, BISCUIT)
    assert first["state"] == "succeeded", first

    refused = ledger.retract([("key-biscuit", "the cat was renamed")])["job_id"]
    ledger.start(refused)
    ledger.finish(
        refused,
        succeeded=False,
        detail="refused by the guard after 6 epochs",
        figures={},
        trained_keys=[],
        error="consolidation: 0 of 1 checked live keys come back, the served adapter 1",
    )
    assert ledger.next_queued() is None

    job = _run(ledger, worker, OKAFOR)
    # Not a rebuild from the base model: it continued the adapter that still holds Biscuit.
    assert (job["kind"], job["continued_from"]) == ("learn", first["adapter"]), job
    [checked] = job["retention"]
    assert (checked["idempotency_key"], checked["retracted"]) == ("key-biscuit", True)
    assert job["state"] == "succeeded", job
    assert job["learnt"] == 1 and "continued from" in job["detail"]
    # Biscuit was asked on the new adapter; a consolidation is due again only if it still
    # says "Biscuit" (it was learnt, and nothing trained it out).
    assert checked["comes_back"] is ("biscuit" in checked["answer"].lower())
    queued = ledger.next_queued()
    assert (queued is not None) is checked["comes_back"]
    assert job["queued_next"] == (queued or "")
    if queued is not None:
        assert (ledger.job(queued) or {})["kind"] == "consolidate"
    ledger.close()
