"""Benchmark of the Review service: decisions and the candidate watch fan-out.

    .venv/bin/python bench/bench_review.py [--ops 1500] [--rounds 40] [--repeat 8]

Runs a real `python -m review_service` subprocess on a temporary home whose SQLite file is
seeded with candidates (no Scorer needed: decisions and watches never call it), and drives
it from this process over gRPC:

- Approve/Reject throughput and latency (p50, p99) with 1 client and with 50 concurrent
  clients (each on its own channel); every call decides a fresh candidate, so every call
  is a real write (synchronous=FULL). Measured twice in the same run: with group commit
  (concurrent decisions share one transaction) and, as the baseline, with one transaction
  per decision (the writer's batch limited to 1, as before group commit);
- Approve/Reject latency at a fixed offered load: 50 clients, each sending its decisions at
  random (Poisson) times so that together they offer `--rate` decisions per second (970 by
  default, the load at which issue 9 measured p99 59 ms). A closed loop (each client sends
  again the moment it is answered) measures only saturation, where Little's law fixes the
  mean latency at clients / throughput whatever the server does; a fixed load measures what
  a client waits. Latency counts from the moment a call was due, not when it was sent, so a
  client held up behind a slow call is charged for it (no coordinated omission). One run's
  p99 moves a lot between runs on a small VM: `--repeat N` makes N runs on the same server
  and reports p50 and p99 over all of them, with the range of a single run's p99;
- the floor, in the same run: a grpc.aio server whose Approve and Reject do nothing, under
  the same closed loop and the same fixed load (what gRPC in Python costs on this machine);
- WatchCandidates fan-out: time from sending a change until the last of 100 subscribers
  has seen it, against 1 subscriber as the baseline.

Not a test; prints a table and the ratios measured in this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import review_pb2 as S
from ftreview.v1 import review_pb2_grpc

from review_service.adapters.store_sqlite import SqliteStore
from review_service.api.server import DATABASE_NAME
from review_service.app.writer import MAX_BATCH
from review_service.domain.model import Candidate, ContextMessage, MemoryAttribution, TokenValue
from review_service.domain.ports import StoreChange

BASE = 1_772_000_000_000_000_000
# A typical candidate of an agent's conversation: 20 turns before the reply, 30 scored
# tokens, 3 memories with their attribution (the size every decision's row carries).
CONTEXT = (
    ContextMessage("system", "You are a helpful assistant.", BASE),
    *(
        ContextMessage(
            "user" if turn % 2 == 0 else "assistant",
            f"Turn {turn}: " + "some words of an ordinary conversation about the week " * 3,
            BASE + turn + 1,
        )
        for turn in range(20)
    ),
)
TOKENS = tuple(
    TokenValue(1000 + i, f" tok{i}", -0.5, -2.0 - i / 10, 1.5 + i / 10) for i in range(30)
)
MEMORIES = tuple(
    MemoryAttribution(f"nodes[1].children[{i}]", f"Memory: the user's fact number {i}.", 1.5 - i)
    for i in range(3)
)


def seed(home: Path, count: int) -> list[int]:
    store = SqliteStore(home / DATABASE_NAME)
    stamps = [BASE + 1000 * (i + 1) for i in range(count)]
    store.commit(
        [
            StoreChange(
                upsert=[
                    Candidate(
                        ts, "bench", f"Your cat is named Biscuit ({i}).", CONTEXT, 1.8, 3.1,
                        tokens=TOKENS, question="What's my cat's name?", memories=MEMORIES,
                    )
                    for i, ts in enumerate(stamps)
                ]
            )
        ]
    )  # fmt: skip
    store.close()
    return stamps


# Runs `python -m review_service` with the writer's batch limit set first (1: the baseline).
LAUNCH = (
    "import sys, review_service.app.writer as w; w.MAX_BATCH = int(sys.argv.pop(1)); "
    "from review_service.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


def start_review(home: Path, max_batch: int) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(max_batch), "--listen", "127.0.0.1:0",
         "--scorer", "127.0.0.1:1", "--home", str(home), "--log-level", "INFO"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"review serving on [\w.]+:(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise SystemExit("the Review did not start")


# The floor: a grpc.aio server in Python whose Approve and Reject do nothing, measured in the
# same run, so the table shows how much of a decision's latency is gRPC's own.
FLOOR = """
import asyncio, sys
import grpc
from ftreview.v1 import review_pb2 as S, review_pb2_grpc
class Nothing(review_pb2_grpc.ReviewServicer):
    async def GetConfig(self, request, context): return S.GetConfigResponse()
    async def Approve(self, request, context): return S.ApproveResponse()
    async def Reject(self, request, context): return S.RejectResponse()
