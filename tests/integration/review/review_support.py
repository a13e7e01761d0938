"""Helpers for the Review's integration tests: a stand-in Scorer served over real gRPC,
Review servers in this process on 127.0.0.1 port 0 with real SQLite files, and a real HTTP
fine-tuning receiver. The stand-in Scorer scores by a table (content -> divergence) so that
each test chooses which replies are candidates; the real Scorer on the real model is used
by test_with_real_scorer.py. A Review as a process of its own (to SIGKILL and restart) is
`tests.support.services.ReviewProcess`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from ftreview.core.activity_hub import ActivityHub
from ftreview.core.conversation import flatten
from ftreview.core.defaults import DEFAULT_THRESHOLD
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import (
    activity_pb2,
    activity_pb2_grpc,
    conversation_pb2,
    review_pb2,
    review_pb2_grpc,
    scorer_pb2,
    scorer_pb2_grpc,
)

from review_service.api.server import ReviewConfig, ReviewServer, create_server

BASE_NS = 1_772_000_000_000_000_000


def leaf(role: int, content: str, ts: int = 0, memory: bool = False) -> conversation_pb2.Node:
    node = conversation_pb2.Node(
        memory=memory, leaf=conversation_pb2.Leaf(role=role, content=content)
    )
    node.timestamp.CopyFrom(to_timestamp(ts))
    return node


def memory_branch(*children: conversation_pb2.Node) -> conversation_pb2.Node:
    node = conversation_pb2.Node(memory=True)
    node.branch.label = "recalled memories"
    node.branch.children.extend(children)
    return node


def make_conversation(cid: str, turns: int, first: int = 0) -> conversation_pb2.Conversation:
    """A conversation with one memory branch and `turns` user/assistant pairs; reply i says
    `reply_text(cid, i)` at `reply_ts(cid, i)`."""
    conv = conversation_pb2.Conversation(id=cid)
    conv.nodes.append(leaf(conversation_pb2.ROLE_SYSTEM, "You are helpful.", BASE_NS))
    conv.nodes.append(
        memory_branch(leaf(conversation_pb2.ROLE_SYSTEM, f"Memory of {cid}.", BASE_NS + 1))
    )
    for i in range(first, first + turns):
        conv.nodes.append(leaf(conversation_pb2.ROLE_USER, f"question {i}", reply_ts(cid, i) - 1))
        conv.nodes.append(
            leaf(conversation_pb2.ROLE_ASSISTANT, reply_text(cid, i), reply_ts(cid, i))
        )
    return conv


def reply_ts(cid: str, i: int) -> int:
    return BASE_NS + (sum(map(ord, cid)) % 1000) * 1_000_000 + (i + 1) * 1000 + 7


def reply_text(cid: str, i: int) -> str:
    return f"{cid} reply {i}"


class FakeScorer(scorer_pb2_grpc.ScorerServicer):  # type: ignore[misc]
    """Scores by table: `divergence[content]`, else 0.5 when the conversation has memories."""

    def __init__(self, hub: ActivityHub) -> None:
        self.hub = hub
        self.divergence: dict[str, float] = {}
        self.down = False
        self.gate: asyncio.Event | None = None
        self.requests: list[scorer_pb2.ScoreConversationRequest] = []
        self.adapter = ""  # what LoadAdapter loaded last; every score names it

    async def LoadAdapter(
        self, request: scorer_pb2.LoadAdapterRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.LoadAdapterResponse:
        self.adapter = request.name if request.path else ""
        return scorer_pb2.LoadAdapterResponse(adapter=self.adapter)

    async def ScoreConversation(
        self, request: scorer_pb2.ScoreConversationRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ScoreConversationResponse:
        self.requests.append(request)
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "backend down")
        activity = self.hub.start("score", "score", activity_id=request.request_id)
        if self.gate is not None:
            await self.gate.wait()
        exclude = {timestamp_ns(t) for t in request.exclude}
        only = {timestamp_ns(t) for t in request.only}
        messages = flatten(request.conversation)
        has_memory = any(m.memory for m in messages)
        threshold = request.threshold or DEFAULT_THRESHOLD
        response = scorer_pb2.ScoreConversationResponse(
            activity_id=activity.id, conversation_id=request.conversation.id, adapter=self.adapter
        )
        stats = response.stats
        stats.conversation_id = request.conversation.id
        stats.threshold = threshold
        for m in messages:
            if m.role != "assistant" or m.memory:
                continue
            reply = response.replies.add(content=m.content, node_path=m.node_path)
            reply.timestamp.CopyFrom(to_timestamp(m.timestamp_ns))
            stats.responses_seen += 1
            if m.timestamp_ns in exclude:
                reply.reason = scorer_pb2.NOT_CANDIDATE_REASON_ALREADY_TRAINED
                stats.skipped_already_trained += 1
                continue
            # As the Scorer does: an unset timestamp cannot be named in `only`; always scored.
            if only and m.timestamp_ns and m.timestamp_ns not in only:
                reply.reason = scorer_pb2.NOT_CANDIDATE_REASON_NOT_REQUESTED
                continue
            d = self.divergence.get(m.content, 0.5 if has_memory else 0.0)
            reply.scored = True
            reply.divergence = d
            reply.peak = d * 2
            reply.tokens.add(token_id=1, text=m.content[:4], divergence=d * 2)
            stats.responses_scored += 1
            stats.max_divergence = max(stats.max_divergence, d)
            if m.timestamp_ns == 0:
                reply.reason = scorer_pb2.NOT_CANDIDATE_REASON_UNSET_TIMESTAMP
                stats.skipped_unset_timestamp += 1
            elif d > threshold:
                reply.candidate = True
                stats.responses_above_threshold += 1
                for k, memory in enumerate(m for m in messages if m.memory):
                    reply.attributions.add(
                        node_path=memory.node_path, content=memory.content, attribution=d / (k + 1)
                    )
            else:
                reply.reason = scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD
        response.max_divergence = stats.max_divergence
        activity.succeed()
        return response

    async def GenerateAlternate(
        self, request: scorer_pb2.GenerateAlternateRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.GenerateAlternateResponse:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "backend down")
        text = f"alternate of {timestamp_ns(request.reply_timestamp)}"
        return scorer_pb2.GenerateAlternateResponse(text=text, token_count=3)


class FakeActivities(activity_pb2_grpc.ActivitiesServicer):  # type: ignore[misc]
    def __init__(self, hub: ActivityHub) -> None:
        self.hub = hub

    async def WatchActivities(
        self, request: activity_pb2.WatchActivitiesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[activity_pb2.WatchActivitiesResponse]:
        async for event in self.hub.watch(request.activity_id):
            yield event


@dataclass
class RunningFakeScorer:
    scorer: FakeScorer
    address: str


@contextlib.asynccontextmanager
async def serve_fake_scorer() -> AsyncIterator[RunningFakeScorer]:
    hub = ActivityHub()
    scorer = FakeScorer(hub)
    server = grpc.aio.server()
    scorer_pb2_grpc.add_ScorerServicer_to_server(scorer, server)
    activity_pb2_grpc.add_ActivitiesServicer_to_server(FakeActivities(hub), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield RunningFakeScorer(scorer, f"127.0.0.1:{port}")
    if scorer.gate is not None:
        scorer.gate.set()
    await server.stop(None)


class ReviewUnderTest:
    """A Review server in this process, with stubs; can be restarted on the same home."""

    def __init__(self, home: Path, scorer_address: str) -> None:
        self.home = home
        self.scorer_address = scorer_address
        self.server: ReviewServer | None = None
        self.channel: grpc.aio.Channel | None = None
        self.port = 0

    async def start(self) -> None:
        config = ReviewConfig(
            listen="127.0.0.1:0", scorer=self.scorer_address, home=self.home,
            scorer_ready_timeout=1.0, drain_seconds=0.5,
        )  # fmt: skip
        self.server, self.port = create_server(config)
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = review_pb2_grpc.ReviewStub(self.channel)
        self.activities = activity_pb2_grpc.ActivitiesStub(self.channel)

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self.server is not None:
            await self.server.stop(0.5)
            self.server = None

    @property
    def config_path(self) -> Path:
        return self.home / "config.json5"

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def ingest_and_wait(
        self, conversation: conversation_pb2.Conversation, timeout: float = 10.0
    ) -> activity_pb2.Activity:
        """Ingest, then follow the Review's activity to its end; returns the ended activity."""
        response = await self.stub.Ingest(review_pb2.IngestRequest(conversation=conversation))
        return await self.wait_activity(response.activity_id, timeout)

    async def wait_activity(self, activity_id: str, timeout: float = 10.0) -> activity_pb2.Activity:
        call = self.activities.WatchActivities(
            activity_pb2.WatchActivitiesRequest(activity_id=activity_id), timeout=timeout
        )
        last: activity_pb2.Activity | None = None
        async for event in call:
            if event.HasField("activity"):
                last = event.activity
                if last.state not in (
                    activity_pb2.ACTIVITY_STATE_UNSPECIFIED,
                    activity_pb2.ACTIVITY_STATE_RUNNING,
                ):
                    return last
        raise AssertionError(f"activity {activity_id} did not end: last {last}")

    async def list(self, *statuses: int) -> list[review_pb2.Candidate]:
        response = await self.stub.ListCandidates(
            review_pb2.ListCandidatesRequest(statuses=list(statuses))
        )
        return list(response.candidates)


