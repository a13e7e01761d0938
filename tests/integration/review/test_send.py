"""Send against a real HTTP receiver that keeps the endpoint contract (dedup by
idempotency key): accepted, partially accepted, 500 then success, timeout, connection
refused, and no URL at all.

The receiver has no jobs route (GET answers 501): accepted replies are in training (SENT)
until the Review has asked it once, then, since it can never say what it learnt, in the
ledger (the partial promotion of a followed job is test_partial_promotion.py's)."""

from __future__ import annotations

import socket
import threading

import grpc
import pytest
from ftreview.core.values import format_ns
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import review_pb2 as S
from review_support import (
    CandidateWatch,
    Receiver,
    ReviewUnderTest,
    make_conversation,
    reply_ts,
    until_none_in_training,
)

from review_service.app.config import ConfigFile
from review_service.domain.examples import idempotency_key

Kind = S.CandidateEventKind


async def approved_conversation(review: ReviewUnderTest, cid: str, n: int) -> list[int]:
    await review.ingest_and_wait(make_conversation(cid, n))
    stamps = [reply_ts(cid, i) for i in range(n)]
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(t) for t in stamps]))
    return stamps


def configure(review: ReviewUnderTest, url: str, timeout: float = 5.0, retries: int = 0) -> None:
    config = ConfigFile(review.config_path)
    config.set_value("finetune_url", url)
    config.set_value("finetune_timeout", timeout)
    config.set_value("finetune_retries", retries)


async def ledger(review: ReviewUnderTest) -> dict[int, S.TrainedEntry]:
    entries = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    return {timestamp_ns(e.timestamp): e for e in entries}


async def approved(review: ReviewUnderTest) -> set[int]:
    return {timestamp_ns(c.timestamp) for c in await review.list(S.CANDIDATE_STATUS_APPROVED)}


async def test_accepted_replies_go_to_the_ledger_and_leave_the_list(
    review: ReviewUnderTest, receiver: Receiver
) -> None:
    configure(review, receiver.url)
    stamps = await approved_conversation(review, "ok", 2)
    watch = CandidateWatch(review.stub)

    response = await review.stub.Send(S.SendRequest())

    assert {timestamp_ns(t) for t in response.accepted} == set(stamps)
    assert list(response.failed) == []
    assert response.job_id == "job-1"
    end = await review.wait_activity("train-job-1")
    assert "501" in end.detail and "2 replies in the trained ledger" in end.detail
    entries = await ledger(review)
    assert set(entries) == set(stamps)
    assert {e.destination for e in entries.values()} == {receiver.url}
    assert await review.list() == []
    assert receiver.trained == {idempotency_key(t) for t in stamps}
    example = receiver.requests[0]["examples"][0]
    assert example["messages"][-1] == {"role": "assistant", "content": "ok reply 0", "weight": 1}
    assert example["timestamp"] == format_ns(stamps[0])

    def both_in_training_then_removed(events: list[S.WatchCandidatesResponse]) -> bool:
        def sent(kind: int) -> list[S.WatchCandidatesResponse]:
            return [
                e for e in events
                if e.kind == kind and e.candidate.status == S.CANDIDATE_STATUS_SENT
            ]  # fmt: skip

        training = sent(Kind.CANDIDATE_EVENT_KIND_STATUS_CHANGED)
        return (
            len(sent(Kind.CANDIDATE_EVENT_KIND_REMOVED)) == 2
            and len(training) == 2
            and {e.candidate.job_id for e in training} == {"job-1"}
        )

    await watch.wait_for(both_in_training_then_removed)
    watch.close()


