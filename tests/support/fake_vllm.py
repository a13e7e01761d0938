"""An in-test HTTP server that stands in for a vLLM OpenAI server.

This stands in for vLLM because vLLM cannot run on these machines (no GPU); it speaks the
wire format documented in `shared/reference/serving-protocols.md` §1 (`/v1/completions` with
a token-id prompt and `prompt_logprobs`, `/v1/models`, both error envelopes) and the seed
system's `/score` with `score_ranges` of docs/design.md §5, and runtime LoRA loading
(`POST /v1/load_lora_adapter`, plain-text success, after which the adapter's name is a
model). Real HTTP over loopback: the adapters under test run their whole stack (httpx,
timeouts, retries, JSON) against it.

Invariant the tests rely on: the log-probability the server reports for a position is a
deterministic function of (prefix, token) — `expected_logprobs(token_ids)` gives them all —
so a test can tell whether an adapter returned the right number at the right position.
Token `IMPOSSIBLE_TOKEN` always scores -inf, which goes out as vLLM's clamp value -9999.0.

Each test scripts its server: fail the next requests with a 5xx, refuse one with a 4xx in the
nested (vLLM >= 0.10.1) or flat envelope, send a raw non-JSON body, stall past the client's
timeout, or rewrite the next JSON answer (misalignment). Every exchange is recorded with the
bytes of its request and response bodies.
"""

from __future__ import annotations

import json
import random
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL = "fake-org/fake-model"
ADAPTER = "fake-lora"  # served beside MODEL, as vLLM lists LoRA adapters
MAX_MODEL_LEN = 8192
VOCAB_SIZE = 50_000
IMPOSSIBLE_TOKEN = 13
CLAMPED_NEG_INF = -9999.0

# 256 log-probabilities, drawn once from a fixed seed and rounded to float32 as vLLM's are
# (so the JSON carries the same long reprs and the byte counts are realistic).
_rng = random.Random(20240611)
_TABLE = [struct.unpack("f", struct.pack("f", -_rng.expovariate(0.4)))[0] for _ in range(256)]


def expected_logprobs(token_ids: Sequence[int]) -> list[float | None]:
    """log p(token[i] | tokens before it) for every position; None at position 0."""
    values: list[float | None] = [None]
    state = 0
    for position, token in enumerate(token_ids):
        if position:
            if token == IMPOSSIBLE_TOKEN:
                values.append(float("-inf"))
            else:
                values.append(_TABLE[(state ^ (token * 2654435761)) % 256])
        state = zlib.crc32(struct.pack("<q", token), state)
    return values[: len(token_ids)]


def greedy_continuation(token_ids: Sequence[int], count: int) -> list[int]:
    """The tokens the fake model generates after `token_ids`, before any stop rule."""
    context = list(token_ids)
    generated: list[int] = []
    for _ in range(count):
        token = 100 + zlib.crc32(struct.pack(f"<{len(context)}q", *context)) % 900
        generated.append(token)
        context.append(token)
    return generated


def token_text(token: int) -> str:
    return f" w{token}"


@dataclass
class Exchange:
    method: str
    path: str
    request: Any  # the parsed JSON body, or None
    request_bytes: int
    status: int = 0  # 0 while no answer was sent (stalled)
    response: Any = None
    response_bytes: int = 0


@dataclass
class _Fault:
    path: str | None
    act: Callable[[_Handler, Exchange], bool]  # True: the fault answered the request


@dataclass
class _Script:
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: list[_Fault] = field(default_factory=list)
    rewrites: list[tuple[str | None, Callable[[dict[str, Any]], None]]] = field(
        default_factory=list
    )
    exchanges: list[Exchange] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)


