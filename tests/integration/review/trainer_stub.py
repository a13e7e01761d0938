"""An in-test fine-tuning endpoint over real HTTP (http.server) that speaks the contract the
Review builds against: the README's `POST {url}` (with the trainer's optional
`messages_with_memories` and `held_out`), and ftreview's trainer's `GET {url}/jobs/{id}` and
`POST {url}/retract` (a consolidation job per retraction, with the job figures of "Knowledge
that changes": kind, retention, facts_checked, facts_kept).

It trains nothing: each job answers the states its test scripts (the last one repeats), so
a test decides when a job runs, succeeds or fails, and (per example, `learnt` and `reason`)
which replies it learnt. As ftreview's trainer does, a key is trained at most once: a key
seen before is answered with its job, unless that job ended without learning it (failed,
or `learnt: false`), and then it goes into a new job. Given a Scorer (`scorer_address`), it
promotes as ftreview's trainer does: the Scorer loads a succeeded job's adapter (named as
the job says, from `adapter_path`) before the job is reported succeeded; without one, the
Scorer keeps serving what it served, and a Review that re-scores learns that the score is
not on the job's adapter."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc


@dataclass
class StubTrainer:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    trained: set[str] = field(default_factory=set)
    # job id -> the answers of its jobs route, in turn; the last one repeats.
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # The script each new job starts with.
    first_script: list[dict[str, Any]] = field(default_factory=lambda: [{"state": "queued"}])
    # False: answer 404 on the jobs route, as an endpoint that only accepts.
    jobs_route: bool = True
    polls: int = 0
    # idempotency key -> the job it is in; job id -> its keys; job id -> its last answer.
    key_job: dict[str, str] = field(default_factory=dict)
    job_keys: dict[str, list[str]] = field(default_factory=dict)
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Where to promote succeeded jobs (see the module's docstring), and the jobs promoted.
    scorer_address: str = ""
    adapter_path: str = ""
    promoted: set[str] = field(default_factory=set)
    # The retract route (README, "Knowledge that changes"): False answers 404, as an
    # endpoint that keeps no knowledge; `retract_fails` (a status code) fails it that way.
    retract_route: bool = True
    retract_fails: int = 0
    retractions: list[dict[str, Any]] = field(default_factory=list)
    retracted: set[str] = field(default_factory=set)
    # The POST routes answered, in order ("examples", "retract").
    posted: list[str] = field(default_factory=list)

    def retract(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A consolidation job (scripted like any job, `first_script` with its kind and
        a retention check per key: live ones come back, retracted ones do not) for keys
        retracted now; "" when nothing it trained had to go."""
        with self.lock:
            if not self.retract_route:
                return 404, {"error": "no route /retract"}
            if self.retract_fails:
                return self.retract_fails, {"error": "the trainer is busy"}
            self.retractions.append(body)
            self.posted.append("retract")
            keys = [item["idempotency_key"] for item in body["retract"]]
            known = [k for k in keys if k in self.key_job]
            fresh = [k for k in known if k not in self.retracted]
            self.retracted.update(known)
            job_id = ""
            if fresh:
                job_id = f"consolidate-{len(self.retractions)}"
                checks = [
                    {"idempotency_key": k, "comes_back": k not in self.retracted,
                     "retracted": k in self.retracted, "answer": "", "fact": ""}
                    for k in sorted(self.key_job)
                ]  # fmt: skip
                end = {
                    "state": "succeeded", "kind": "consolidate", "continued_from": "",
                    "retention": checks, "facts_checked": len(checks) - len(self.retracted),
                    "facts_kept": len(checks) - len(self.retracted),
                }  # fmt: skip
                self.jobs[job_id] = [dict(answer, kind="consolidate") for answer in
                                     self.first_script[:-1]] + [end]  # fmt: skip
            unknown = [k for k in keys if k not in self.key_job]
            return 200, {"retracted": known, "unknown": unknown, "job_id": job_id}

    def script(self, job_id: str, *answers: dict[str, Any]) -> None:
        with self.lock:
            self.jobs[job_id] = list(answers)

    def accept(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(body)
            self.posted.append("examples")
            keys = [e["idempotency_key"] for e in body["examples"]]
            fresh = [k for k in keys if k not in self.trained]
            self.trained.update(fresh)
            if fresh:
                job_id = f"job-{len(self.requests)}"
                self.jobs[job_id] = list(self.first_script)
                self.job_keys[job_id] = fresh
                self.key_job.update(dict.fromkeys(fresh, job_id))
            else:
                job_id = self.key_job.get(keys[0], "") if keys else ""
            return {"job_id": job_id, "accepted": keys, "rejected": []}

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            self.polls += 1
            script = self.jobs.get(job_id)
            if script is None or not self.jobs_route:
                return None
            answer = script.pop(0) if len(script) > 1 else script[0]
            self.answered[job_id] = answer
            if answer.get("state") == "failed":
                self.trained.difference_update(self.job_keys.get(job_id, []))
            elif answer.get("state") == "succeeded":
                for item in answer.get("per_example", []):
                    if item.get("learnt") is False:
                        self.trained.discard(item["idempotency_key"])
            promote = answer.get("state") == "succeeded" and job_id not in self.promoted
            self.promoted.update([job_id] if promote else [])
        if promote and self.scorer_address and answer.get("adapter"):
            self._load(str(answer["adapter"]))
        return {"job_id": job_id, **answer}

    def _load(self, name: str) -> None:
        with grpc.insecure_channel(self.scorer_address) as channel:
            request = scorer_pb2.LoadAdapterRequest(path=self.adapter_path or name, name=name)
            scorer_pb2_grpc.ScorerStub(channel).LoadAdapter(request, timeout=120)


@contextlib.contextmanager
def serve_stub_trainer() -> Iterator[StubTrainer]:
    state = StubTrainer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.endswith("/retract"):
                self._answer(*state.retract(body))
            else:
                self._answer(200, state.accept(body))

        def do_GET(self) -> None:
            prefix = "/finetune/jobs/"
            found = state.job(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
            if found is None:
                self._answer(404, {"error": f"no route {self.path}"})
            else:
                self._answer(200, found)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/finetune"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