async def test_a_partial_acceptance_keeps_the_rest_approved_with_the_reason(
    review: ReviewUnderTest, receiver: Receiver
) -> None:
    configure(review, receiver.url)
    first, second, third = await approved_conversation(review, "part", 3)
    receiver.refuse[idempotency_key(second)] = "example too long"

    response = await review.stub.Send(S.SendRequest())

    assert {timestamp_ns(t) for t in response.accepted} == {first, third}
    refusal = "refused by the endpoint: example too long"
    assert [(timestamp_ns(f.timestamp), f.reason) for f in response.failed] == [(second, refusal)]
    await until_none_in_training(review.stub)
    assert set(await ledger(review)) == {first, third}
    assert await approved(review) == {second}
    # Every approved reply sent again: the refused one is held back, not posted.
    posted = len(receiver.requests)
    again = await review.stub.Send(S.SendRequest())
    assert len(receiver.requests) == posted and list(again.accepted) == []
    assert [f.reason for f in again.failed] == [
        f"not sent again, {refusal} (reject it, or name it to send it again)"
    ]


async def test_a_500_after_training_then_success_trains_each_reply_once(
    review: ReviewUnderTest, receiver: Receiver
) -> None:
    configure(review, receiver.url, retries=0)
    stamps = await approved_conversation(review, "retry", 2)
    receiver.fail_after_training = 1  # trains, then answers 500

    failed = await review.stub.Send(S.SendRequest())
    assert list(failed.accepted) == []
    assert all("500" in f.reason for f in failed.failed)
    assert await approved(review) == set(stamps)  # not acknowledged: not trained here
    assert await ledger(review) == {}

    succeeded = await review.stub.Send(S.SendRequest())
    assert {timestamp_ns(t) for t in succeeded.accepted} == set(stamps)
    await until_none_in_training(review.stub)
    assert set(await ledger(review)) == set(stamps)
    assert set(receiver.trainings_per_reply.values()) == {1}
    assert len(receiver.trainings_per_reply) == 2


async def test_retries_within_one_send_reuse_the_keys(
    review: ReviewUnderTest, receiver: Receiver
) -> None:
    configure(review, receiver.url, retries=2)
    stamps = await approved_conversation(review, "inner", 2)
    receiver.fail_after_training = 2

    response = await review.stub.Send(S.SendRequest())

    assert {timestamp_ns(t) for t in response.accepted} == set(stamps)
    assert len(receiver.requests) == 3
    assert set(receiver.trainings_per_reply.values()) == {1}


async def test_a_timeout_keeps_the_candidates_approved_and_says_so(
    review: ReviewUnderTest, receiver: Receiver
) -> None:
    configure(review, receiver.url, timeout=0.3, retries=0)
    stamps = await approved_conversation(review, "slow", 1)
    receiver.hang = threading.Event()

    response = await review.stub.Send(S.SendRequest())

    assert list(response.accepted) == []
    assert "did not answer within 0.3s" in response.failed[0].reason
    assert await approved(review) == set(stamps)
    assert await ledger(review) == {}
    receiver.hang.set()
    receiver.hang = None
    again = await review.stub.Send(S.SendRequest())
    assert {timestamp_ns(t) for t in again.accepted} == set(stamps)


async def test_a_refused_connection_keeps_the_candidates_approved(
    review: ReviewUnderTest,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(review, f"http://127.0.0.1:{port}/finetune")
    stamps = await approved_conversation(review, "refused", 1)

    response = await review.stub.Send(S.SendRequest())

    assert list(response.accepted) == []
    assert "cannot connect" in response.failed[0].reason
    assert await approved(review) == set(stamps)
    assert await ledger(review) == {}


async def test_send_without_a_url_explains_how_to_set_one(review: ReviewUnderTest) -> None:
    await approved_conversation(review, "nourl", 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.Send(S.SendRequest())
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = caught.value.details() or ""
    assert "finetune_url" in details and str(review.config_path) in details
    assert len(await approved(review)) == 1


async def test_sending_a_pending_candidate_is_refused(
    review: ReviewUnderTest, receiver: Receiver
) -> None:
    configure(review, receiver.url)
    await review.ingest_and_wait(make_conversation("pend", 1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await review.stub.Send(S.SendRequest(timestamps=[to_timestamp(reply_ts("pend", 0))]))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert receiver.requests == []