# -- a real HTTP fine-tuning receiver --------------------------------------------------


@dataclass
class Receiver:
    """Implements the endpoint contract: dedups by idempotency key, trains each key once."""

    url: str = ""
    # idempotency keys trained, and how many times each reply (by its timestamp) was trained
    trained: set[str] = field(default_factory=set)
    trainings_per_reply: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # key -> reason
    # Answer 500 to the next N requests, after training them (a crash after the job began).
    fail_after_training: int = 0
    # Hold every answer until released (to make the client time out).
    hang: threading.Event | None = None
    # Called (in the server's thread) after a request was trained, before it is answered.
    after_training: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
            accepted, rejected = [], []
            for example in body["examples"]:
                key = example["idempotency_key"]
                if key in self.refuse:
                    rejected.append({"idempotency_key": key, "reason": self.refuse[key]})
                    continue
                if key not in self.trained:
                    self.trained.add(key)
                    reply = example["timestamp"]
                    self.trainings_per_reply[reply] = self.trainings_per_reply.get(reply, 0) + 1
                accepted.append(key)
            if self.fail_after_training > 0:
                self.fail_after_training -= 1
                return 500, {"error": "trainer crashed"}
        return 200, {
            "job_id": f"job-{len(self.requests)}",
            "accepted": accepted,
            "rejected": rejected,
        }


