"""Adapters on the vLLM engines: `POST /v1/load_lora_adapter` on every replica, then the
adapter's name is the model of every later request.

Against two in-test HTTP servers that speak vLLM's documented format (tests/support/
fake_vllm.py; vLLM cannot run on these machines), over real loopback HTTP.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scorer_service.backends.base import ScoreRequest
from scorer_service.backends.vllm import VllmBackend, VllmServerBackend
from scorer_service.backends.vllm_score import VllmScoreBackend
from scorer_service.errors import BackendRejected, InvalidAdapter
from tests.support.fake_vllm import MODEL, FakeVllm

REQUEST = ScoreRequest(token_ids=[1, 501, 502, 503, 504, 2], ranges=[(2, 5)])
SCORE_PATH = {VllmBackend: "/v1/completions", VllmScoreBackend: "/score"}


@pytest.fixture
def replicas() -> Iterator[tuple[FakeVllm, FakeVllm]]:
    with FakeVllm() as first, FakeVllm() as second:
        yield first, second


@pytest.fixture(params=[VllmBackend, VllmScoreBackend])
async def engine(
    request: pytest.FixtureRequest, replicas: tuple[FakeVllm, FakeVllm]
) -> AsyncIterator[VllmServerBackend]:
    kind: type[VllmServerBackend] = request.param
    backend = kind([server.url for server in replicas], retries=0)
    yield backend
    await backend.aclose()


@pytest.fixture
def adapter_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "v3"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    return folder


def models_used(server: FakeVllm, path: str) -> list[str]:
    return [exchange.request["model"] for exchange in server.requests_to(path)]


async def test_load_reaches_every_replica_and_later_requests_name_the_adapter(
    engine: VllmServerBackend, replicas: tuple[FakeVllm, FakeVllm], adapter_folder: Path
) -> None:
    await engine.score([REQUEST, REQUEST])
    assert (await engine.info()).adapter == ""
    assert await engine.load_adapter(str(adapter_folder), "v3") == "v3"
    for server in replicas:
        loads = server.requests_to("/v1/load_lora_adapter")
        assert [e.request for e in loads] == [{"lora_name": "v3", "lora_path": str(adapter_folder)}]
        assert loads[0].status == 200
    info = await engine.info()
    assert (info.adapter, info.model) == ("v3", MODEL)
    before = [len(models_used(s, SCORE_PATH[type(engine)])) for s in replicas]
    await engine.score([REQUEST, REQUEST])
    after = [
        models_used(s, SCORE_PATH[type(engine)])[n:] for s, n in zip(replicas, before, strict=True)
    ]
    assert sorted(after[0] + after[1]) == ["v3", "v3"]
    assert (await engine.generate([1, 2, 3], 4)).adapter == "v3"
    generations = [
        e.request["model"]
        for server in replicas
        for e in server.requests_to("/v1/completions")
        if e.request.get("max_tokens") == 4
    ]
    assert generations == ["v3"]
    # Back to the base model: later requests name it again, and no replica is asked to load.
    assert await engine.load_adapter("", "") == ""
    assert (await engine.info()).adapter == ""
    before = [len(models_used(s, SCORE_PATH[type(engine)])) for s in replicas]
    await engine.score([REQUEST, REQUEST])
    after = [
        models_used(s, SCORE_PATH[type(engine)])[n:] for s, n in zip(replicas, before, strict=True)
    ]
    assert sorted(after[0] + after[1]) == [MODEL, MODEL]
    assert all(len(s.requests_to("/v1/load_lora_adapter")) == 1 for s in replicas)


async def test_a_name_the_engine_holds_counts_as_loaded(
    engine: VllmServerBackend, replicas: tuple[FakeVllm, FakeVllm], adapter_folder: Path
) -> None:
    await engine.load_adapter(str(adapter_folder), "v3")
    # A Scorer restarted with --adapter-dir names the adapter the engines kept.
    assert await engine.load_adapter(str(adapter_folder), "v3") == "v3"
    assert all(
        [e.status for e in s.requests_to("/v1/load_lora_adapter")] == [200, 400] for s in replicas
    )


async def test_a_folder_the_engine_cannot_load_is_invalid_and_names_the_path(
    engine: VllmServerBackend, replicas: tuple[FakeVllm, FakeVllm], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(InvalidAdapter, match="no-such-adapter"):
        await engine.load_adapter(str(missing), "v9")
    assert (await engine.info()).adapter == ""
    await engine.score([REQUEST])
    assert all(
        e.request["model"] == MODEL
        for server in replicas
        for e in server.requests_to(SCORE_PATH[type(engine)])
    )


async def test_an_engine_without_runtime_lora_says_how_to_enable_it(
    engine: VllmServerBackend, replicas: tuple[FakeVllm, FakeVllm], adapter_folder: Path
) -> None:
    # vLLM only serves the route with VLLM_ALLOW_RUNTIME_LORA_UPDATING set; otherwise 404.
    replicas[0].reject_next(
        "Not Found", status=404, error_type="NotFoundError", path="/v1/load_lora_adapter"
    )
    with pytest.raises(BackendRejected, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
        await engine.load_adapter(str(adapter_folder), "v3")
    assert (await engine.info()).adapter == ""


async def test_an_engine_that_lost_the_adapter_gets_it_again_once(
    engine: VllmServerBackend, replicas: tuple[FakeVllm, FakeVllm], adapter_folder: Path
) -> None:
    await engine.load_adapter(str(adapter_folder), "v3")
    for server in replicas:  # both restarted: the adapters loaded at run time are gone
        server.loras.clear()

    await engine.score([REQUEST, REQUEST])
    assert (await engine.generate([1, 2, 3], 2)).adapter == "v3"

    info = await engine.info()
    assert (info.adapter, info.adapter_reloads) == ("v3", 1)
    assert any(note.startswith("loaded adapter v3 again") for note in info.notes)
    assert all(len(s.requests_to("/v1/load_lora_adapter")) == 2 for s in replicas)
    assert all(set(s.loras) == {"v3"} for s in replicas)


async def test_a_missing_base_model_is_not_mistaken_for_a_lost_adapter(
    replicas: tuple[FakeVllm, FakeVllm],
) -> None:
    backend = VllmBackend([replicas[0].url], "no-such-model", retries=0)
    try:
        with pytest.raises(BackendRejected, match="does not exist"):
            await backend.score([REQUEST])
    finally:
        await backend.aclose()
    assert replicas[0].requests_to("/v1/load_lora_adapter") == []


@pytest.mark.parametrize("status", [500, 400])
async def test_an_engine_without_lora_is_a_refusal_naming_the_flag_not_retried(
    status: int, replicas: tuple[FakeVllm, FakeVllm], adapter_folder: Path
) -> None:
    server = replicas[0]
    server.reject_next(
        "Loading lora v3 failed: LoRA is not enabled. Use --enable-lora to enable LoRA.",
        status=status,
        error_type="InternalServerError" if status == 500 else "BadRequestError",
        path="/v1/load_lora_adapter",
    )
    backend = VllmBackend([server.url], retries=3, backoff=0.0)
    try:
        with pytest.raises(BackendRejected, match="start vLLM with --enable-lora") as caught:
            await backend.load_adapter(str(adapter_folder), "v3")
        assert backend.adapter_in_use() == ""
    finally:
        await backend.aclose()
    assert caught.value.kind == "ENGINE_REJECTED"
    assert len(server.requests_to("/v1/load_lora_adapter")) == 1


async def test_a_scorer_started_while_the_engine_is_down_loads_the_adapter_when_it_answers(
    replicas: tuple[FakeVllm, FakeVllm], adapter_folder: Path, tmp_path: Path
) -> None:
    from scorer_service.server import load_current_adapter

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
        marker = tmp_path / "current.json"
        marker.write_text(json.dumps({"name": "v3", "path": str(adapter_folder)}))
        backend = VllmBackend([down], retries=0)
        await load_current_adapter(backend, str(tmp_path))
        assert backend.adapter_in_use() == "v3"
        await backend.aclose()

    # The engine comes up (here: at another address) without the adapter.
    backend = VllmBackend([replicas[0].url], retries=0)
    backend.keep_adapter(str(adapter_folder), "v3")
    try:
        await backend.score([REQUEST])
        info = await backend.info()
    finally:
        await backend.aclose()
    assert (info.adapter, info.adapter_reloads) == ("v3", 1)
    assert [e.request["model"] for e in replicas[0].requests_to("/v1/completions")] == [
        "v3",
        "v3",
    ]
