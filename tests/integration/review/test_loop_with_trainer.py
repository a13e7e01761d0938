"""The Review's side of the closed loop on real servers: a real Review (gRPC, SQLite), an
in-test HTTP trainer that speaks the fine-tuning contract and ftreview's jobs route
(`trainer_stub`: it trains nothing, each job answers what the test scripts), and, for the
success path, the real Scorer on the embedded model.

Send -> the job followed on the Review's activity stream -> its replies re-scored on the
Scorer -> ListTrained before/after and ListJobs; a failed job; an endpoint without the jobs
route; a restart mid-job; Ask's bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from ftreview.conversations import load_conversations
from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, scorer_pb2, scorer_pb2_grpc
from ftreview.v1 import review_pb2 as S
from review_support import ReviewUnderTest, RunningFakeScorer, make_conversation, reply_ts
from trainer_stub import StubTrainer, serve_stub_trainer

from review_service.app.config import ConfigFile
from scorer_service.backends.local import LocalBackend
from tests.support import adapters

SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED
FAILED = activity_pb2.ACTIVITY_STATE_FAILED
ENDED = (SUCCEEDED, FAILED, activity_pb2.ACTIVITY_STATE_CANCELLED)
BISCUIT = "Your cat is named Biscuit."
GENERIC = "Hello! How can I help you today?"


@pytest.fixture
def trainer(fake_scorer: RunningFakeScorer) -> Iterator[StubTrainer]:
    with serve_stub_trainer() as state:
        state.scorer_address = fake_scorer.address  # it promotes there, as the trainer does
        yield state


@pytest.fixture(scope="module")
def identity_adapter(
    embedded_backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("adapters") / "v1"
    return adapters.identity_adapter(embedded_backend.model, folder)


class Activity:
    """The events of one Review activity over WatchActivities, from before it starts."""

    def __init__(self, review: ReviewUnderTest, activity_id: str) -> None:
        self.events: list[activity_pb2.Activity] = []
        self._changed = asyncio.Event()
        self._call = review.activities.WatchActivities(
            activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
        )
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        async for event in self._call:
            if event.HasField("activity"):
                self.events.append(event.activity)
                self._changed.set()

    async def until(
        self, seen: Callable[[activity_pb2.Activity], bool], timeout: float = 30
    ) -> activity_pb2.Activity:
        async def wait() -> activity_pb2.Activity:
            while True:
                for event in self.events:
                    if seen(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def end(self, timeout: float = 30) -> activity_pb2.Activity:
        return await self.until(lambda a: a.state in ENDED, timeout)

    def close(self) -> None:
        self._call.cancel()


@pytest.fixture
async def watched(review: ReviewUnderTest) -> AsyncIterator[Callable[[str], Activity]]:
    opened: list[Activity] = []

    def watch(activity_id: str) -> Activity:
        opened.append(Activity(review, activity_id))
        return opened[-1]

    yield watch
    for activity in opened:
        activity.close()


async def send_one(review: ReviewUnderTest, url: str, cid: str = "c") -> int:
    ConfigFile(review.config_path).set_value("finetune_url", url)
    await review.ingest_and_wait(make_conversation(cid, 1))
    ts = reply_ts(cid, 0)
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(ts)]))
    response = await review.stub.Send(S.SendRequest())
    assert [timestamp_ns(t) for t in response.accepted] == [ts]
    return ts


async def jobs(review: ReviewUnderTest) -> list[S.TrainingJob]:
    return list((await review.stub.ListJobs(S.ListJobsRequest())).jobs)


@pytest.mark.model
async def test_send_follow_and_re_score_through_the_real_scorer(
    tmp_path: Path,
    scorer_address: str,
    fixtures_dir: Path,
    trainer: StubTrainer,
    identity_adapter: Path,
) -> None:
    # The job promotes a real adapter on the real Scorer, as ftreview's trainer does.
    trainer.scorer_address, trainer.adapter_path = scorer_address, str(identity_adapter)
    (conversation,) = load_conversations(fixtures_dir / "biscuit.json")
    review = ReviewUnderTest(tmp_path / "home", scorer_address)
    await review.start()
    train = Activity(review, "train-job-1")
    verify = Activity(review, "verify-job-1")
    try:
        await review.stub.SetThreshold(S.SetThresholdRequest(value=0.5))
        ConfigFile(review.config_path).set_value("finetune_url", trainer.url)
        scored = await review.ingest_and_wait(conversation, timeout=240)
        assert scored.state == SUCCEEDED, scored.error
        (biscuit,) = [c for c in await review.list() if c.content == BISCUIT]
        await review.stub.Approve(S.ApproveRequest(timestamps=[biscuit.timestamp]))
        trainer.first_script = [
            {"state": "queued", "examples": 1},
            {"state": "running", "step": 3, "total_steps": 6, "detail": "epoch 1/2, loss 1.2"},
        ]
        sent = await review.stub.Send(S.SendRequest())
        assert sent.job_id == "job-1" and len(sent.accepted) == 1

        # What the trainer was told: the prompt with the memory, and the generic reply.
        (body,) = trainer.requests
        (example,) = body["examples"]
        assert example["messages"][-1] == {"role": "assistant", "content": BISCUIT, "weight": 1}
        assert "Memory: the user's cat is named Biscuit." in [
            m["content"] for m in example["messages_with_memories"]
        ]
        assert [h["messages"][-1] for h in body["held_out"]] == [
            {"role": "assistant", "content": GENERIC, "weight": 1}
        ]

        running = await train.until(lambda a: a.done == 3)
        assert (running.kind, running.total, running.detail) == ("train", 6, "epoch 1/2, loss 1.2")
        trainer.script("job-1", {
            "state": "succeeded", "examples": 1, "epochs": 2, "step": 6, "total_steps": 6,
            "adapter": "v1", "adapter_path": "/adapters/v1", "trained_divergence_before": 1.8,
            "trained_divergence_after": 0.07, "recall": 1.0, "generic_loglik_change": -0.05,
        })  # fmt: skip
        end = await train.end()
        assert end.state == SUCCEEDED and "adapter v1" in end.detail, end.error
        checked = await verify.end(timeout=240)
        assert checked.state == SUCCEEDED, checked.error

        # The Review's measurement equals what the Scorer reports for that reply now.
        channel = grpc.aio.insecure_channel(scorer_address)
        direct = await scorer_pb2_grpc.ScorerStub(channel).ScoreConversation(
            scorer_pb2.ScoreConversationRequest(
                conversation=conversation, threshold=0.5, only=[biscuit.timestamp],
                skip_attribution=True,
            )
        )  # fmt: skip
        await channel.close()
        assert direct.adapter == "v1"  # the adapter the job promoted, loaded on the Scorer
        (now,) = [r for r in direct.replies if r.content == BISCUIT]
        (entry,) = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
        assert entry.adapter == "v1" and entry.job_id == "job-1"
        assert entry.divergence_before == biscuit.divergence
        assert entry.HasField("divergence_after")
        assert entry.divergence_after == pytest.approx(now.divergence, abs=1e-4)
        assert BISCUIT not in [c.content for c in await review.list()]  # not a candidate

        (job,) = await jobs(review)
        assert (job.id, job.state, job.adapter, job.examples, job.epochs) == (
            "job-1", S.TRAINING_JOB_STATE_SUCCEEDED, "v1", 1, 2,
        )  # fmt: skip
        assert (job.recall, job.generic_loglik_change) == (1.0, -0.05)
        assert (job.trained_divergence_before, job.trained_divergence_after) == (1.8, 0.07)
        assert job.destination == trainer.url and job.ended_at.seconds > 0
    finally:
        train.close()
        verify.close()
        await review.stop()
        async with grpc.aio.insecure_channel(scorer_address) as channel:  # back to the base
            await scorer_pb2_grpc.ScorerStub(channel).LoadAdapter(scorer_pb2.LoadAdapterRequest())


async def test_a_failed_job_fails_the_train_activity_and_is_listed_with_its_error(
    review: ReviewUnderTest, trainer: StubTrainer, watched: Callable[[str], Activity]
) -> None:
    reason = "guard: generic log-likelihood fell by 0.42 nats/token at epoch 3"
    trainer.first_script = [{"state": "running"}, {"state": "failed", "error": reason}]
    train = watched("train-job-1")
    await send_one(review, trainer.url)
    end = await train.end()
    assert end.state == FAILED and reason in end.error
    (job,) = await jobs(review)
    assert (job.state, job.error, job.adapter) == (S.TRAINING_JOB_STATE_FAILED, reason, "")
    assert not job.HasField("recall")
    # Nothing learnt: nothing in the ledger, the reply approved again with the reason.
    assert list((await review.stub.ListTrained(S.ListTrainedRequest())).entries) == []
    (back,) = await review.list()
    assert back.status == S.CANDIDATE_STATUS_APPROVED and back.job_id == ""
    assert back.send_error == f"job job-1 failed: {reason}"
    assert back.divergence == 0.5  # what the (stand-in) Scorer said at send time


async def test_an_endpoint_without_the_jobs_route_leaves_the_job_accepted(
    review: ReviewUnderTest, trainer: StubTrainer, watched: Callable[[str], Activity]
) -> None:
    trainer.jobs_route = False
    train = watched("train-job-1")
    await send_one(review, trainer.url)
    end = await train.end()
    assert end.state == SUCCEEDED and "not followed" in end.detail and "404" in end.detail
    (job,) = await jobs(review)
    assert job.state == S.TRAINING_JOB_STATE_QUEUED and job.error == ""
    (entry,) = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    assert entry.job_id == "job-1"


async def test_a_job_running_when_the_review_stops_is_followed_again_after_a_restart(
    review: ReviewUnderTest, trainer: StubTrainer
) -> None:
    trainer.first_script = [{"state": "running", "step": 1, "total_steps": 4}]
    train = Activity(review, "train-job-1")
    ts = await send_one(review, trainer.url)
    await train.until(lambda a: a.done == 1)
    train.close()
    await review.stop()

    trainer.script("job-1", {"state": "succeeded", "adapter": "v7", "epochs": 1})
    await review.start()
    verify = Activity(review, "verify-job-1")
    try:
        assert (await verify.end()).state == SUCCEEDED
        (job,) = await jobs(review)
        assert (job.state, job.adapter) == (S.TRAINING_JOB_STATE_SUCCEEDED, "v7")
        (entry,) = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
        assert timestamp_ns(entry.timestamp) == ts and entry.adapter == "v7"
        assert entry.divergence_after == 0.5  # the stand-in Scorer's table
    finally:
        verify.close()


async def test_ask_refuses_a_missing_question_and_an_unknown_conversation(
    review: ReviewUnderTest,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await review.stub.Ask(S.AskRequest(question=" "))
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "question" in (empty.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await review.stub.Ask(S.AskRequest(question="Who?", conversation_id="nobody"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
