"""`python -m scorer_service` as a real process: it says where it serves, and SIGTERM lets
a call in flight finish before the process exits."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from ftreview.conversations import load_conversations, parse_conversation
from ftreview.v1 import activity_pb2, activity_pb2_grpc, scorer_pb2, scorer_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.fake_vllm import FakeVllm
from tests.support.services import ServiceProcess, python_module


def _start(*options: str) -> tuple[subprocess.Popen[str], str]:
    """`python -m scorer_service --listen 127.0.0.1:0 OPTIONS`, once it says where it serves:
    its process and that address."""
    scorer = ServiceProcess(
        python_module("scorer_service", "--listen", "127.0.0.1:0", *options), serves=("scorer",)
    )
    scorer.start(timeout_s=240)
    return scorer.process, scorer.address


@pytest.mark.model  # the Scorer process loads the embedded model
def test_sigterm_drains_the_call_in_flight(fixtures_dir: Path) -> None:
    process, address = _start("--grace", "120")
    try:
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = scorer_pb2_grpc.ScorerStub(channel)
            conversation = load_conversations(fixtures_dir / "build-server.json")[0]
            call = stub.ScoreConversation.future(
                scorer_pb2.ScoreConversationRequest(conversation=conversation), timeout=120
            )
            # The signal comes once the server is working on the call.
            activities = activity_pb2_grpc.ActivitiesStub(channel)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                listed = activities.ListActivities(activity_pb2.ListActivitiesRequest())
                if any(a.state == activity_pb2.ACTIVITY_STATE_RUNNING for a in listed.activities):
                    break
                time.sleep(0.01)
            else:
                raise AssertionError("the scoring call never started")
            process.send_signal(signal.SIGTERM)
            response = call.result()
            assert len(response.replies) == 4 and response.max_divergence > 1.0
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_starts_while_its_engine_is_down_and_learns_the_context_once_it_answers(
    fixtures_dir: Path,
) -> None:
    with socket.socket() as probe:  # a free port, where the engine will come up later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = f"http://127.0.0.1:{port}"
    process, address = _start("--backend", "vllm", "--backend-url", engine)
    conversation = load_conversations(fixtures_dir / "biscuit.json")[0]
    request = scorer_pb2.ScoreConversationRequest(conversation=conversation)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = scorer_pb2_grpc.ScorerStub(channel)
            for call, message in (
                (stub.ScoreConversation, request),
                (stub.GetInfo, scorer_pb2.GetInfoRequest()),
            ):
                with pytest.raises(grpc.RpcError) as caught:
                    call(message, timeout=60)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert engine in (caught.value.details() or "")

            with FakeVllm(max_model_len=5000, port=port) as fake:
                response = stub.ScoreConversation(request, timeout=60)
                info = stub.GetInfo(scorer_pb2.GetInfoRequest(), timeout=60)
                assert fake.requests_to("/v1/completions")
            assert [r.scored for r in response.replies] == [True, True]
            assert info.context_length == 5000
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_sigterm_ends_a_busy_scorer_within_its_grace_period() -> None:
    """A 1,500-turn conversation on an engine that never answers: once the grace period
    ends, the call is cancelled and the process exits."""
    turns: list[dict[str, object]] = [
        {"role": "system", "content": "Memory: the user's cat is named Biscuit.", "memory": True}
    ]
    for turn in range(1500):
        turns.append({"role": "user", "content": f"Question {turn}: tell me about owls."})
        turns.append(
            {"role": "assistant", "content": f"Answer {turn}: owls fly.", "timestamp": turn + 1}
        )
    conversation = parse_conversation({"id": "busy", "nodes": turns})
    grace = 2.0
    with FakeVllm(max_model_len=2048) as fake:
        fake.stall_next(100, path="/v1/completions")
        process, address = _start(
            "--backend", "vllm", "--backend-url", fake.url, "--grace", str(grace)
        )
        try:
            with grpc.insecure_channel(address) as channel:
                call = scorer_pb2_grpc.ScorerStub(channel).ScoreConversation.future(
                    scorer_pb2.ScoreConversationRequest(conversation=conversation), timeout=300
                )
                deadline = time.monotonic() + 60
                while not fake.requests_to("/v1/completions"):
                    assert time.monotonic() < deadline, "the scorer never reached the engine"
                    time.sleep(0.01)
                signalled = time.monotonic()
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=grace + 10) == 0
                took = time.monotonic() - signalled
                with pytest.raises(grpc.RpcError) as caught:
                    call.result()
                assert caught.value.code() in (
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.UNAVAILABLE,
                )
            assert grace <= took < grace + 10
        finally:
            if process.poll() is None:
                process.kill()
