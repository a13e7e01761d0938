"""Divergence of a conversation's replies with and without memories (docs/design.md §4).

For a reply y_1..y_n sampled with the memories present,

    divergence = (1/n) Σ_t [log p(y_t | with memories, y_<t) − log p(y_t | without, y_<t)]

in nats per token: a Monte Carlo estimate of the per-token KL divergence between the model
with and without its memories, on this reply. Near zero, the model already knows what the
memories told it; large, the reply leans on something the weights lack.

Cost invariants: a whole conversation is one backend request per variant (two in all),
asking only for the positions inside reply ranges; a conversation without memory nodes
makes no backend call (every divergence is exactly 0); replies excluded (trained) or not
asked for are never sent. Only a conversation longer than the model's context adds
requests: replies that do not fit are scored in windows of the conversation, memories and
system messages kept (`planning`), and the stats count them. Candidates add one request
per memory before them (leave-one-out attribution), all in one backend call, after the
two-variant pass has said which replies are candidates.

Nothing here runs on the event loop but the awaits: rendering, tokenizing and planning run
in a worker thread that stops at its next check once the call is cancelled, and the backend
is not asked for another prompt group after that.
"""

from __future__ import annotations

import asyncio
import enum
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ftreview.core.defaults import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD

from scorer_service.backends.base import (
    ProgressCallback,
    RangeLogprobs,
    ScoreRequest,
    ScoringBackend,
)
from scorer_service.conversation import Message, Variant, has_memories
from scorer_service.planning import Cancelled, Job, PlannedReply, Planner, check
from scorer_service.tokenization import (
    ChatTokenizer,
    ReplyRange,
    TokenizedConversation,
    build_token_ids,
)

# A token one variant calls impossible (-inf, or vLLM's -9999 clamp) counts as this, so its
# divergence is huge and finite instead of inf or NaN.
LOGPROB_FLOOR = -1e4


class Reason(enum.Enum):
    """Why a reply is not a candidate (NONE: it is one). The names are those of the wire's
    `NotCandidateReason` (without its prefix), which is where they are described; how a
    client words them is `ftreview.client.reason_name`."""

    NONE = enum.auto()
    BELOW_THRESHOLD = enum.auto()
    UNSET_TIMESTAMP = enum.auto()
    ALREADY_TRAINED = enum.auto()
    TOO_LONG = enum.auto()
    TOKENIZATION_MISMATCH = enum.auto()
    NOT_REQUESTED = enum.auto()


@dataclass(frozen=True)
class TokenDivergence:
    token_id: int
    text: str
    logprob_with: float
    logprob_without: float

    @property
    def divergence(self) -> float:
        return self.logprob_with - self.logprob_without


@dataclass
class ReplyScore:
    message: Message
    scored: bool = False
    divergence: float = 0.0
    peak: float = 0.0
    tokens: list[TokenDivergence] = field(default_factory=list)
    candidate: bool = False
    reason: Reason = Reason.NOT_REQUESTED
    problem: str = ""
    context_tokens_cut: int = 0
    # Candidates only, largest first: how much the reply leaned on each memory before it.
    attributions: list[MemoryAttribution] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryAttribution:
    """The reply's divergence between the full context and the context without only this
    memory (leave-one-out), in nats per token."""

    node_path: str
    content: str
    attribution: float


@dataclass
class ScoringStats:
    """FinetuneScoringStats: enough to explain an empty candidate list."""

    conversation_id: str
    threshold: float
    responses_seen: int = 0
    responses_scored: int = 0
    responses_above_threshold: int = 0
    max_divergence: float = 0.0
    skipped_unset_timestamp: int = 0
    skipped_already_trained: int = 0
    skipped_too_long: int = 0
    skipped_tokenization_mismatch: int = 0
    truncated: int = 0
    error: str = ""
    taken_at_ns: int = field(default_factory=time.time_ns)


@dataclass
class ScoringResult:
    replies: list[ReplyScore]
    stats: ScoringStats
    backend_requests: int = 0

    @property
    def max_divergence(self) -> float:
        return self.stats.max_divergence

    @property
    def candidates(self) -> list[ReplyScore]:
        return [r for r in self.replies if r.candidate]