@contextlib.contextmanager
def serve_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:  # the sender died mid-request: nothing to train
                self.send_error(400, "truncated request")
                return
            if state.hang is not None:
                state.hang.wait(30)
                with state.lock:
                    state.requests.append(body)
                return
            code, answer = state.handle(body)
            trained_now = state.after_training
            if trained_now is not None:
                trained_now()  # trained, not answered yet: the window a crash test aims at
            data = json.dumps(answer).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # sender killed
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/finetune"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hang is not None:
        state.hang.set()
    server.shutdown()
    server.server_close()


async def until_none_in_training(stub: review_pb2_grpc.ReviewStub, timeout: float = 10.0) -> None:
    """Returns once no candidate is SENT: every job accepted so far has ended, or turned out
    unfollowable (the `Receiver` has no jobs route, so its replies go to the ledger as soon
    as the Review has asked it once)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        sent = await stub.ListCandidates(
            review_pb2.ListCandidatesRequest(statuses=[review_pb2.CANDIDATE_STATUS_SENT])
        )
        if not sent.candidates:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(sent.candidates)} replies still in training")
        await asyncio.sleep(0.02)


class CandidateWatch:
    def __init__(self, stub: review_pb2_grpc.ReviewStub) -> None:
        self.events: list[review_pb2.WatchCandidatesResponse] = []
        self._changed = asyncio.Event()
        self._call = stub.WatchCandidates(review_pb2.WatchCandidatesRequest())
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            async for event in self._call:
                self.events.append(event)
                self._changed.set()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass

    async def wait_for(
        self, condition: Callable[[list[review_pb2.WatchCandidatesResponse]], bool],
        timeout: float = 10.0,
    ) -> None:  # fmt: skip
        async def wait() -> None:
            while not condition(self.events):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def kinds(self) -> list[int]:
        return [e.kind for e in self.events]

    def of_kind(self, kind: int) -> list[review_pb2.WatchCandidatesResponse]:
        return [e for e in self.events if e.kind == kind]

    def close(self) -> None:
        self._call.cancel()
        self._task.cancel()
