"""Adapter hot-load on the local engine, over real gRPC, on the real embedded model.

A tiny LoRA adapter with random (non-zero) weights is made with peft and saved; the Scorer
loads it with LoadAdapter without a restart, GetInfo names it, scores change (and equal a
pass from scratch on the adapter: no stale cache); an empty path gives back the base
model's scores exactly; scores and alternates name the adapter that served them; bad
folders are refused with the status and the path.

The engine has its own copy of the model: LoRA layers are injected into the model in place,
and the session's shared model must stay the base model for the other tests.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ftreview.conversations import load_conversations, parse_conversation
from ftreview.v1 import conversation_pb2, scorer_pb2, scorer_pb2_grpc

from scorer_service.backends.local import LocalBackend
from scorer_service.conversation import flatten
from scorer_service.scoring import score_conversation
from scorer_service.server import ScorerConfig, create_server
from tests.support.adapters import random_adapter


@pytest.fixture(scope="module")
def own_engine(embedded_backend: LocalBackend) -> LocalBackend:
    return LocalBackend(
        copy.deepcopy(embedded_backend.model),
        embedded_backend.tokenizer,
        embedded_backend.model_name,
    )


@pytest.fixture(scope="module")
def adapter(own_engine: LocalBackend, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adapters") / "v1"
    return random_adapter(own_engine.model, folder)


@pytest.fixture
async def stub(own_engine: LocalBackend) -> AsyncIterator[scorer_pb2_grpc.ScorerStub]:
    server, port = await create_server(
        ScorerConfig(listen="127.0.0.1:0"), backend=own_engine, tokenizer=own_engine.tokenizer
    )
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield scorer_pb2_grpc.ScorerStub(channel)
    await own_engine.load_adapter("", "")
    await server.stop(None)


def biscuit(fixtures_dir: Path) -> conversation_pb2.Conversation:
    return load_conversations(fixtures_dir / "biscuit.json")[0]


async def scores(
    stub: scorer_pb2_grpc.ScorerStub, conversation: conversation_pb2.Conversation
) -> list[tuple[float, float]]:
    response = await stub.ScoreConversation(
        scorer_pb2.ScoreConversationRequest(conversation=conversation)
    )
    return [
        (token.logprob_with_memories, token.logprob_without_memories)
        for reply in response.replies
        for token in reply.tokens
    ]


async def test_load_adapter_changes_scores_and_empty_path_restores_the_base_exactly(
    stub: scorer_pb2_grpc.ScorerStub, own_engine: LocalBackend, adapter: Path, fixtures_dir: Path
) -> None:
    conversation = biscuit(fixtures_dir)
    assert (await stub.GetInfo(scorer_pb2.GetInfoRequest())).adapter == ""
    base = await scores(stub, conversation)

    loaded = await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(adapter), name="v1"))
    assert loaded.adapter == "v1"
    assert (await stub.GetInfo(scorer_pb2.GetInfoRequest())).adapter == "v1"
    tuned = await scores(stub, conversation)
    assert max(abs(a[0] - b[0]) for a, b in zip(base, tuned, strict=True)) > 1e-2
    # The kept caches were computed by the base weights: a pass from scratch on the adapter
    # must agree with what the Scorer answered.
    scratch = LocalBackend(
        own_engine.model, own_engine.tokenizer, own_engine.model_name, kv_cache_mb=0
    )
    try:
        fresh = await score_conversation(
            flatten(conversation),
            own_engine.tokenizer,
            scratch,
            conversation_id=conversation.id,
            context_length=own_engine.context_length,
        )
    finally:
        await scratch.aclose()
    expected = [(t.logprob_with, t.logprob_without) for r in fresh.replies for t in r.tokens]
    for got, want in zip(tuned, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-4)

    answer = await stub.Answer(scorer_pb2.AnswerRequest(conversation=conversation))
    assert answer.adapter == "v1"

    back = await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=""))
    assert back.adapter == ""
    assert (await stub.GetInfo(scorer_pb2.GetInfoRequest())).adapter == ""
    assert await scores(stub, conversation) == base


async def test_scores_and_alternates_name_the_adapter_that_served_them(
    stub: scorer_pb2_grpc.ScorerStub, adapter: Path, fixtures_dir: Path
) -> None:
    conversation = biscuit(fixtures_dir)
    score = scorer_pb2.ScoreConversationRequest(conversation=conversation, skip_attribution=True)
    alternate = scorer_pb2.GenerateAlternateRequest(
        conversation=conversation,
        reply_timestamp=conversation.nodes[-1].timestamp,
        max_new_tokens=4,
    )
    assert (await stub.ScoreConversation(score)).adapter == ""  # the base model
    assert (await stub.GenerateAlternate(alternate)).adapter == ""
    await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(adapter), name="v1"))
    assert (await stub.ScoreConversation(score)).adapter == "v1"
    assert (await stub.GenerateAlternate(alternate)).adapter == "v1"
    await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=""))
    assert (await stub.ScoreConversation(score)).adapter == ""


async def test_the_folder_name_is_the_default_name(
    stub: scorer_pb2_grpc.ScorerStub, adapter: Path
) -> None:
    loaded = await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(adapter)))
    assert loaded.adapter == adapter.name


async def test_bad_folders_are_refused_with_the_path_and_the_adapter_in_use_stays(
    stub: scorer_pb2_grpc.ScorerStub, adapter: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    conversation = biscuit(fixtures_dir)
    await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(adapter), name="v1"))
    before = await scores(stub, conversation)

    missing = tmp_path / "no-such-adapter"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(missing), name="v2"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert str(missing) in (refused.value.details() or "")

    not_adapter = tmp_path / "plain-folder"
    not_adapter.mkdir()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(not_adapter), name="v2"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "adapter_config.json" in (refused.value.details() or "")

    # A config without weights fails inside peft: the previous adapter is put back.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.LoadAdapter(scorer_pb2.LoadAdapterRequest(path=str(broken), name="v2"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(broken) in (refused.value.details() or "")
    assert (await stub.GetInfo(scorer_pb2.GetInfoRequest())).adapter == "v1"
    assert await scores(stub, conversation) == pytest.approx(before, abs=1e-5)


async def test_answer_without_memories_after_the_last_message(
    stub: scorer_pb2_grpc.ScorerStub,
) -> None:
    memory = {"role": "system", "content": "Memory: the cat is Biscuit.", "memory": True}
    question = {"role": "user", "content": "What is the capital of France?"}
    conversation = parse_conversation({"id": "ask", "nodes": [memory, question]})
    answer = await stub.Answer(scorer_pb2.AnswerRequest(conversation=conversation))
    assert "Paris" in answer.text
    assert answer.adapter == ""
    only_memory = parse_conversation({"id": "empty", "nodes": [memory]})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Answer(scorer_pb2.AnswerRequest(conversation=only_memory))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_adapter_dir_current_json_is_served_at_start(
    own_engine: LocalBackend, adapter: Path, tmp_path: Path
) -> None:
    (tmp_path / "current.json").write_text(json.dumps({"name": "v7", "path": str(adapter)}))
    server, port = await create_server(
        ScorerConfig(listen="127.0.0.1:0", adapter_dir=str(tmp_path)),
        backend=own_engine,
        tokenizer=own_engine.tokenizer,
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = await scorer_pb2_grpc.ScorerStub(channel).GetInfo(scorer_pb2.GetInfoRequest())
        assert info.adapter == "v7"
    finally:
        await own_engine.load_adapter("", "")
        await server.stop(None)
