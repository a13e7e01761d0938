"""The fine-tuning endpoint over HTTP (aiohttp): the README's contract plus job status.

Routes:
- `POST /v1/ftreview`: the contract (`contract.py`) -> `{"job_id", "accepted", "rejected",
  "job_ids"}`; `job_ids` (addition) names, per accepted key, the job that accepted it (a
  key seen before keeps its original job); `job_id` is the new job, or, when every key was
  seen before, the job of the first one. A contract break -> 400 `{"error": "<where>: <what>"}`;
  a `model` that is not this trainer's base model -> 400 naming both; a body over the size
  limit -> 413 (`body.py`); a reply or context beyond the limits in tokens -> 400
  (`lengths.py`). Nothing a client sends ends in a 500: an unexpected failure in a handler
  is logged and answered 500 with a JSON error, which the fuzz suite holds at zero.
- `POST /v1/ftreview/retract`: `{"retract": [{"idempotency_key", "reason"}]}` ->
  `{"retracted": [...], "unknown": [...], "job_id"}` (`knowing.py`): `job_id` is the
  consolidation that takes the keys out of the served adapter, "" when none had to; a
  bad body -> 400 naming the field (`contract.parse_retract`), over 8 MiB -> 413.
- `GET /v1/ftreview/jobs` -> `{"jobs": [job, ...]}`, newest first;
  `GET /v1/ftreview/jobs/{job_id}` -> job, or 404.

With a token (`--token-file`, else `$FTREVIEW_TOKEN`: the same as the gRPC services), every
route answers 401 `{"error": ...}` unless the request carries `Authorization: Bearer <token>`
(compared in constant time).

Invariant: handlers only touch the ledger (short SQLite transactions); parsing, checking
and tokenizing a body run off the loop (`body.py`, a thread for `lengths.py`), and training
on the worker's thread, so the event loop answers while a body is parsed or a job trains.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from ftreview.core.security import TOKEN_HINT

from .adapters import KEEP_DEFAULT, AdapterVersions
from .body import MAX_BODY_BYTES, MAX_RETRACT_BYTES, BodyReader, Refusal, decode_retract
from .ledger import JobLedger
from .lengths import TokenCounter, overlong
from .model import names_base_model
from .settings import TrainingSettings
from .worker import JobWorker, ScorerNotice

log = logging.getLogger(__name__)

PATH = "/v1/ftreview"


@dataclass
class TrainerConfig:
    home: Path
    base_folder: Path
    base_name: str
    device: str = "cpu"
    host: str = "127.0.0.1"
    port: int = 8431
    settings: TrainingSettings = field(default_factory=TrainingSettings)
    notify_scorer: ScorerNotice | None = None
    keep_adapters: int = KEEP_DEFAULT
    # Every request must carry `Authorization: Bearer <token>`; None: open.
    token: str | None = None
    # Larger bodies are refused with 413 before they are read whole.
    max_body_bytes: int = MAX_BODY_BYTES
    # False: accepted jobs stay queued (tests of the HTTP contract that must not train).
    run_jobs: bool = True


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token_required(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization")
        if given is None or not hmac.compare_digest(given.encode(), expected):
            what = "wrong bearer token" if given else "missing bearer token"
            return _error(401, f"{what}: send `Authorization: Bearer <token>` ({TOKEN_HINT})")
        return await handler(request)

    return check


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (404, 405, ...) as JSON, and a bug as a logged JSON 500."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(error.status, error.reason)
    except ConnectionError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, "the trainer failed on this request; its log has the details")


class Endpoint:
    def __init__(self, config: TrainerConfig, ledger: JobLedger, worker: JobWorker) -> None:
        self.config = config
        self.ledger = ledger
        self.worker = worker
        self.bodies = BodyReader(config.max_body_bytes)
        self.retractions = BodyReader(min(config.max_body_bytes, MAX_RETRACT_BYTES))
        self.tokens = TokenCounter(config.base_folder)

    async def submit(self, request: web.Request) -> web.Response:
        data = await self.bodies.read(request)
        if isinstance(data, Refusal):
            return _error(data.status, data.message)
        parsed = await self.bodies.decode(data)
        if isinstance(parsed, Refusal):
            return _error(parsed.status, parsed.message)
        config = self.config
        if parsed.model and not names_base_model(
            parsed.model, config.base_folder, config.base_name
        ):
            return _error(
                400,
                f"model: {parsed.model!r} is not this trainer's base model "
                f"{config.base_name!r} ({config.base_folder})",
            )
        beyond = await asyncio.to_thread(overlong, parsed, self.tokens)
        examples = [e for e in parsed.examples if e.key not in beyond.examples]
        held_out = [h for i, h in enumerate(parsed.held_out) if i not in beyond.held_out]
        job_id, owners = "", dict[str, str]()
        if examples:
            job_id, owners = self.ledger.accept(examples, held_out, parsed.settings)
        if job_id:
            self.worker.wake()
        accepted = [e.key for e in examples]
        answer: dict[str, Any] = {
            "job_id": job_id or (owners[accepted[0]] if accepted else ""),
            "accepted": accepted,
            "rejected": [
                {"idempotency_key": key, "reason": why} for key, why in beyond.examples.items()
            ],
            "job_ids": owners,
        }
        return web.json_response(answer)

    async def retract(self, request: web.Request) -> web.Response:
        data = await self.retractions.read(request)
        if isinstance(data, Refusal):
            return _error(data.status, data.message)
        items = await asyncio.to_thread(decode_retract, data)
        if isinstance(items, Refusal):
            return _error(items.status, items.message)
        answer = self.ledger.retract(items)
        if answer["job_id"]:
            self.worker.wake()
        return web.json_response(answer)

    async def jobs(self, request: web.Request) -> web.Response:
        return web.json_response({"jobs": self.ledger.jobs()})

    async def job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        job = self.ledger.job(job_id)
        if job is None:
            return _error(404, f"no job {job_id!r}")
        return web.json_response(job)


@dataclass
class RunningTrainer:
    runner: web.AppRunner
    port: int
    ledger: JobLedger
    worker: JobWorker
    versions: AdapterVersions
    endpoint: Endpoint

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def stop(self) -> None:
        await self.runner.cleanup()
        if self.worker.started:
            self.worker.stop()
        self.ledger.close()


async def start(config: TrainerConfig) -> RunningTrainer:
    """Open the ledger, start the worker (re-queueing interrupted jobs) and bind the port."""
    config.home.mkdir(parents=True, exist_ok=True)
    ledger = JobLedger(config.home / "trainer.sqlite3")
    versions = AdapterVersions(config.home, config.keep_adapters)
    worker = JobWorker(
        ledger, versions, config.settings, config.base_folder, config.device, config.notify_scorer
    )
    endpoint = Endpoint(config, ledger, worker)
    middlewares: list[Middleware] = [json_errors]
    if config.token:
        middlewares.append(bearer_token_required(config.token))
    # The body is read by `BodyReader`, which holds its own limit.
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=middlewares)
    app.router.add_post(PATH, endpoint.submit)
    app.router.add_post(f"{PATH}/retract", endpoint.retract)
    app.router.add_get(f"{PATH}/jobs", endpoint.jobs)
    app.router.add_get(f"{PATH}/jobs/{{job_id}}", endpoint.job)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = int(runner.addresses[0][1])
    if config.run_jobs:
        worker.start()
    log.info(
        "fine-tuning endpoint on http://%s:%d%s (home %s)", config.host, port, PATH, config.home
    )
    return RunningTrainer(runner, port, ledger, worker, versions, endpoint)
