"""Crash safety under a random mix (issue 7): SIGKILL a real `python -m review_service` at
random points of a bounded random mix of approve, reject, undo, threshold, send (to a
recording HTTP receiver) and export with `mark_trained`; restart it; after every restart
check that every acknowledged change is present, that the ledger and the list agree, that
the config parses; at the end, that no idempotency key was trained twice by the receiver
and the exports together.

KILLS (default 6) and the seed come from FTREVIEW_CRASH_KILLS / FTREVIEW_CRASH_SEED; the
counts are printed (pytest -s) for the record."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, activity_pb2_grpc, review_pb2_grpc
from ftreview.v1 import review_pb2 as S
from review_support import (
    Receiver,
    ReviewUnderTest,
    RunningFakeScorer,
    make_conversation,
    reply_ts,
    until_none_in_training,
)

from review_service.app.config import ConfigFile
from review_service.domain.examples import idempotency_key
from tests.support.services import ReviewProcess, fresh_channel

KILLS = int(os.environ.get("FTREVIEW_CRASH_KILLS", "6"))
SEED = int(os.environ.get("FTREVIEW_CRASH_SEED", "7"))
REPLIES = 24  # per round: each round ingests a fresh conversation too
WORKERS = 8
STATUS = {
    S.CANDIDATE_STATUS_PENDING: "pending",
    S.CANDIDATE_STATUS_APPROVED: "approved",
    S.CANDIDATE_STATUS_REJECTED: "rejected",
}
VERB = {"approve": "approved", "reject": "rejected", "undo": "pending"}


@dataclass
class Reply:
    ts: int
    acked: str = "pending"  # the state the last acknowledged decision left
    in_flight: str | None = None  # the state a decision cut by the kill would leave
    ever_approved: bool = False
    retired: bool = False  # trained or forgotten: no more decisions


@dataclass
class Tally:
    kills: int = 0
    acknowledged: int = 0
    refused: int = 0
    exported: list[int] = field(default_factory=list)  # acknowledged mark_trained exports
    sent: set[int] = field(default_factory=set)  # acknowledged as accepted by a Send
    threshold: float = 1e-7
    threshold_in_flight: float | None = None


async def decide(stub: review_pb2_grpc.ReviewStub, reply: Reply, verb: str, tally: Tally) -> bool:
    """One decision; False when the process died under it (its outcome is unknown)."""
    stamps = [to_timestamp(reply.ts)]
    reply.in_flight = VERB[verb]
    reply.ever_approved |= verb == "approve"
    try:
        if verb == "approve":
            await stub.Approve(S.ApproveRequest(timestamps=stamps))
        elif verb == "reject":
            await stub.Reject(S.RejectRequest(timestamps=stamps, reason="crash mix"))
        else:
            await stub.ClearDecision(S.ClearDecisionRequest(timestamps=stamps))
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            reply.in_flight, reply.retired = None, True  # forgotten or trained: refused
            tally.refused += 1
            return True
        return False
    reply.acked, reply.in_flight = VERB[verb], None
    tally.acknowledged += 1
    return True


async def ship(stub: review_pb2_grpc.ReviewStub, rng: random.Random, tally: Tally) -> bool:
    choice = rng.random()
    try:
        if choice < 0.4:
            response = await stub.Send(S.SendRequest())
            tally.sent.update(timestamp_ns(t) for t in response.accepted)
        elif choice < 0.7:
            fmt = rng.choice([S.EXPORT_FORMAT_OPENAI, S.EXPORT_FORMAT_TRL])
            exported = await stub.Export(S.ExportRequest(format=fmt, mark_trained=True))
            tally.exported += [timestamp_ns(t) for t in exported.timestamps]
        else:
            value = rng.choice([1e-7, 2e-7, 5e-7, 1e-6])
            tally.threshold_in_flight = value
            await stub.SetThreshold(S.SetThresholdRequest(value=value))
            tally.threshold, tally.threshold_in_flight = value, None
    except grpc.aio.AioRpcError:
        return False
    tally.acknowledged += 1
    return True


async def kill_point_after_training(receiver: Receiver, loop: asyncio.AbstractEventLoop) -> None:
    """Returns once the receiver has trained a request and holds its answer (the answer
    waits for this thread's event, set after the kill), or after 5 s without a send."""
    trained = asyncio.Event()
    release = threading.Event()

    def hold() -> None:
        loop.call_soon_threadsafe(trained.set)
        release.wait(10)

    receiver.after_training = hold
    try:
        await asyncio.wait_for(trained.wait(), 5)
    except TimeoutError:
        pass
    loop.call_later(0.5, release.set)


async def check_after_restart(
    stub: review_pb2_grpc.ReviewStub, home: Path, replies: list[Reply], tally: Tally,
    receiver: Receiver,
) -> None:  # fmt: skip
    # The receiver has no jobs route: accepted replies reach the ledger once the restarted
    # Review has followed their jobs.
    await until_none_in_training(stub)
    listed = {
        timestamp_ns(c.timestamp): STATUS[c.status]
        for c in (await stub.ListCandidates(S.ListCandidatesRequest())).candidates
    }
    ledger = {
        timestamp_ns(e.timestamp): e
        for e in (await stub.ListTrained(S.ListTrainedRequest())).entries
    }
    assert not set(listed) & set(ledger), "a reply is both listed and trained"
    assert tally.sent <= set(ledger), "a Send answer said accepted, the ledger forgot it"
    assert set(tally.exported) <= set(ledger), "an acknowledged export was not marked trained"
    for ts, entry in ledger.items():
        if entry.destination == receiver.url:
            assert idempotency_key(ts) in receiver.trained, (
                "ledger says sent, receiver never saw it"
            )
    for reply in replies:
        if reply.ts in ledger:
            assert reply.ever_approved, "a never-approved reply was trained"
            reply.retired, reply.in_flight = True, None
            continue
        possible = {reply.acked} | ({reply.in_flight} if reply.in_flight else set())
        if reply.ts in listed:
            assert listed[reply.ts] in possible, (reply, listed[reply.ts])
            reply.acked = listed[reply.ts]
        else:
            assert "rejected" in possible, f"{reply} vanished without being rejected"
            reply.retired = True
        reply.in_flight = None
    threshold = ConfigFile(home / "config.json5").load().threshold  # parses
    assert threshold in {tally.threshold, tally.threshold_in_flight}
    tally.threshold, tally.threshold_in_flight = threshold, None


async def test_random_mix_under_sigkill_keeps_every_acknowledged_change_and_trains_once(
    tmp_path: Path, fake_scorer: RunningFakeScorer, receiver: Receiver
) -> None:
    rng = random.Random(SEED)
    home = tmp_path / "home"
    config = ConfigFile(home / "config.json5")
    config.set_value("finetune_url", receiver.url)
    config.set_value("finetune_batch_size", 3)
    child = ReviewProcess(home, fake_scorer.address)
    await asyncio.to_thread(child.start)
    channel = fresh_channel(child.address)
    setup = ReviewUnderTest(home, fake_scorer.address)
    replies: list[Reply] = []
    tally = Tally()

    for round_ in range(KILLS):
        stub = review_pb2_grpc.ReviewStub(channel)
        setup.stub = stub
        setup.activities = activity_pb2_grpc.ActivitiesStub(channel)
        scored = await setup.ingest_and_wait(make_conversation(f"mix{round_}", REPLIES))
        assert scored.state == activity_pb2.ACTIVITY_STATE_SUCCEEDED, scored.error
        replies += [Reply(reply_ts(f"mix{round_}", i)) for i in range(REPLIES)]
        live = [r for r in replies if not r.retired]
        some_acked = asyncio.Event()

        async def worker(
            mine: list[Reply],
            stub: review_pb2_grpc.ReviewStub = stub,
            acked: asyncio.Event = some_acked,
        ) -> None:
            while True:
                live = [r for r in mine if not r.retired]
                if not live:
                    return
                if not await decide(stub, rng.choice(live), rng.choice(list(VERB)), tally):
                    return
                acked.set()

        async def shipper(
            stub: review_pb2_grpc.ReviewStub = stub, acked: asyncio.Event = some_acked
        ) -> None:
            while await ship(stub, rng, tally):
                acked.set()

        tasks = [asyncio.ensure_future(worker(live[i::WORKERS])) for i in range(WORKERS)] + [
            asyncio.ensure_future(shipper())
        ]
        await asyncio.wait_for(some_acked.wait(), 30)
        if round_ % 2:
            await asyncio.sleep(rng.uniform(0.0, 0.4))  # a random kill point
        else:
            # The narrowest window: the receiver trained a send and has not answered yet.
            await kill_point_after_training(receiver, asyncio.get_running_loop())
        child.kill()
        receiver.after_training = None
        tally.kills += 1
        await asyncio.gather(*tasks)
        await channel.close()
        await asyncio.to_thread(child.start)
        channel = fresh_channel(child.address)
        await check_after_restart(
            review_pb2_grpc.ReviewStub(channel), home, replies, tally, receiver
        )

    # Settle every send left in flight; then nothing was trained twice anywhere.
    stub = review_pb2_grpc.ReviewStub(channel)
    await stub.Send(S.SendRequest())
    final = await stub.Export(S.ExportRequest(mark_trained=True))
    tally.exported += [timestamp_ns(t) for t in final.timestamps]
    exported_keys = [idempotency_key(ts) for ts in tally.exported]
    double = len(exported_keys) - len(set(exported_keys))
    double += len(set(exported_keys) & receiver.trained)
    double += sum(n - 1 for n in receiver.trainings_per_reply.values())
    await check_after_restart(stub, home, replies, tally, receiver)
    await channel.close()
    assert child.stop() == 0
    print(
        f"\ncrash mix (seed {SEED}): kills {tally.kills}, acknowledged ops {tally.acknowledged}, "
        f"refused {tally.refused}, trained by the receiver {len(receiver.trained)}, "
        f"exported {len(tally.exported)}, double-trained {double}"
    )
    assert double == 0
    assert tally.acknowledged > 10 * KILLS