async def score_conversation(
    messages: Sequence[Message],
    tokenizer: ChatTokenizer,
    backend: ScoringBackend,
    *,
    conversation_id: str,
    context_length: int,
    threshold: float = DEFAULT_THRESHOLD,
    exclude: frozenset[int] = frozenset(),
    only: frozenset[int] = frozenset(),
    progress: ProgressCallback | None = None,
    attribution: bool = True,
    cancel: threading.Event | None = None,
) -> ScoringResult:
    """Score the conversation; tokenizing and planning run in a worker thread that stops at
    its next check once `cancel` is set (set here when this coroutine is cancelled)."""
    cancel = cancel if cancel is not None else threading.Event()
    try:
        scoring = await asyncio.to_thread(
            _Scoring.prepare,
            messages,
            tokenizer,
            conversation_id=conversation_id,
            context_length=context_length,
            threshold=threshold if threshold > 0 else DEFAULT_THRESHOLD,
            exclude=exclude,
            only=only,
            cancel=cancel,
        )
        results = await _run(backend, scoring.requests(), progress, cancel)
        await asyncio.to_thread(scoring.fill, results)
        if attribution:
            loo = await asyncio.to_thread(scoring.attribution_requests)
            if loo:
                # Every leave-one-out prompt in one call: the engine batches them.
                values = await _run(backend, [loo], None, cancel)
                await asyncio.to_thread(scoring.attribute, values)
    except (asyncio.CancelledError, Cancelled):
        cancel.set()
        raise asyncio.CancelledError from None
    return scoring.result


async def _run(
    backend: ScoringBackend,
    batches: list[list[ScoreRequest]],
    progress: ProgressCallback | None,
    cancel: threading.Event,
) -> list[RangeLogprobs]:
    """One backend call per batch (a job's variants share a padded batch), stopping between
    them once cancelled."""
    results: list[RangeLogprobs] = []
    for number, batch in enumerate(batches, 1):
        check(cancel)
        step = progress if len(batches) == 1 else None
        results.extend(await backend.score(batch, step, should_stop=cancel.is_set))
        if progress is not None and len(batches) > 1:
            progress(number, len(batches), f"scored prompt group {number} of {len(batches)}")
    return results


class _Scoring:
    """One conversation's scoring state, built and filled off the event loop."""

    def __init__(self, result: ScoringResult, planner: Planner | None, jobs: list[Job]) -> None:
        self.result = result
        self.planner = planner
        self.jobs = jobs
        self._by_path = {r.message.node_path: r for r in result.replies}
        self._logprobs_with: dict[str, list[float]] = {}
        self._loo: list[tuple[Job, Message, list[PlannedReply]]] = []

    @classmethod
    def prepare(
        cls,
        messages: Sequence[Message],
        tokenizer: ChatTokenizer,
        *,
        conversation_id: str,
        context_length: int,
        threshold: float,
        exclude: frozenset[int],
        only: frozenset[int],
        cancel: threading.Event,
    ) -> _Scoring:
        stats = ScoringStats(conversation_id, threshold)
        scores = [ReplyScore(m) for m in messages if m.is_reply]
        stats.responses_seen = len(scores)
        wanted: list[ReplyScore] = []
        for score in scores:
            ts = score.message.timestamp_ns
            if ts and ts in exclude:
                score.reason = Reason.ALREADY_TRAINED
                stats.skipped_already_trained += 1
            elif only and ts and ts not in only:
                # A reply without a timestamp cannot be named in `only`, nor remembered as
                # scored: it is scored (and counted) on every pass.
                score.reason = Reason.NOT_REQUESTED
            else:
                wanted.append(score)
        result = ScoringResult(scores, stats)
        if not wanted:
            return cls(result, None, [])
        check(cancel)
        with_memories = build_token_ids(messages, tokenizer, Variant.WITH_MEMORIES)
        check(cancel)
        without = build_token_ids(messages, tokenizer, Variant.WITHOUT_MEMORIES)
        check(cancel)
        pairs = _pair_ranges(wanted, with_memories, without)
        if not has_memories(list(messages)):
            for score, range_with, _ in pairs:
                score.tokens = [
                    TokenDivergence(
                        with_memories.token_ids[i], with_memories.token_text(i), 0.0, 0.0
                    )
                    for i in range(range_with.start, range_with.end)
                ]
                score.scored = True
            _judge(scores, threshold, stats)
            return cls(result, None, [])
        planner = Planner(messages, tokenizer, with_memories, without, context_length, cancel)
        jobs, too_long = planner.plan([(s.message.node_path, rw, ro) for s, rw, ro in pairs])
        for path in too_long:
            score = next(s for s in wanted if s.message.node_path == path)
            score.reason, score.problem = Reason.TOO_LONG, too_long[path]
        return cls(result, planner, jobs)

    def requests(self) -> list[list[ScoreRequest]]:
        batches = [
            [
                ScoreRequest(job.prompt_with, [r.range_with for r in job.replies]),
                ScoreRequest(job.prompt_without, [r.range_without for r in job.replies]),
            ]
            for job in self.jobs
        ]
        self.result.backend_requests = 2 * len(batches)
        return batches

    def fill(self, results: list[RangeLogprobs]) -> None:
        if self.planner is None:
            return  # judged already: no memories, or nothing wanted
        ids = self.planner.with_memories
        for job, lp_with, lp_without in zip(self.jobs, results[0::2], results[1::2], strict=True):
            for planned, with_values, without_values in zip(
                job.replies, lp_with, lp_without, strict=True
            ):
                score = self._by_path[planned.path]
                first = planned.original.start
                score.tokens = [
                    TokenDivergence(
                        ids.token_ids[first + offset],
                        ids.token_text(first + offset),
                        _floored(a),
                        _floored(b),
                    )
                    for offset, (a, b) in enumerate(zip(with_values, without_values, strict=True))
                ]
                score.context_tokens_cut = planned.context_tokens_cut
                score.scored = True
        _judge(self.result.replies, self.result.stats.threshold, self.result.stats)

    def attribution_requests(self) -> list[ScoreRequest]:
        """One prompt per memory per job that holds candidates: the job's with-memories
        prompt without that memory, scored at the candidates after the memory."""
        if self.planner is None:
            return []
        messages = self.planner.messages
        requests: list[ScoreRequest] = []
        for job in self.jobs:
            candidates = [r for r in job.replies if self._by_path[r.path].candidate]
            for memory in (i for i in job.kept if messages[i].memory):
                after = [r for r in candidates if self.planner.message_index(r.path) > memory]
                if not after:
                    continue
                built = self.planner.leave_one_out(job, memory, after)
                if built is None:
                    continue
                tokens, ranges = built
                requests.append(ScoreRequest(tokens, ranges))
                self._loo.append((job, messages[memory], after))
        self.result.backend_requests += len(requests)
        return requests

    def attribute(self, results: list[RangeLogprobs]) -> None:
        for (_, memory, replies), per_reply in zip(self._loo, results, strict=True):
            for planned, values in zip(replies, per_reply, strict=True):
                score = self._by_path[planned.path]
                differences = [
                    token.logprob_with - _floored(value)
                    for token, value in zip(score.tokens, values, strict=True)
                ]
                score.attributions.append(
                    MemoryAttribution(
                        memory.node_path, memory.content, math.fsum(differences) / len(differences)
                    )
                )
        for score in self.result.replies:
            score.attributions.sort(key=lambda a: a.attribution, reverse=True)


