"""The port every scoring engine implements.

The Scorer asks for log-probabilities only where it needs them (the assistant ranges), one
request per variant, and never sees which engine answers. An engine that can only return
every prompt position (upstream vLLM) slices on its side of this interface.

Cancellation: `score` and `generate` take `should_stop`, a callable the engine polls between
units of work (the local engine: between chunks of a forward pass, and between generated
tokens). Once it returns True the call stops and raises `WorkCancelled`
(scorer_service.errors); nothing it computed is kept. Pass e.g. `event.is_set` of a
`threading.Event` that SIGTERM's drain sets once the grace period ends. Cancelling the
awaiting asyncio task stops the work the same way (the engine sets its own flag), so a caller
that went away frees the engine at the next chunk. The callable is polled from the engine's
worker thread: it must be cheap and thread-safe.

Adapters: `load_adapter(path, name)` switches the engine to a LoRA adapter (empty path: the
base model) between requests; every later request uses it, and `BackendInfo.adapter`,
`Generation.adapter` and `adapter_in_use()` name it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scorer_service.errors import BackendRejected

# (done, total, detail): called as work moves, from whatever thread does the work.
ProgressCallback = Callable[[int, int, str], None]

# Polled between units of work; True: stop now (the call raises WorkCancelled).
StopCheck = Callable[[], bool]


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
    # The adapter that generated it ("" for the base model).
    adapter: str = ""


@dataclass(frozen=True)
class BackendInfo:
    backend: str
    model: str
    context_length: int
    urls: list[str] = field(default_factory=list)
    device: str = "remote"
    # The LoRA adapter requests are served with ("" for the base model).
    adapter: str = ""
    # Times the adapter was loaded again into an engine that had lost it (a restart).
    adapter_reloads: int = 0
    # What the Scorer noticed about the engine and does about it, one line each.
    notes: list[str] = field(default_factory=list)


class ScoringBackend(abc.ABC):
    """Log-probabilities of given positions of token-id prompts, and greedy continuation."""

    name: str

    @abc.abstractmethod
    async def score(
        self,
        requests: Sequence[ScoreRequest],
        progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RangeLogprobs]:
        """One result per request, in order. Raises BackendUnavailable, BackendRejected,
        BackendProtocolError or WorkCancelled (scorer_service.errors). -inf stays -inf (never
        a clamp value)."""

    @abc.abstractmethod
    async def generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        stop_token_ids: Sequence[int] = (),
        should_stop: StopCheck | None = None,
    ) -> Generation:
        """Greedy continuation of the prompt, at most `max_new_tokens` tokens, stopping at
        (and not including) any of `stop_token_ids`."""

    @abc.abstractmethod
    async def info(self) -> BackendInfo: ...

    def adapter_in_use(self) -> str:
        """The adapter requests are served with now ("" for the base model), known without
        asking the engine (so it answers while the engine is down)."""
        return ""

    async def load_adapter(self, path: str, name: str) -> str:
        """Serve later requests with the LoRA adapter in folder `path` (as the engine's
        machine sees it), known as `name`; empty `path`: back to the base model. Returns the
        name now in use ("" for the base model). Raises AdapterNotFound or InvalidAdapter
        for a bad folder, BackendUnavailable when the engine cannot be reached."""
        raise BackendRejected(f"the {self.name} engine cannot load adapters")

    def keep_adapter(self, path: str, name: str) -> str:
        """Name the adapter in later requests without loading it now, for an engine that is
        down at start-up; it is loaded once the engine answers that it lacks it. Returns the
        name; an engine that cannot defer this serves the base model ("")."""
        return ""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections, threads or models."""
