"""Knowledge that changes at the Review's edges: the endpoint's retract route over HTTP (as
the README's contract says: retried like a post, a missing route says the endpoint keeps no
knowledge, anything else unsure is an error), and the new job figures of the jobs route
(kind, continued_from, facts checked and kept, retention) read into the job and relayed,
an older trainer's job leaving them unset."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ftreview.core.wire import timestamp_ns

from review_service.adapters.finetune_http import HttpFinetuneEndpoint
from review_service.adapters.job_http import parse_job
from review_service.api.convert import job_to_wire
from review_service.domain.errors import EndpointError
from review_service.domain.examples import idempotency_key
from review_service.domain.jobs import FactCheck
from review_service.domain.ports import RetractReply

URL = "http://trainer.test/finetune"
A_NS = 1_772_000_000_000_000_007


def test_job_figures_of_a_newer_trainer_are_read_and_an_older_ones_left_unset() -> None:
    key = idempotency_key(A_NS)
    job = parse_job(
        {
            "state": "succeeded", "kind": "consolidate", "continued_from": "v3",
            "facts_checked": 4, "facts_kept": 3,
            "retention": [
                {"idempotency_key": key, "comes_back": False, "retracted": True,
                 "answer": "On 18 March.", "fact": ["18", "March"]},
                {"idempotency_key": "someone-else", "comes_back": True},
                {"comes_back": True},
            ],
        },
        "ft-1", URL,
    )  # fmt: skip
    assert job.retention == (FactCheck(key, False, True), FactCheck("someone-else", True))
    wire = job_to_wire(job)
    assert (wire.kind, wire.continued_from, wire.facts_checked, wire.facts_kept) == (
        "consolidate",
        "v3",
        4,
        3,
    )
    first, other = wire.retention
    assert (first.fact, first.answer, first.retracted, first.comes_back) == (
        "18 March",
        "On 18 March.",
        True,
        False,
    )
    assert timestamp_ns(first.timestamp) == A_NS and not other.HasField("timestamp")

    older = job_to_wire(parse_job({"state": "succeeded", "adapter": "v1"}, "job-1", URL))
    assert (older.kind, older.continued_from, list(older.retention)) == ("", "", [])
    assert not older.HasField("facts_checked") and not older.HasField("facts_kept")


async def test_the_http_endpoint_posts_retractions_as_the_readme_says() -> None:
    seen: list[tuple[str, Any]] = []
    answers: list[httpx.Response] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), json.loads(request.content)))
        return answers.pop(0)

    endpoint = HttpFinetuneEndpoint(httpx.MockTransport(handle))
    key = idempotency_key(A_NS)
    try:
        answers[:] = [
            httpx.Response(503, text="busy"),
            httpx.Response(200, json={"retracted": [key], "unknown": ["x"], "job_id": "ft-9"}),
        ]
        reply = await endpoint.retract(URL + "/", {key: "wrong"}, 5, 1)
        assert reply == RetractReply(True, {key}, {"x"}, "ft-9")
        assert seen[-1] == (
            URL + "/retract",
            {"retract": [{"idempotency_key": key, "reason": "wrong"}]},
        )
        assert len(seen) == 2  # the 503 was tried again

        answers[:] = [httpx.Response(404, text="no such route")]
        assert await endpoint.retract(URL, {key: ""}, 5, 1) == RetractReply(supported=False)

        answers[:] = [httpx.Response(503, text="busy"), httpx.Response(502, text="down")]
        with pytest.raises(EndpointError, match=r"502.*after 2 tries"):
            await endpoint.retract(URL, {key: ""}, 5, 1)
        answers[:] = [httpx.Response(200, json={"retracted": "all"})]
        with pytest.raises(EndpointError, match="must be lists"):
            await endpoint.retract(URL, {key: ""}, 5, 0)
        answers[:] = [httpx.Response(400, text="bad key")]
        with pytest.raises(EndpointError, match="refused the request \\(400\\): bad key"):
            await endpoint.retract(URL, {key: ""}, 5, 3)
    finally:
        await endpoint.close()
