"""Shipping approved replies out: Send to the fine-tuning endpoint, Export as JSONL.

Invariants (docs/design.md §6, issues 7 and 16):
- a reply the endpoint's answer names as accepted goes into training: SENT, in the job the
  answer names, nothing in the ledger (the job's end decides that, `promotion`). Only where
  no job can be followed (the answer names none, or the job's endpoint is known to have no
  jobs route) or an export with `mark_trained` hands it out does it go to the ledger at
  once, in the same transaction that takes it off the list;
- a send in flight is recorded (reply, idempotency key, URL) before the POST and cleared
  only when the answer is recorded. A reply whose send outcome is unknown (a crash, a
  timeout, a 5xx) may have been trained: it is held back from every export, with the
  reason on the candidate, and only a Send (same idempotency key, which the endpoint trains
  at most once) settles it. So no reply is trained twice;
- a Send first tells the endpoint the retractions still pending (`knowledge`), then posts
  its examples, so an endpoint never trains a new fact before hearing the old one is gone;
- sends and exports run one at a time, so two of them never hand out the same reply;
- a reply the endpoint refused (named in its answer's `rejected`) keeps the refusal in
  `send_error`, starting `REFUSED`, and a Send of every approved reply (no timestamps)
  holds it back, listing it as not sent with that reason: the endpoint judged the reply
  itself, and posting it again daily would only be refused again. Naming its timestamp
  sends it again; a reply not learnt by a job, or whose send failed on the way, is sent
  again by every Send;
- an accepted send that names a job stores the job in the transaction that puts its
  replies in training, and only then hands it to be followed (`job_tracking`), so a crash
  in between leaves a stored job, and SENT replies, to follow on restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ftreview.core.values import format_ns

from review_service.app import promotion, send_material
from review_service.app.config import ConfigFile, LearnConfig
from review_service.app.feed import CandidateEvent, EventKind
from review_service.app.tasks import Background
from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain import examples
from review_service.domain.errors import EndpointError, FailedPrecondition, InvalidArgument
from review_service.domain.jobs import TrainingJob
from review_service.domain.model import Candidate, SendInFlight, Status
from review_service.domain.ports import ConversationCodec, FinetuneEndpoint, StoreChange

# How `send_error` starts for a reply the endpoint refused (see the invariants).
REFUSED = "refused by the endpoint: "


@dataclass(frozen=True)
class SendReport:
    accepted: list[int]
    # (timestamp_ns, reason); these stay approved.
    failed: list[tuple[int, str]]
    job_id: str
    activity_id: str


@dataclass(frozen=True)
class ExportResult:
    jsonl: str
    timestamps: list[int]


Outcome = tuple[StoreChange | None, list[CandidateEvent], None]


def in_flight_reason(send: SendInFlight) -> str:
    return (
        f"a send to {send.url} began at {format_ns(send.started_at_ns)} and its answer was not "
        "recorded; the endpoint may have trained it, so it is held back from export until a "
        "send settles it (the same idempotency key trains it at most once)"
    )


class Shipping:
    def __init__(
        self,
        writer: Writer,
        endpoint: FinetuneEndpoint,
        background: Background,
        config_file: ConfigFile,
        load_config: Callable[[], LearnConfig],
        codec: ConversationCodec,
        on_job: Callable[[TrainingJob], None],
        before_send: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._writer = writer
        self._endpoint = endpoint
        self._codec = codec
        self._on_job = on_job
        self._before_send = before_send
        self._background = background
        self._config_file = config_file
        self._load_config = load_config
        self._lock = asyncio.Lock()

    def _chosen(self, timestamps: list[int], statuses: set[Status], verb: str) -> list[Candidate]:
        view = self._writer.view
        if not timestamps:
            return sorted(
                (c for c in view.candidates.values() if c.status in statuses),
                key=lambda c: c.timestamp_ns,
            )
        chosen = []
        for ts in dict.fromkeys(timestamps):
            candidate = view.decidable(ts)
            if candidate.status not in statuses:
                raise FailedPrecondition(
                    format_ns(ts),
                    f"candidate {format_ns(ts)} is {candidate.status.value}; "
                    f"only {'/'.join(sorted(s.value for s in statuses))} ones can be {verb}",
                )
            chosen.append(candidate)
        return chosen

    # -- send ---------------------------------------------------------------------------

    async def send(
        self, timestamps: list[int], request_id: str = "", deadline: float | None = None
    ) -> SendReport:
        """POST approved candidates to `learn.finetune_url`; `deadline` is monotonic time."""
        config = self._load_config()
        url = config.finetune_url
        if not url:
            raise FailedPrecondition(
                "learn.finetune_url",
                'no fine-tuning endpoint is set: add  finetune_url: "https://host/path"  to the '
                f"`learn` section of {self._config_file.path} (or use export to write JSONL)",
                kind="CONFIG",
            )
        if self._before_send is not None:
            await self._before_send()  # pending retractions go before the examples
        async with self._lock:
            chosen = self._chosen(timestamps, {Status.APPROVED}, "sent")
            held: list[tuple[int, str]] = []
            if not timestamps:
                held = [
                    (
                        c.timestamp_ns,
                        f"not sent again, {c.send_error} (reject it, or name it to send it again)",
                    )
                    for c in chosen
                    if c.send_error.startswith(REFUSED)
                ]
                chosen = [c for c in chosen if not c.send_error.startswith(REFUSED)]
            if not chosen:
                return SendReport([], held, "", "")
            activity = self._background.start_activity(
                "send", f"send {len(chosen)} to {url}", request_id or uuid.uuid4().hex, len(chosen)
            )
            accepted: list[int] = []
            failed: list[tuple[int, str]] = list(held)
            job_ids: list[str] = []
            try:
                size = config.finetune_batch_size
                for start in range(0, len(chosen), size):
                    batch = [c.timestamp_ns for c in chosen[start : start + size]]
                    ok, refused, job_id = await self._send_batch(batch, url, config, deadline)
                    accepted += ok
                    failed += refused
                    if job_id and job_id not in job_ids:
                        job_ids.append(job_id)
                    activity.progress(start + len(batch))
            except BaseException:
                activity.cancel("send was interrupted; unsent candidates stay approved")
                raise
            summary = f"{len(accepted)} accepted, {len(failed)} not"
            if failed and not accepted:
                activity.fail(f"{summary}: {failed[0][1]}", accepted=0)
            else:
                activity.succeed(summary, accepted=len(accepted), job_ids=job_ids)
            return SendReport(accepted, failed, ",".join(job_ids), activity.id)

    async def _send_batch(
        self, batch: list[int], url: str, config: LearnConfig, deadline: float | None
    ) -> tuple[list[int], list[tuple[int, str]], str]:
        timeout = config.finetune_timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                return [], [(ts, "the call's deadline ran out") for ts in batch], ""
        started = await self._writer.mutate(lambda view: _start_sends(view, batch, url))
        if not started:
            return [], [], ""
        prompts, held_out = await send_material.gather(self._writer, self._codec, started)
        body = examples.endpoint_request(started, config.model, prompts, held_out)
        try:
            reply = await self._endpoint.post(url, body, timeout, config.finetune_retries)
        except EndpointError as error:
            unsure = f"{error.message} (the endpoint may have it: send again to settle it)"
            stamps = [c.timestamp_ns for c in started]
            await self._writer.mutate(lambda view: _unsettled(view, stamps, unsure))
            return [], [(ts, error.message) for ts in stamps], ""
        ok = [c for c in started if examples.idempotency_key(c.timestamp_ns) in reply.accepted]
        rejected = {examples.idempotency_key(c.timestamp_ns): c for c in started if c not in ok}
        refused = {
            c.timestamp_ns: (
                REFUSED + reply.rejected[key]
                if key in reply.rejected
                else "the endpoint did not acknowledge it"
            )
            for key, c in rejected.items()
        }
        job = await self._writer.mutate(lambda view: _settle(view, ok, refused, url, reply.job_id))
        if job is not None:
            self._on_job(job)
        return [c.timestamp_ns for c in ok], list(refused.items()), reply.job_id

    # -- export -------------------------------------------------------------------------

    async def export(
        self, fmt: str, statuses: Iterable[Status], timestamps: list[int], mark_trained: bool
    ) -> ExportResult:
        if fmt not in examples.FORMATS:
            raise InvalidArgument("format", f"choose one of {', '.join(examples.FORMATS)}")
        wanted = set(statuses) or {Status.APPROVED}
        if Status.SENT in wanted:
            raise InvalidArgument(
                "statuses",
                "sent replies are in a training job and cannot be exported; a job that does "
                "not learn one puts it back to approved",
            )
        async with self._lock:
            sends = self._writer.view.sends
            chosen = self._chosen(timestamps, wanted, "exported")
            for candidate in chosen:
                send = sends.get(candidate.timestamp_ns)
                if timestamps and send is not None:
                    raise FailedPrecondition(
                        format_ns(candidate.timestamp_ns),
                        f"candidate {format_ns(candidate.timestamp_ns)}: {in_flight_reason(send)}",
                        kind="SEND_IN_FLIGHT",
                    )
            chosen = [c for c in chosen if c.timestamp_ns not in sends]
            text = examples.jsonl(chosen, fmt)
            if mark_trained and chosen:
                destination = f"export:{fmt}"
                await self._writer.mutate(lambda view: _exported(view, chosen, destination))
        return ExportResult(text, [c.timestamp_ns for c in chosen])


# -- plans (pure functions of the staged view) --------------------------------------------


def _start_sends(
    view: View, batch: list[int], url: str
) -> tuple[StoreChange | None, list[CandidateEvent], list[Candidate]]:
    """Record the sends about to be posted: the replies still approved and not trained."""
    now = time.time_ns()
    started: list[Candidate] = []
    records: list[SendInFlight] = []
    for ts in batch:
        current = view.candidates.get(ts)
        if current is None or current.status != Status.APPROVED or ts in view.ledger:
            continue
        started.append(current)
        records.append(SendInFlight(ts, examples.idempotency_key(ts), url, now))
    if not records:
        return None, [], []
    return StoreChange(sends_started=records), [], started


def _unsettled(view: View, stamps: list[int], reason: str) -> Outcome:
    """No answer: the sends stay in flight; the candidates say why they are held back."""
    fresh = [
        dataclasses.replace(c, send_error=reason)
        for ts in stamps
        if (c := view.candidates.get(ts)) is not None
        and c.visible
        and not c.in_training
        and c.send_error != reason
    ]
    events = [CandidateEvent(EventKind.UPDATED, c) for c in fresh]
    return StoreChange(upsert=fresh), events, None


def _settle(
    view: View, ok: list[Candidate], refused: dict[int, str], url: str, job_id: str
) -> tuple[StoreChange, list[CandidateEvent], TrainingJob | None]:
    """The answer: refused replies keep the reason; accepted ones go into training in the
    job the endpoint named, which is stored and returned to be followed. With no job to
    follow (none named, or an endpoint already known to have no jobs route) they go to the
    ledger at once."""
    known = view.jobs.get((url, job_id)) if job_id else None
    to_follow: TrainingJob | None = None
    if not job_id or (known is not None and known.follow_note):
        change = promotion.handed_over(view, ok, url, job_id)
        events = promotion.removed_events(view, ok)
        added = len(change.trained)
    else:
        change, events = promotion.into_training(view, ok, url, job_id)
        added = len(change.upsert)
    change.sends_ended += [c.timestamp_ns for c in ok] + list(refused)
    if job_id and added:
        if known is None:
            job = TrainingJob(job_id, url, examples=added, created_at_ns=time.time_ns())
        else:  # a later batch the endpoint put in the same job, or a key answered again
            job = dataclasses.replace(known, examples=known.examples + added)
        change.jobs.append(job)
        if not job.follow_note:
            to_follow = job
    for ts, reason in refused.items():
        current = view.candidates.get(ts)
        if current is not None and current.visible and not current.in_training:
            fresh = dataclasses.replace(current, send_error=reason)
            change.upsert.append(fresh)
            events.append(CandidateEvent(EventKind.UPDATED, fresh))
    return change, events, to_follow


def _exported(view: View, batch: list[Candidate], destination: str) -> Outcome:
    change = promotion.handed_over(view, batch, destination)
    return change, promotion.removed_events(view, batch), None
