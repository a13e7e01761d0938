"""Following a fine-tuning job over HTTP after the endpoint accepted it.

The README's endpoint contract ends at "accepted"; an endpoint that also answers
`GET {finetune_url}/jobs/{job_id}` (ftreview's own trainer does) lets the Review follow the
job: its progress becomes an activity on the Review's stream, and its end (the adapter it
promoted, or why it failed) becomes a `TrainingJob` the Review keeps and lists.

Invariants:
- an endpoint without the jobs route (404, 405, 501) says nothing, and one that stops
  answering says nothing yet; neither fails the job;
- nothing here blocks the event loop: one poll at a time, at most every `poll` seconds.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import math
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from ftreview.v1 import review_pb2

from review_service.domain.jobs import (
    ExampleResult,
    FactCheck,
    JobState,
    NotFollowable,
    TrainerSilent,
    TrainingJob,
)

_STATES = {
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else 0


def _time_ns(value: Any) -> int:
    """Nanoseconds of an RFC 3339 time ("2026-03-01T09:00:11.000Z"); 0 when absent or not one."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def job_url(finetune_url: str, job_id: str) -> str:
    return f"{finetune_url.rstrip('/')}/jobs/{job_id}"


def parse_job(data: Any, job_id: str, destination: str) -> TrainingJob:
    """A TrainingJob from the trainer's JSON; unknown or malformed fields are left empty.
    The figures go into `TrainingJob.figures` as the wire message, relayed as they are."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    state = _STATES.get(str(data.get("state", "")).lower())
    if state is None:
        raise ValueError(f"unknown job state {data.get('state')!r}")
    results = []
    for item in data.get("per_example") or []:
        if isinstance(item, dict) and isinstance(item.get("idempotency_key"), str):
            results.append(
                ExampleResult(
                    item["idempotency_key"],
                    learnt if isinstance(learnt := item.get("learnt"), bool) else None,
                    _words(item.get("reason")),
                )
            )
    retention = tuple(
        FactCheck(item["idempotency_key"], item["comes_back"], item.get("retracted") is True)
        for item in data.get("retention") or []
        if isinstance(item, dict) and isinstance(item.get("idempotency_key"), str)
        and isinstance(item.get("comes_back"), bool)
    )  # fmt: skip
    return TrainingJob(
        id=job_id,
        destination=destination,
        state=state,
        examples=_count(data.get("examples")),
        step=_count(data.get("step")),
        total_steps=_count(data.get("total_steps")),
        detail=str(data.get("detail") or ""),
        adapter=str(data.get("adapter") or ""),
        adapter_path=str(data.get("adapter_path") or ""),
        figures=figures(data).SerializeToString(deterministic=True),
        error=str(data.get("error") or ""),
        ended_at_ns=_time_ns(data.get("ended_at")) if state.ended else 0,
        per_example=tuple(results),
        retention=retention,
        queued_next=str(data.get("queued_next") or ""),
    )


def figures(data: dict[str, Any]) -> review_pb2.TrainingJob:
    """The trainer's figures of one job (the README's `GET /jobs/{id}` fields) as the wire
    message that carries them; a field missing or not a number stays unset (an older
    trainer says nothing of `kind`, `continued_from`, `retention` or `facts_*`)."""
    message = review_pb2.TrainingJob(epochs=_count(data.get("epochs")))
    for name in (
        "trained_divergence_before", "trained_divergence_after", "recall",
        "generic_loglik_change", "drift", "general_retention",
    ):  # fmt: skip
        if (value := _number(data.get(name))) is not None:
            setattr(message, name, value)
    if (learnt := _number(data.get("learnt"))) is not None and learnt >= 0:
        message.learnt = int(learnt)
    for name in ("kind", "continued_from"):
        if isinstance(value := data.get(name), str):
            setattr(message, name, value)
    for name in ("facts_checked", "facts_kept"):
        if (count := _number(data.get(name))) is not None and 0 <= count < 2**32:
            setattr(message, name, int(count))
    for item in data.get("retention") or []:
        if isinstance(item, dict) and isinstance(item.get("idempotency_key"), str):
            message.retention.add(
                idempotency_key=item["idempotency_key"],
                comes_back=item.get("comes_back") is True,
                retracted=item.get("retracted") is True,
                answer=str(item.get("answer") or ""),
                fact=_fact(item.get("fact")),
            )
    for item in data.get("per_example") or []:
        if not isinstance(item, dict) or not isinstance(item.get("idempotency_key"), str):
            continue
        proof = message.per_example.add(
            idempotency_key=item["idempotency_key"],
            answer_before=str(item.get("answer_before") or ""),
            answer_after=str(item.get("answer_after") or ""),
            reason=_words(item.get("reason")),
            fact=_fact(item.get("fact")),
        )
        for name in ("divergence_before", "divergence_after"):
            if (value := _number(item.get(name))) is not None:
                setattr(proof, name, value)
        if isinstance(learnt := item.get("learnt"), bool):
            proof.learnt = learnt
    return message


def _fact(value: Any) -> str:
    """The fact words as one line: ftreview's trainer sends a list of them."""
    if isinstance(value, list):
        return " ".join(str(word) for word in value if isinstance(word, str | int | float))
    return _words(value)


def _words(value: Any) -> str:
    return " ".join(str(value or "").split())


# The headers to send to one fine-tuning URL (its bearer token, if any): `FinetuneAuth`.
HeadersFor = Callable[[str], dict[str, str]]


def no_headers(url: str) -> dict[str, str]:
    return {}


class JobFollower:
    """Polls one endpoint's jobs route until a job ends."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        poll: float = 0.5,
        give_up_after: float = 60.0,
        headers_for: HeadersFor = no_headers,
    ) -> None:
        self._client = httpx.AsyncClient(transport=transport)
        self._headers_for = headers_for
        self._poll = poll
        self._give_up_after = give_up_after

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(self, finetune_url: str, job_id: str) -> TrainingJob:
        url = job_url(finetune_url, job_id)
        try:
            response = await self._client.get(
                url, timeout=10, headers=self._headers_for(finetune_url)
            )
        except httpx.TransportError as error:
            raise ConnectionError(f"{url}: {type(error).__name__}: {error}") from error
        if response.status_code in (404, 405, 501):
            raise NotFollowable(f"{url} answered {response.status_code}: no jobs route")
        if response.status_code >= 400:
            said = response.text.strip().replace("\n", " ")[:200]
            raise ConnectionError(f"{url} answered {response.status_code}: {said}")
        try:
            return parse_job(response.json(), job_id, finetune_url)
        except ValueError as error:
            raise NotFollowable(f"{url}: {error}") from error

    async def follow(
        self,
        finetune_url: str,
        job: TrainingJob,
        on_update: Callable[[TrainingJob], Awaitable[None] | None],
    ) -> TrainingJob:
        """Poll until the job ends; call (and await, if it returns an awaitable) `on_update`
        on every change. Raises NotFollowable when the route is missing or silent for
        `give_up_after` seconds."""
        loop = asyncio.get_running_loop()
        silent_since: float | None = None
        while not job.state.ended:
            try:
                fresh = await self.fetch(finetune_url, job.id)
            except ConnectionError as error:
                now = loop.time()
                silent_since = silent_since or now
                if now - silent_since > self._give_up_after:
                    raise TrainerSilent(f"{error} for {self._give_up_after:g}s") from error
            else:
                silent_since = None
                merged = job.merged(fresh)
                if merged != job:
                    job = merged
                    pending = on_update(job)
                    if inspect.isawaitable(pending):
                        await pending
            if not job.state.ended:
                await asyncio.sleep(self._poll)
        return job