def _pair_ranges(
    wanted: list[ReplyScore], with_memories: TokenizedConversation, without: TokenizedConversation
) -> list[tuple[ReplyScore, ReplyRange, ReplyRange]]:
    """The reply's range in each variant; a reply whose tokens differ is reported, not scored."""
    pairs = []
    for score in wanted:
        range_with = with_memories.reply(score.message.node_path)
        range_without = without.reply(score.message.node_path)
        assert range_with is not None and range_without is not None
        problem = range_with.problem or range_without.problem
        if not problem and (
            with_memories.token_ids[range_with.start : range_with.end]
            != without.token_ids[range_without.start : range_without.end]
        ):
            problem = "the reply's tokens differ between the variants"
        if problem:
            score.reason, score.problem = Reason.TOKENIZATION_MISMATCH, problem
            continue
        pairs.append((score, range_with, range_without))
    return pairs


def _floored(logprob: float) -> float:
    if math.isnan(logprob):
        return LOGPROB_FLOOR
    return max(logprob, LOGPROB_FLOOR)


def _judge(scores: list[ReplyScore], threshold: float, stats: ScoringStats) -> None:
    maximum: float | None = None
    for score in scores:
        if score.reason is Reason.TOKENIZATION_MISMATCH:
            stats.skipped_tokenization_mismatch += 1
        if score.reason is Reason.TOO_LONG:
            stats.skipped_too_long += 1
        if not score.scored:
            continue
        values = [t.divergence for t in score.tokens]
        score.divergence = math.fsum(values) / len(values) if values else 0.0
        score.peak = max(values) if values else 0.0
        stats.responses_scored += 1
        if score.context_tokens_cut:
            stats.truncated += 1
        maximum = score.divergence if maximum is None else max(maximum, score.divergence)
        above = score.divergence > threshold
        if above:
            stats.responses_above_threshold += 1
        if not score.message.timestamp_ns:
            score.reason = Reason.UNSET_TIMESTAMP
            stats.skipped_unset_timestamp += 1
        elif above:
            score.reason, score.candidate = Reason.NONE, True
        else:
            score.reason = Reason.BELOW_THRESHOLD
    stats.max_divergence = maximum or 0.0