async def main():
    server = grpc.aio.server()
    review_pb2_grpc.add_ReviewServicer_to_server(Nothing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"review serving on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""


def start_floor() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", FLOOR], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"review serving on [\w.]+:(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise SystemExit("the floor server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def connected(address: str, clients: int) -> list[grpc.aio.Channel]:
    """One channel per client, connected first, so connection setup is not timed."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(clients)]
    for channel in channels:
        await review_pb2_grpc.ReviewStub(channel).GetConfig(S.GetConfigRequest())
    return channels


async def decide(stub: review_pb2_grpc.ReviewStub, ts: int) -> None:
    """Reject every other candidate, approve the rest: both kinds of decision are timed."""
    if (ts - BASE) // 1000 % 2:
        await stub.Reject(S.RejectRequest(timestamps=[to_timestamp(ts)], reason="bench"))
    else:
        await stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(ts)]))


async def timed(
    channels: list[grpc.aio.Channel], clients: list[Any], latencies: list[float]
) -> dict[str, float]:
    """Run the client coroutines, close the channels, summarise what they measured."""
    began = time.perf_counter()
    await asyncio.gather(*clients)
    elapsed = time.perf_counter() - began
    for channel in channels:
        await channel.close()
    return {
        "ops": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


async def decisions(address: str, stamps: list[int], clients: int) -> dict[str, float]:
    """A closed loop: each client sends its next decision as soon as it is answered."""
    channels = await connected(address, clients)
    queue = list(reversed(stamps))
    latencies: list[float] = []

    async def client(stub: review_pb2_grpc.ReviewStub) -> None:
        while queue:
            ts = queue.pop()
            started = time.perf_counter()
            await decide(stub, ts)
            latencies.append(time.perf_counter() - started)

    stubs = [review_pb2_grpc.ReviewStub(c) for c in channels]
    return await timed(channels, [client(stub) for stub in stubs], latencies)


async def paced_rounds(
    address: str, stamps: list[int], clients: int, rate: float, rounds: int
) -> dict[str, float]:
    """`rounds` fixed-load runs on one server, `len(stamps) // rounds` decisions each: p50
    and p99 over every decision, and the lowest and highest p99 of a single run (on this
    VM one run's p99 moves a lot from run to run)."""
    size = len(stamps) // rounds
    pooled: list[float] = []
    each: list[dict[str, float]] = []
    for i in range(rounds):
        part = stamps[i * size : (i + 1) * size]
        each.append(await paced(address, part, clients, rate, seed=9 + i, pool=pooled))
    return {
        "ops": len(pooled),
        "p50_ms": 1000 * statistics.median(pooled),
        "p99_ms": 1000 * percentile(pooled, 0.99),
        "p99_min_ms": min(r["p99_ms"] for r in each),
        "p99_max_ms": max(r["p99_ms"] for r in each),
    }


async def paced(
    address: str,
    stamps: list[int],
    clients: int,
    rate: float,
    seed: int = 9,
    pool: list[float] | None = None,
) -> dict[str, float]:
    """`clients` channels offering `rate` decisions/s in all, Poisson arrivals per client;
    every latency is also added to `pool` when one is given."""
    channels = await connected(address, clients)
    per_client = [stamps[i::clients] for i in range(clients)]
    latencies: list[float] = []
    generator = random.Random(seed)
    gaps = [[generator.expovariate(rate / clients) for _ in mine] for mine in per_client]
    began = time.perf_counter()

    async def client(stub: review_pb2_grpc.ReviewStub, mine: list[int], waits: list[float]) -> None:
        due = began
        for ts, wait in zip(mine, waits, strict=True):
            due += wait
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await decide(stub, ts)
            latencies.append(time.perf_counter() - due)

    stubs = [review_pb2_grpc.ReviewStub(c) for c in channels]
    work = [client(*args) for args in zip(stubs, per_client, gaps, strict=True)]
    summary = await timed(channels, work, latencies)
    if pool is not None:
        pool.extend(latencies)
    return summary


async def fan_out(
    address: str, stamps: list[int], subscribers: int, rounds: int
) -> dict[str, float]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(max(1, subscribers // 10))]
    writer_channel = grpc.aio.insecure_channel(address)
    writer = review_pb2_grpc.ReviewStub(writer_channel)
    seen: dict[int, list[float]] = {}
    ready = 0
    all_ready = asyncio.Event()
    waiting: dict[int, asyncio.Event] = {}

    async def subscriber(stub: review_pb2_grpc.ReviewStub) -> None:
        nonlocal ready
        async for event in stub.WatchCandidates(S.WatchCandidatesRequest()):
            if event.kind == S.CANDIDATE_EVENT_KIND_SNAPSHOT_END:
                ready += 1
                if ready == subscribers:
                    all_ready.set()
            elif event.kind == S.CANDIDATE_EVENT_KIND_STATUS_CHANGED:
                ts = timestamp_ns(event.candidate.timestamp)
                arrivals = seen.setdefault(ts, [])
                arrivals.append(time.perf_counter())
                if len(arrivals) == subscribers and ts in waiting:
                    waiting[ts].set()

    stubs = [review_pb2_grpc.ReviewStub(channels[i % len(channels)]) for i in range(subscribers)]
    tasks = [asyncio.ensure_future(subscriber(stub)) for stub in stubs]
    await asyncio.wait_for(all_ready.wait(), 300)
    latencies = []
    for ts in stamps[:rounds]:
        waiting[ts] = asyncio.Event()
        started = time.perf_counter()
        await writer.Approve(S.ApproveRequest(timestamps=[to_timestamp(ts)]))
        await asyncio.wait_for(waiting[ts].wait(), 30)
        latencies.append(max(seen[ts]) - started)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in [*channels, writer_channel]:
        await channel.close()
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1500, help="decisions per client setting")
    parser.add_argument("--rounds", type=int, default=40, help="changes per fan-out setting")
    parser.add_argument(
        "--rate", type=float, default=970.0, help="decisions/s offered by 50 paced clients"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="fixed-load runs per server, --ops decisions each"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    offered: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        stamps = seed(home, (4 + 2 * args.repeat) * args.ops)
        paced_stamps = args.repeat * args.ops
        process, port = start_floor()
        try:
            floor = f"127.0.0.1:{port}"
            results["grpc.aio doing nothing, 50"] = await decisions(floor, stamps[: args.ops], 50)
            # The floor stores nothing: the same candidates serve every run.
            offered["grpc.aio doing nothing"] = await paced_rounds(
                floor, stamps[:paced_stamps], 50, args.rate, args.repeat
            )
        finally:
            process.terminate()
            process.wait(10)
        unused = iter(stamps)  # every decision below takes candidates nobody decided yet

        def fresh(count: int) -> list[int]:
            return list(itertools.islice(unused, count))

        for label, max_batch in (("one transaction each", 1), ("group commit", MAX_BATCH)):
            process, port = start_review(home, max_batch)
            address = f"127.0.0.1:{port}"
            try:
                results[f"{label}, 1"] = await decisions(address, fresh(args.ops), 1)
                results[f"{label}, 50"] = await decisions(address, fresh(args.ops), 50)
                offered[label] = await paced_rounds(
                    address, fresh(paced_stamps), 50, args.rate, args.repeat
                )
            finally:
                process.terminate()
                process.wait(10)
    # The fan-out on a Review of its own: 100 snapshots of thousands of candidates would
    # measure the snapshot, not the change that follows it.
    with tempfile.TemporaryDirectory() as tmp:
        rest = seed(Path(tmp), 2 * args.rounds)
        process, port = start_review(Path(tmp), MAX_BATCH)
        try:
            address = f"127.0.0.1:{port}"
            single = await fan_out(address, rest[: args.rounds], 1, args.rounds)
            hundred = await fan_out(address, rest[args.rounds :], 100, args.rounds)
        finally:
            process.terminate()
            process.wait(10)
    print(f"Review benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"SQLite WAL synchronous=FULL, server in a subprocess)")  # fmt: skip
    print()
    print("approve/reject, each call one fresh candidate (a durable write)")
    print(f"{'writer':>22} {'clients':>8} {'ops':>6} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for key, r in results.items():
        label, clients = key.rsplit(", ", 1)
        row = f"{label:>22} {clients:>8} {r['ops']:>6.0f} {r['per_s']:>9.0f}"
        print(f"{row} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    base, group = results["one transaction each, 50"], results["group commit, 50"]
    print(
        f"50 clients, group commit vs one transaction each: throughput "
        f"x{group['per_s'] / base['per_s']:.2f}, p99 x{group['p99_ms'] / base['p99_ms']:.2f}"
    )
    print()
    print(f"approve/reject at a fixed load: 50 clients offering {args.rate:.0f}/s (Poisson), "
          f"latency from when each call was due; {args.repeat} run(s) of {args.ops}")  # fmt: skip
    print(f"{'writer':>22} {'ops':>6} {'p50 ms':>8} {'p99 ms':>8} {'one run p99 ms':>16}")
    for label, r in offered.items():
        spread = f"{r['p99_min_ms']:.1f}-{r['p99_max_ms']:.1f}"
        print(f"{label:>22} {r['ops']:>6.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{spread:>16}")  # fmt: skip
    print()
    print(
        f"WatchCandidates fan-out: Approve sent -> last subscriber saw it ({args.rounds} changes)"
    )
    print(f"{'subscribers':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, r in (("1", single), ("100", hundred)):
        print(f"{label:>11} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}")
    print(f"p50 latency 100 vs 1 subscriber: x{hundred['p50_ms'] / single['p50_ms']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
