"""Divergence of a conversation's replies with and without memories (design.md §4).

For a reply y_1..y_n sampled with the memories present,

    divergence = (1/n) Σ_t [log p(y_t | with memories, y_<t) − log p(y_t | without, y_<t)]

in nats per token: a Monte Carlo estimate of the per-token KL divergence between the model
with and without its memories, on this reply. Near zero, the model already knows what the
memories told it; large, the reply leans on something the weights lack.

Cost invariants: a whole conversation is one backend request per variant (two in all),
asking only for the positions inside reply ranges; a conversation without memory nodes
makes no backend call (every divergence is exactly 0); replies excluded (trained) or not
asked for are never sent. Only a conversation longer than the model's context adds
requests: each reply that does not fit is scored with as much of its earlier context as
fits, memories and system messages kept, and the stats count it.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ftreview.core.defaults import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD

from scorer_service.backends.base import ProgressCallback, ScoreRequest, ScoringBackend
from scorer_service.conversation import Message, Variant, has_memories
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
    """Why a reply is not a candidate (NONE: it is one)."""

    NONE = "candidate"
    BELOW_THRESHOLD = "below threshold"
    UNSET_TIMESTAMP = "unset timestamp"
    ALREADY_TRAINED = "already trained"
    TOO_LONG = "too long for the model's context"
    TOKENIZATION_MISMATCH = "tokenizes differently with and without memories"
    NOT_REQUESTED = "not requested"


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


@dataclass
class _Job:
    """The requests that score some replies: one per variant."""

    with_memories: TokenizedConversation
    without_memories: TokenizedConversation
    prompt_with: int
    prompt_without: int
    replies: list[tuple[ReplyScore, ReplyRange, ReplyRange]]


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
) -> ScoringResult:
    threshold = threshold if threshold > 0 else DEFAULT_THRESHOLD
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
        return result

    with_memories = build_token_ids(messages, tokenizer, Variant.WITH_MEMORIES)
    without = build_token_ids(messages, tokenizer, Variant.WITHOUT_MEMORIES)
    pairs = _pair_ranges(wanted, with_memories, without)
    if not has_memories(list(messages)):
        for score, range_with, _ in pairs:
            score.tokens = [
                TokenDivergence(with_memories.token_ids[i], with_memories.token_text(i), 0.0, 0.0)
                for i in range(range_with.start, range_with.end)
            ]
            score.scored = True
    else:
        jobs = _plan(pairs, with_memories, without, messages, tokenizer, context_length)
        requests: list[ScoreRequest] = []
        for job in jobs:
            requests.append(
                ScoreRequest(
                    job.with_memories.token_ids[: job.prompt_with],
                    [(rw.start, rw.end) for _, rw, _ in job.replies],
                )
            )
            requests.append(
                ScoreRequest(
                    job.without_memories.token_ids[: job.prompt_without],
                    [(ro.start, ro.end) for _, _, ro in job.replies],
                )
            )
        result.backend_requests = len(requests)
        if requests:
            logprobs = await backend.score(requests, progress)
            for job, lp_with, lp_without in zip(jobs, logprobs[0::2], logprobs[1::2], strict=True):
                _fill(job, lp_with, lp_without)
    _judge(scores, threshold, stats)
    return result


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


def _plan(
    pairs: list[tuple[ReplyScore, ReplyRange, ReplyRange]],
    with_memories: TokenizedConversation,
    without: TokenizedConversation,
    messages: Sequence[Message],
    tokenizer: ChatTokenizer,
    context_length: int,
) -> list[_Job]:
    """One job for every reply that fits the context; one more per reply that needed a cut.

    A prompt is cut right after its last requested reply: later tokens cannot change the
    log-probabilities of earlier ones, and the shorter prompt fits more often.
    """
    fitting = [p for p in pairs if p[1].end <= context_length]
    jobs: list[_Job] = []
    if fitting:
        jobs.append(
            _Job(
                with_memories,
                without,
                max(p[1].end for p in fitting),
                max(p[2].end for p in fitting),
                fitting,
            )
        )
    for score, range_with, _ in pairs:
        if range_with.end <= context_length:
            continue
        job = _cut_context(score, range_with, messages, tokenizer, context_length)
        if job is None:
            score.reason = Reason.TOO_LONG
        else:
            jobs.append(job)
    return jobs


def _cut_context(
    score: ReplyScore,
    original: ReplyRange,
    messages: Sequence[Message],
    tokenizer: ChatTokenizer,
    context_length: int,
) -> _Job | None:
    """The reply with as much earlier conversation as fits; memories and system kept."""
    at = next(i for i, m in enumerate(messages) if m.node_path == score.message.node_path)
    before = list(messages[:at])
    droppable = [i for i, m in enumerate(before) if not (m.memory or m.role == "system")]

    def attempt(dropped: int) -> tuple[TokenizedConversation, ReplyRange] | None:
        gone = set(droppable[:dropped])
        kept = [m for i, m in enumerate(before) if i not in gone] + [score.message]
        tokenized = build_token_ids(kept, tokenizer, Variant.WITH_MEMORIES)
        reply = tokenized.reply(score.message.node_path)
        if reply is None or reply.problem or reply.end > context_length:
            return None
        return tokenized, reply

    # Fewest dropped messages that fit: the fit only improves as more are dropped.
    low, high = 0, len(droppable)
    if attempt(high) is None:
        return None
    while low < high:
        middle = (low + high) // 2
        if attempt(middle) is None:
            low = middle + 1
        else:
            high = middle
    fitted = attempt(low)
    assert fitted is not None
    tokenized_with, range_with = fitted
    gone = set(droppable[:low])
    kept = [m for i, m in enumerate(before) if i not in gone] + [score.message]
    tokenized_without = build_token_ids(kept, tokenizer, Variant.WITHOUT_MEMORIES)
    range_without = tokenized_without.reply(score.message.node_path)
    if (
        range_without is None
        or range_without.problem
        or (
            tokenized_with.token_ids[range_with.start : range_with.end]
            != tokenized_without.token_ids[range_without.start : range_without.end]
        )
    ):
        score.reason = Reason.TOKENIZATION_MISMATCH
        score.problem = "the reply's tokens differ between the variants after the cut"
        return None
    score.context_tokens_cut = original.start - range_with.start
    return _Job(
        tokenized_with,
        tokenized_without,
        range_with.end,
        range_without.end,
        [(score, range_with, range_without)],
    )


def _fill(job: _Job, lp_with: list[list[float]], lp_without: list[list[float]]) -> None:
    for (score, range_with, _), with_values, without_values in zip(
        job.replies, lp_with, lp_without, strict=True
    ):
        score.tokens = [
            TokenDivergence(
                job.with_memories.token_ids[position],
                job.with_memories.token_text(position),
                _floored(a),
                _floored(b),
            )
            for position, a, b in zip(
                range(range_with.start, range_with.end), with_values, without_values, strict=True
            )
        ]
        score.scored = True


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
