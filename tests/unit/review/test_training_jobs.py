"""Following a training job over the endpoint's jobs route (httpx's MockTransport stands in
for the endpoint: these are the Review's rules, not the trainer's)."""

from __future__ import annotations

import json

import httpx
import pytest
from ftreview.v1 import review_pb2

from review_service.adapters.job_http import JobFollower, parse_job
from review_service.domain.jobs import JobState, NotFollowable, TrainerSilent, TrainingJob

URL = "http://trainer/v1/ftreview"


def _answers(*bodies: dict[str, object]) -> httpx.MockTransport:
    queue = list(bodies)

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/ftreview/jobs/job-1"
        body = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(200, text=json.dumps(body))

    return httpx.MockTransport(handle)


async def test_follows_a_job_to_its_end_and_reports_each_change() -> None:
    transport = _answers(
        {"state": "queued"},
        {"state": "running", "step": 3, "total_steps": 12, "detail": "epoch 1/4"},
        {"state": "running", "step": 3, "total_steps": 12, "detail": "epoch 1/4"},
        {
            "state": "succeeded",
            "adapter": "v1",
            "adapter_path": "/a/v1",
            "recall": 1.0,
            "trained_divergence_before": 2.1,
            "trained_divergence_after": 0.05,
            "generic_loglik_change": -0.03,
            "examples": 4,
            "epochs": 6,
            "per_example": [
                {
                    "idempotency_key": "k",
                    "divergence_before": 2.0,
                    "divergence_after": 0.1,
                    "answer_after": "Biscuit",
                }
            ],
        },
    )
    follower = JobFollower(transport, poll=0)
    seen: list[TrainingJob] = []
    end = await follower.follow(URL, TrainingJob("job-1", URL), seen.append)
    await follower.close()
    assert [j.state for j in seen] == [JobState.RUNNING, JobState.SUCCEEDED]
    assert end.adapter == "v1"
    # The figures are relayed as the wire message, whole.
    figures = review_pb2.TrainingJob.FromString(end.figures)
    assert (figures.recall, figures.epochs, figures.trained_divergence_after) == (1.0, 6, 0.05)
    assert figures.HasField("generic_loglik_change") and not figures.HasField("drift")
    (proof,) = figures.per_example
    assert (proof.idempotency_key, proof.answer_after, proof.divergence_before) == (
        "k", "Biscuit", 2.0,
    )  # fmt: skip
    assert not proof.HasField("learnt")


async def test_a_stale_answer_never_moves_the_state_back() -> None:
    transport = _answers(
        {"state": "running"}, {"state": "queued"}, {"state": "failed", "error": "guard: no epoch"}
    )
    follower = JobFollower(transport, poll=0)
    seen: list[TrainingJob] = []
    end = await follower.follow(URL, TrainingJob("job-1", URL), seen.append)
    await follower.close()
    assert [j.state for j in seen] == [JobState.RUNNING, JobState.FAILED]
    assert end.error == "guard: no epoch"


async def test_an_endpoint_without_a_jobs_route_is_not_followable() -> None:
    follower = JobFollower(httpx.MockTransport(lambda r: httpx.Response(404)), poll=0)
    with pytest.raises(NotFollowable, match="404"):
        await follower.follow(URL, TrainingJob("job-1", URL), lambda j: None)
    await follower.close()


async def test_a_silent_endpoint_is_given_up_on_for_now() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    follower = JobFollower(httpx.MockTransport(refuse), poll=0.01, give_up_after=0.05)
    with pytest.raises(TrainerSilent, match="connection refused"):
        await follower.follow(URL, TrainingJob("job-1", URL), lambda j: None)
    await follower.close()


def test_malformed_fields_are_left_empty_and_bad_states_refused() -> None:
    job = parse_job(
        {"state": "running", "recall": "lots", "step": -4, "loss": float("nan")}, "j", URL
    )
    assert not review_pb2.TrainingJob.FromString(job.figures).HasField("recall") and job.step == 0
    with pytest.raises(ValueError, match="unknown job state"):
        parse_job({"state": "exploded"}, "j", URL)