class FakeVllm:
    """A scriptable vLLM on 127.0.0.1 at an ephemeral port. Use as a context manager."""

    # The request handler class; another engine's stand-in gives its own.
    handler: type[BaseHTTPRequestHandler]

    def __init__(
        self, model: str = MODEL, max_model_len: int = MAX_MODEL_LEN, port: int = 0
    ) -> None:
        self.model = model
        self.max_model_len = max_model_len
        # Real vLLM never writes NaN or Infinity (Starlette refuses them); a test that
        # stands in for a broken engine or proxy turns this on.
        self.non_finite_json = False
        # LoRA adapters loaded at run time (`POST /v1/load_lora_adapter`): name -> path.
        self.loras: dict[str, str] = {}
        self._script = _Script()
        server = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll keeps shutdown() (which waits for the next poll) from costing each
        # test half a second.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeVllm:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._script.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- what happened -------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._script.lock:
            return list(self._script.exchanges)

    def requests_to(self, path: str) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.path == path]

    # --- scripting: each applies to the next matching request(s), in order --------------

    def fail_next(self, count: int = 1, *, status: int = 500, path: str | None = None) -> None:
        for _ in range(count):
            self._add_fault(
                path,
                lambda handler, exchange: handler.send_error_envelope(
                    exchange, status, "nested", "InternalServerError", "engine step failed"
                ),
            )

    def reject_next(
        self,
        message: str,
        *,
        envelope: str = "nested",
        status: int = 400,
        error_type: str = "BadRequestError",
        path: str | None = None,
    ) -> None:
        self._add_fault(
            path,
            lambda handler, exchange: handler.send_error_envelope(
                exchange, status, envelope, error_type, message
            ),
        )

    def send_raw_next(
        self, status: int, body: bytes, *, content_type: str = "text/plain", path: str | None = None
    ) -> None:
        self._add_fault(
            path, lambda handler, exchange: handler.send_body(exchange, status, body, content_type)
        )

    def stall_next(self, count: int = 1, *, path: str | None = None) -> None:
        """Hold the next requests without an answer until the server closes."""

        def stall(handler: _Handler, exchange: Exchange) -> bool:
            self._script.released.wait(timeout=30)
            handler.close_connection = True
            return True

        for _ in range(count):
            self._add_fault(path, stall)

    def rewrite_next(
        self, rewrite: Callable[[dict[str, Any]], None], *, path: str | None = None
    ) -> None:
        """Let `rewrite` change the next successful JSON answer in place before it is sent."""
        with self._script.lock:
            self._script.rewrites.append((path, rewrite))

    def _add_fault(self, path: str | None, act: Callable[[_Handler, Exchange], bool]) -> None:
        with self._script.lock:
            self._script.faults.append(_Fault(path, act))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._script.lock:
            for index, fault in enumerate(self._script.faults):
                if fault.path in (None, path):
                    return self._script.faults.pop(index)
        return None

    def _take_rewrite(self, path: str) -> Callable[[dict[str, Any]], None] | None:
        with self._script.lock:
            for index, (wanted, rewrite) in enumerate(self._script.rewrites):
                if wanted in (None, path):
                    del self._script.rewrites[index]
                    return rewrite
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._script.lock:
            self._script.exchanges.append(exchange)

    # --- the engine ----------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        created = int(time.time())
        card = {
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "max_model_len": self.max_model_len,
            "permission": [],
        }
        return {
            "object": "list",
            "data": [
                {**card, "id": self.model, "root": "/models/fake", "parent": None},
                {**card, "id": ADAPTER, "root": "/adapters/fake-lora", "parent": self.model},
                *(
                    {**card, "id": name, "root": path, "parent": self.model}
                    for name, path in self.loras.items()
                ),
            ],
        }

    def load_lora(self, request: Any) -> str:
        """vLLM's runtime LoRA loading (VLLM_ALLOW_RUNTIME_LORA_UPDATING): the folder must
        exist on this machine and hold an adapter_config.json; a name is loaded once."""
        if not isinstance(request, dict):
            raise _Refusal(400, "BadRequestError", "body must be a JSON object")
        name, path = request.get("lora_name"), request.get("lora_path")
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            raise _Refusal(
                400, "BadRequestError", "both 'lora_name' and 'lora_path' must be provided."
            )
        if name in self.loras:
            raise _Refusal(
                400, "InvalidUserInput", f"The lora adapter '{name}' has already been loaded."
            )
        if not (Path(path) / "adapter_config.json").is_file():
            raise _Refusal(
                400, "BadRequestError", f"Loading lora {name} failed: No adapter found for {path}"
            )
        self.loras[name] = path
        return f"Success: LoRA adapter '{name}' added successfully."


