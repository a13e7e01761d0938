"""The port every scoring engine implements.

The Scorer asks for log-probabilities only where it needs them (the assistant ranges), one
request per variant, and never sees which engine answers. An engine that can only return
every prompt position (upstream vLLM) slices on its side of this interface.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# (done, total, detail): called as work moves, from whatever thread does the work.
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ScoreRequest:
    """One prompt and the half-open ranges [start, end) whose tokens are scored.

    Every range satisfies 1 <= start < end <= len(token_ids): position 0 has no context.
    """

    token_ids: Sequence[int]
    ranges: Sequence[tuple[int, int]]


# For each request, for each range, logprob[i] = log p(token[start+i] | tokens before it).
RangeLogprobs = list[list[float]]


@dataclass(frozen=True)
class Generation:
    text: str
    token_count: int


@dataclass(frozen=True)
class BackendInfo:
    backend: str
    model: str
    context_length: int
    urls: list[str] = field(default_factory=list)
    device: str = "remote"


class ScoringBackend(abc.ABC):
    """Log-probabilities of given positions of token-id prompts, and greedy continuation."""

    name: str

    @abc.abstractmethod
    async def score(
        self, requests: Sequence[ScoreRequest], progress: ProgressCallback | None = None
    ) -> list[RangeLogprobs]:
        """One result per request, in order. Raises BackendUnavailable, BackendRejected or
        BackendProtocolError (scorer_service.errors). -inf stays -inf (never a clamp value)."""

    @abc.abstractmethod
    async def generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        stop_token_ids: Sequence[int] = (),
    ) -> Generation:
        """Greedy continuation of the prompt, at most `max_new_tokens` tokens, stopping at
        (and not including) any of `stop_token_ids`."""

    @abc.abstractmethod
    async def info(self) -> BackendInfo: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections, threads or models."""
