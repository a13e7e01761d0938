"""In-memory ports for the Review's domain: a Scorer that scores by a table, a recording
fine-tuning endpoint, and a conversation codec, all plain Python (no gRPC, no HTTP), so the
rules are tested on the domain alone. The store is the real SQLite store on a temp file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ftreview.core.activity_hub import ActivityHub
from ftreview.v1 import activity_pb2, scorer_pb2

from review_service.adapters.job_http import JobFollower
from review_service.adapters.scorer_wire import failed_stats, stats_from_wire
from review_service.adapters.store_sqlite import SqliteStore
from review_service.app.config import ConfigFile
from review_service.app.review import Review
from review_service.domain.errors import EndpointError, ScorerFailed, ScorerUnavailable
from review_service.domain.model import (
    Conversation,
    MemoryAttribution,
    Message,
    NotCandidateReason,
    ScoredReply,
    ScoringStats,
    TokenValue,
)
from review_service.domain.ports import Answer, EndpointReply, Progress, ScoringResult

BASE_NS = 1_772_000_000_000_000_000


def reply_ts(cid: str, i: int) -> int:
    return BASE_NS + (sum(map(ord, cid)) % 1000) * 1_000_000 + (i + 1) * 1000 + 7


def conversation(cid: str, turns: int, *, at: Callable[[str, int], int] = reply_ts) -> Conversation:
    """A system prompt, one memory, then `turns` question/reply pairs."""
    messages = [
        Message("system", "You are helpful.", BASE_NS, False, "nodes[0]"),
        Message("system", f"Memory of {cid}.", BASE_NS + 1, True, "nodes[1].children[0]"),
    ]
    for i in range(turns):
        messages.append(
            Message("user", f"question {i}", at(cid, i) - 1, False, f"nodes[{2 + 2 * i}]")
        )
        messages.append(
            Message("assistant", f"{cid} reply {i}", at(cid, i), False, f"nodes[{3 + 2 * i}]")
        )
    return JsonConversations.make(cid, messages)


class JsonConversations:
    """The codec port: a conversation's body is its messages as JSON."""

    @staticmethod
    def make(cid: str, messages: list[Message]) -> Conversation:
        body = json.dumps([cid, [m.__dict__ for m in messages]]).encode()
        return Conversation(cid, tuple(messages), body)

    def decode(self, body: bytes) -> Conversation:
        cid, messages = json.loads(body)
        return Conversation(cid, tuple(Message(**m) for m in messages), body)

    def asking(self, base: Conversation | None, question: str) -> Conversation:
        messages = list(base.messages) if base is not None else []
        path = f"nodes[{len(messages)}]"
        messages.append(Message("user", question, 0, False, path))
        return self.make(base.id if base is not None else "ask", messages)

    def failed_stats(
        self, conversation_id: str, threshold: float, error: str, taken_at_ns: int
    ) -> ScoringStats:
        return failed_stats(conversation_id, threshold, error, taken_at_ns)