class _Refusal(Exception):
    def __init__(self, status: int, error_type: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.param = param


class _PlainText(Exception):
    """A 200 answer whose body is text, not JSON."""


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as uvicorn does; every answer carries a Content-Length.
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def fake(self) -> FakeVllm:
        fake: FakeVllm = self.server.fake  # type: ignore[attr-defined]
        return fake

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a test's output is its assertions

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(raw) if raw else None
        except ValueError:
            request = None
        exchange = Exchange(method, self.path, request, len(raw))
        self.fake._record(exchange)
        fault = self.fake._take_fault(self.path)
        if fault is not None and fault.act(self, exchange):
            return
        try:
            answer = self._answer(method, self.path, request)
        except _PlainText as text:  # vLLM answers some admin routes in plain text
            self.send_body(exchange, 200, str(text).encode(), "text/plain; charset=utf-8")
            return
        except _Refusal as refusal:
            self.send_error_envelope(
                exchange,
                refusal.status,
                "nested",
                refusal.error_type,
                refusal.message,
                refusal.param,
            )
            return
        rewrite = self.fake._take_rewrite(self.path)
        if rewrite is not None:
            rewrite(answer)
        self.send_json(exchange, 200, answer)

    def _answer(self, method: str, path: str, request: Any) -> dict[str, Any]:
        if method == "GET" and path == "/v1/models":
            return self.fake.models()
        if method == "POST" and path == "/v1/completions":
            return self._completion(self._checked(request))
        if method == "POST" and path == "/score":
            return self._score(self._checked(request))
        if method == "POST" and path == "/v1/load_lora_adapter":
            raise _PlainText(self.fake.load_lora(request))
        raise _Refusal(404, "NotFoundError", f"no route {method} {path}")

    def _checked(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise _Refusal(400, "BadRequestError", "body must be a JSON object")
        if request.get("model") not in (self.fake.model, ADAPTER, *self.fake.loras):
            raise _Refusal(
                404, "NotFoundError", f"The model `{request.get('model')}` does not exist."
            )
        prompt = request.get("prompt")
        if not (isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt)):
            raise _Refusal(400, "BadRequestError", "prompt must be a list of token ids", "prompt")
        return request

    def _completion(self, request: dict[str, Any]) -> dict[str, Any]:
        prompt: list[int] = request["prompt"]
        max_tokens = request.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise _Refusal(
                400, "BadRequestError", f"max_tokens must be at least 1, got {max_tokens}."
            )
        if len(prompt) + max_tokens > self.fake.max_model_len:
            raise _Refusal(
                400,
                "BadRequestError",
                f"This model's maximum context length is {self.fake.max_model_len} tokens. "
                f"However, you requested {len(prompt) + max_tokens} tokens.",
            )
        top = request.get("prompt_logprobs")
        if top is not None and (not isinstance(top, int) or top < 0):
            raise _Refusal(
                400, "BadRequestError", "prompt_logprobs must be >= 0", "prompt_logprobs"
            )
        stops = set(request.get("stop_token_ids") or ())
        generated: list[int] = []
        finish_reason, stop_reason = "length", None
        for token in greedy_continuation(prompt, max_tokens):
            generated.append(token)
            if token in stops:
                finish_reason, stop_reason = "stop", token
                break
        # As vLLM: the stop token is counted but not rendered.
        shown = generated[:-1] if finish_reason == "stop" else generated
        return {
            "id": f"cmpl-fake-{len(self.fake.exchanges)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "text": "".join(token_text(token) for token in shown),
                    "logprobs": None,
                    "finish_reason": finish_reason,
                    "stop_reason": stop_reason,
                    "prompt_logprobs": None if top is None else _prompt_logprobs(prompt, top),
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt),
                "total_tokens": len(prompt) + len(generated),
                "completion_tokens": len(generated),
                "prompt_tokens_details": None,
            },
        }

    def _score(self, request: dict[str, Any]) -> dict[str, Any]:
        prompt: list[int] = request["prompt"]
        ranges = request.get("score_ranges")
        if not isinstance(ranges, list) or not ranges:
            raise _Refusal(400, "BadRequestError", "score_ranges must be a non-empty list")
        values = expected_logprobs(prompt)
        answer = []
        for item in ranges:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(bound, int) for bound in item)
                and 1 <= item[0] < item[1] <= len(prompt)
            ):
                raise _Refusal(
                    400,
                    "BadRequestError",
                    f"score range {item!r} is outside 1 <= start < end <= {len(prompt)}",
                    "score_ranges",
                )
            start, end = item
            answer.append(
                {"start": start, "end": end, "logprobs": [_wire(v) for v in values[start:end]]}
            )
        return {
            "model": request["model"],
            "ranges": answer,
            "usage": {"prompt_tokens": len(prompt)},
        }

    # --- answers ---------------------------------------------------------------------------

    def send_json(self, exchange: Exchange, status: int, payload: dict[str, Any]) -> bool:
        exchange.response = payload
        # Compact, as Starlette's JSONResponse encodes it.
        body = json.dumps(
            payload, separators=(",", ":"), allow_nan=self.fake.non_finite_json
        ).encode()
        return self.send_body(exchange, status, body, "application/json")

    def send_body(self, exchange: Exchange, status: int, body: bytes, content_type: str) -> bool:
        # Recorded before the write: once the client has the answer, a test may look.
        exchange.status = status
        exchange.response_bytes = len(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def send_error_envelope(
        self,
        exchange: Exchange,
        status: int,
        envelope: str,
        error_type: str,
        message: str,
        param: str | None = None,
    ) -> bool:
        error = {"message": message, "type": error_type, "param": param, "code": status}
        if envelope == "nested":
            payload: dict[str, Any] = {"error": error}
        elif envelope == "flat":
            payload = {"object": "error", **error}
        else:
            raise ValueError(f"unknown envelope {envelope!r}")
        return self.send_json(exchange, status, payload)


def _prompt_logprobs(prompt: list[int], top: int) -> list[dict[str, Any] | None]:
    values = expected_logprobs(prompt)
    entries: list[dict[str, Any] | None] = [None]
    for position in range(1, len(prompt)):
        token, value = prompt[position], values[position]
        assert value is not None
        entry: dict[str, Any] = {}
        # With top > 0, vLLM adds the top tokens; put them first so that an adapter reading
        # by dict order, rather than by the sent token's id, picks the wrong number.
        for rank in range(1, top + 1):
            other = (token + rank) % VOCAB_SIZE
            entry[str(other)] = {
                "logprob": _wire(-0.01 * rank),
                "rank": rank,
                "decoded_token": token_text(other),
            }
        entry[str(token)] = {
            "logprob": _wire(value),
            "rank": top + 1 + (token % 97),
            "decoded_token": token_text(token),
        }
        entries.append(entry)
    return entries


def _wire(value: float | None) -> float | None:
    if value is None:
        return None
    return max(value, CLAMPED_NEG_INF)  # vLLM's clamp: its JSON encoder refuses -inf


FakeVllm.handler = _Handler
