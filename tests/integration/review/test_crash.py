"""Crash safety: SIGKILL a real `python -m review_service` in the middle of a stream of
approvals and a send, restart it on the same home, and check that every acknowledged
change is there and that the ledger and the candidate list agree."""

from __future__ import annotations

import asyncio
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

REPLIES = 60


async def test_sigkill_mid_approvals_and_send_loses_nothing_acknowledged(
    tmp_path: Path, fake_scorer: RunningFakeScorer, receiver: Receiver
) -> None:
    home = tmp_path / "home"
    ConfigFile(home / "config.json5").set_value("finetune_url", receiver.url)
    ConfigFile(home / "config.json5").set_value("finetune_batch_size", 4)
    child = ReviewProcess(home, fake_scorer.address)
    await asyncio.to_thread(child.start)
    channel = fresh_channel(child.address)
    stub = review_pb2_grpc.ReviewStub(channel)
    helper = ReviewUnderTest(home, fake_scorer.address)
    helper.stub = stub
    helper.activities = activity_pb2_grpc.ActivitiesStub(channel)
    activity = await helper.ingest_and_wait(make_conversation("crash", REPLIES))
    assert activity.state == activity_pb2.ACTIVITY_STATE_SUCCEEDED, activity.error

    acknowledged: list[int] = []
    sent: set[int] = set()
    enough = asyncio.Event()

    async def approve_stream() -> None:
        for i in range(REPLIES):
            ts = reply_ts("crash", i)
            try:
                await stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(ts)]))
            except grpc.aio.AioRpcError:
                return  # killed: this one was not acknowledged
            acknowledged.append(ts)
            if len(acknowledged) == 30:
                enough.set()

    async def send_once() -> None:
        try:
            response = await stub.Send(S.SendRequest())
        except grpc.aio.AioRpcError:
            return
        sent.update(timestamp_ns(t) for t in response.accepted)

    approvals = asyncio.ensure_future(approve_stream())
    await asyncio.wait_for(enough.wait(), 30)
    sender = asyncio.ensure_future(send_once())
    # Kill once the receiver has seen part of the send: approvals and send both in flight.
    deadline = asyncio.get_running_loop().time() + 10
    while not receiver.requests and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
    child.kill()
    await asyncio.gather(approvals, sender)
    await channel.close()
    assert receiver.requests, "the send never reached the receiver before the kill"
    assert len(acknowledged) < REPLIES, "the kill came after the last approval"

    await asyncio.to_thread(child.start)
    channel = fresh_channel(child.address)
    stub = review_pb2_grpc.ReviewStub(channel)
    # Accepted replies are in training until the restarted Review has followed their jobs
    # (the receiver has no jobs route: then they go to the ledger).
    await until_none_in_training(stub)
    approved = {
        timestamp_ns(c.timestamp)
        for c in (
            await stub.ListCandidates(
                S.ListCandidatesRequest(statuses=[S.CANDIDATE_STATUS_APPROVED])
            )
        ).candidates
    }
    listed = {
        timestamp_ns(c.timestamp)
        for c in (await stub.ListCandidates(S.ListCandidatesRequest())).candidates
    }
    trained = {
        timestamp_ns(e.timestamp) for e in (await stub.ListTrained(S.ListTrainedRequest())).entries
    }
    # Every acknowledged approval is approved still, or was sent.
    assert set(acknowledged) <= approved | trained
    # Every reply a Send answer called accepted is in the ledger.
    assert sent <= trained
    # The ledger and the list agree: nothing is both trained and listed, nothing is lost.
    assert not trained & listed
    assert trained | listed == {reply_ts("crash", i) for i in range(REPLIES)}
    # Only replies the endpoint trained are in the ledger.
    assert {idempotency_key(ts) for ts in trained} <= receiver.trained

    # Sending again finishes the job without training anything twice.
    await stub.Send(S.SendRequest())
    await until_none_in_training(stub)
    assert set(receiver.trainings_per_reply.values()) == {1}
    after = {
        timestamp_ns(e.timestamp) for e in (await stub.ListTrained(S.ListTrainedRequest())).entries
    }
    assert after == trained | approved
    await channel.close()
    assert child.stop() == 0  # SIGTERM drains and exits cleanly