class TableScorer:
    """Scores by table (`divergence[content]`, else 0.5 with memories), as the Scorer's
    contract says: excluded replies are not scored, `only` limits the scored ones, unset
    timestamps are always scored and never candidates; candidates carry attributions."""

    def __init__(self) -> None:
        self.divergence: dict[str, float] = {}
        self.down = False
        self.broken = ""  # when set, `score` fails with this message
        self.calls: list[tuple[str, list[int], list[int]]] = []
        self.skipped_attribution: list[bool] = []
        self.gate: asyncio.Event | None = None
        # What `answer` says, and the conversations it was asked about.
        self.adapter = ""
        self.asked: list[Conversation] = []
        # Progress `progress` reports for any activity (then it ends); as the Scorer does,
        # `alternate` answers only after they were reported.
        self.reports: list[Progress] = []
        self.reported = asyncio.Event()

    async def ready(self, timeout: float) -> None:
        if self.down:
            raise ScorerUnavailable("the Scorer is down")

    async def score(
        self, conversation: Conversation, threshold: float, exclude: list[int], only: list[int],
        request_id: str, skip_attribution: bool = False,
    ) -> ScoringResult:  # fmt: skip
        self.calls.append((conversation.id, exclude, only))
        self.skipped_attribution.append(skip_attribution)
        if self.broken:
            raise ScorerFailed(self.broken)
        if self.gate is not None:
            await self.gate.wait()
        memories = [m for m in conversation.messages if m.memory]
        replies: list[ScoredReply] = []
        for m in conversation.messages:
            if m.role != "assistant" or m.memory:
                continue
            if m.timestamp_ns in exclude or (
                only and m.timestamp_ns and m.timestamp_ns not in only
            ):
                reason = (
                    NotCandidateReason.ALREADY_TRAINED
                    if m.timestamp_ns in exclude
                    else NotCandidateReason.NOT_REQUESTED
                )
                replies.append(ScoredReply(m.timestamp_ns, m.content, 0, 0, False, False,
                                           node_path=m.node_path, reason=reason))  # fmt: skip
                continue
            d = self.divergence.get(m.content, 0.5 if memories else 0.0)
            candidate = m.timestamp_ns != 0 and d > threshold
            reason = (
                NotCandidateReason.NONE if candidate
                else NotCandidateReason.UNSET_TIMESTAMP if m.timestamp_ns == 0
                else NotCandidateReason.BELOW_THRESHOLD
            )  # fmt: skip
            attributions = tuple(
                MemoryAttribution(mem.node_path, mem.content, d / (k + 1))
                for k, mem in enumerate(memories)
            ) if candidate and not skip_attribution else ()  # fmt: skip
            replies.append(ScoredReply(
                m.timestamp_ns, m.content, d, 2 * d, True, candidate,
                (TokenValue(1, m.content[:4], -1.0, -1.0 - d, d),), m.node_path, reason,
                attributions=attributions,
            ))  # fmt: skip
        scored = [r for r in replies if r.scored]
        top = max((r.divergence for r in scored), default=0.0)
        stats = stats_from_wire(scorer_pb2.FinetuneScoringStats(
            conversation_id=conversation.id, threshold=threshold, responses_seen=len(replies),
            responses_scored=len(scored), max_divergence=top,
            responses_above_threshold=sum(r.candidate for r in replies),
        ))  # fmt: skip
        return ScoringResult(replies, top, stats, adapter=self.adapter)

    async def alternate(
        self, conversation: Conversation, reply_timestamp_ns: int, request_id: str,
        timeout: float | None,
    ) -> str:  # fmt: skip
        if self.down:
            raise ScorerUnavailable("the Scorer is down")
        if self.reports:
            await self.reported.wait()
        return f"alternate of {reply_timestamp_ns}"

    async def answer(self, conversation: Conversation, max_new_tokens: int) -> Answer:
        if self.down:
            raise ScorerUnavailable("the Scorer is down")
        self.asked.append(conversation)
        return Answer(f"answer to {conversation.messages[-1].content!r}", self.adapter)

    async def progress(self, activity_id: str) -> AsyncIterator[Progress]:
        for report in self.reports:
            yield report
        self.reported.set()

    async def close(self) -> None:
        pass


@dataclass
class RecordingEndpoint:
    """Keeps the endpoint contract: trains each idempotency key once. `during_post` runs
    while a request is being answered (to look at the store mid-send)."""

    trained: set[str] = field(default_factory=set)
    posts: int = 0
    refuse: dict[str, str] = field(default_factory=dict)
    fail: str = ""  # when set: train, then answer with this error (outcome unknown)
    during_post: Callable[[dict[str, Any]], None] | None = None
    # The job every answer names ("": none, as an endpoint that does not run jobs).
    job_id: str = "job-1"

    async def post(
        self, url: str, body: dict[str, Any], timeout: float, retries: int
    ) -> EndpointReply:
        self.posts += 1
        if self.during_post is not None:
            self.during_post(body)
        accepted: set[str] = set()
        rejected: dict[str, str] = {}
        for example in body["examples"]:
            key = example["idempotency_key"]
            if key in self.refuse:
                rejected[key] = self.refuse[key]
                continue
            self.trained.add(key)  # a key seen before is acknowledged, not trained again
            accepted.add(key)
        if self.fail:
            raise EndpointError(self.fail)
        return EndpointReply(self.job_id, accepted, rejected)

    async def close(self) -> None:
        pass


class ScriptedTrainer:
    """The endpoint's jobs route (`GET {url}/jobs/{id}`) through httpx's MockTransport, so
    the Review's real `JobFollower` reads it: each job answers its script in turn (the last
    answer repeats); a job without a script answers 404, as an endpoint without the route.
    `hold` (when set) holds every answer until released. Like ftreview's trainer, it has the
    Scorer (`scorer`, set by `open_review`) load a job's adapter before it says the job
    succeeded, unless `loads` is False (an endpoint that never tells the Scorer)."""

    def __init__(self) -> None:
        self.scorer: TableScorer | None = None
        self.loads = True
        self.scripts: dict[str, list[dict[str, Any]]] = {}
        self.polls: dict[str, int] = {}
        self.hold: asyncio.Event | None = None
        # True: refuse every connection (a trainer that is down).
        self.silent = False

    async def handle(self, request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.rsplit("/", 1)[-1]
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        if self.silent:
            raise httpx.ConnectError("connection refused")
        if self.hold is not None:
            await self.hold.wait()
        script = self.scripts.get(job_id)
        if not script or "/jobs/" not in request.url.path:
            return httpx.Response(404, text="no such route")
        answer = script.pop(0) if len(script) > 1 else script[0]
        if self.loads and self.scorer is not None and answer.get("state") == "succeeded":
            self.scorer.adapter = str(answer.get("adapter") or "")
        return httpx.Response(200, json=answer)

    def follower(self) -> JobFollower:
        return JobFollower(httpx.MockTransport(self.handle), poll=0.01, give_up_after=0.2)


def _joined(trainer: ScriptedTrainer, scorer: TableScorer) -> ScriptedTrainer:
    trainer.scorer = trainer.scorer or scorer
    return trainer


def open_review(
    home: Path,
    scorer: TableScorer,
    endpoint: RecordingEndpoint | None = None,
    trainer: ScriptedTrainer | None = None,
) -> Review:
    review = Review(
        SqliteStore(home / "review.sqlite3"), scorer, endpoint or RecordingEndpoint(),
        ConfigFile(home / "config.json5"), ActivityHub(), codec=JsonConversations(),
        jobs=_joined(trainer or ScriptedTrainer(), scorer).follower(),
    )  # fmt: skip
    review.resume()
    return review


async def ended(review: Review, activity_id: str) -> activity_pb2.Activity:
    """Follow an activity of the Review's hub to its end."""
    async for event in review.hub.watch(activity_id):
        if event.activity.state not in (
            activity_pb2.ACTIVITY_STATE_UNSPECIFIED,
            activity_pb2.ACTIVITY_STATE_RUNNING,
        ):
            return event.activity
    raise AssertionError(f"activity {activity_id} did not end")


async def job_ended(review: Review, job_id: str = "job-1") -> activity_pb2.Activity:
    """Follow the job's activity (`train-<job id>`) to its end: by then the job's end (or
    the endpoint's lack of a jobs route) has put its replies where they go."""
    return await asyncio.wait_for(ended(review, f"train-{job_id}"), 10)


async def ingest(review: Review, conv: Conversation) -> activity_pb2.Activity:
    activity_id, _ = await review.ingest(conv)
    return await asyncio.wait_for(ended(review, activity_id), 10)
