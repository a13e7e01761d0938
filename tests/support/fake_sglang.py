"""An in-test HTTP server that stands in for an SGLang server (no GPU here to run one).

It speaks SGLang's native `POST /generate` as `shared/reference/serving-protocols.md` §2
documents it: `input_ids` in, `meta_info.input_token_logprobs` out as `[logprob, token_id,
null]` from `logprob_start_len` on with the first entry null, non-finite values written as
null (SGLang serialises with orjson), `logprob_start_len >= len(input_ids)` refused with 400
and `{"error": {"message"}}`; plus the OpenAI-style `GET /v1/models` it also serves. The
numbers, scripting and recording are the vLLM stand-in's (`fake_vllm`), so the same
`expected_logprobs` says what each position must score.
"""

from __future__ import annotations

import time
from typing import Any

from tests.support.fake_vllm import (
    FakeVllm,
    _Handler,
    _Refusal,
    expected_logprobs,
    greedy_continuation,
    token_text,
)


class _SglangHandler(_Handler):
    def _answer(self, method: str, path: str, request: Any) -> dict[str, Any]:
        if method == "POST" and path == "/generate":
            return self._generate(request)
        if method == "GET" and path == "/v1/models":
            return self.fake.models()
        raise _Refusal(404, "NotFoundError", f"no route {method} {path}")

    def _generate(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise _Refusal(400, "BadRequestError", "body must be a JSON object")
        ids = request.get("input_ids")
        if not (isinstance(ids, list) and ids and all(isinstance(t, int) for t in ids)):
            raise _Refusal(400, "BadRequestError", "input_ids must be a list of token ids")
        params = request.get("sampling_params") or {}
        max_new = params.get("max_new_tokens", 128)
        if not isinstance(max_new, int) or max_new < 0:
            raise _Refusal(400, "BadRequestError", "max_new_tokens must be at least 0")
        if len(ids) + max_new > self.fake.max_model_len:
            raise _Refusal(
                400,
                "BadRequestError",
                f"The input ({len(ids)} tokens) is longer than the model's context length "
                f"({self.fake.max_model_len} tokens).",
            )
        stops = set(params.get("stop_token_ids") or ())
        output: list[int] = []
        finish: dict[str, Any] = {"type": "length", "length": max_new}
        for token in greedy_continuation(ids, max_new):
            output.append(token)
            if token in stops:
                finish = {"type": "stop", "matched": token}
                break
        shown = output[:-1] if finish["type"] == "stop" else output
        meta: dict[str, Any] = {
            "id": f"fake-{len(self.fake.exchanges)}",
            "finish_reason": finish,
            "prompt_tokens": len(ids),
            "completion_tokens": len(output),
            "cached_tokens": 0,
            "e2e_latency": 0.001,
        }
        if request.get("return_logprob"):
            start = request.get("logprob_start_len", -1)
            if not isinstance(start, int) or start >= len(ids):
                raise _Refusal(
                    400,
                    "BadRequestError",
                    f"logprob_start_len ({start}) is superior to the number of input "
                    f"tokens ({len(ids)})",
                )
            start = len(ids) - 1 if start < 0 else start
            values = expected_logprobs(ids)
            entries: list[list[Any]] = [[None, ids[start], None]]
            for position in range(start + 1, len(ids)):
                value = values[position]
                finite = value is not None and value != float("-inf")
                entries.append([value if finite else None, ids[position], None])
            meta["input_token_logprobs"] = entries
            meta["output_token_logprobs"] = []
        return {
            "text": "".join(token_text(token) for token in shown),
            "output_ids": output,
            "meta_info": meta,
        }

    def send_error_envelope(
        self,
        exchange: Any,
        status: int,
        envelope: str,
        error_type: str,
        message: str,
        param: str | None = None,
    ) -> bool:
        # SGLang's own envelope: {"error": {"message": ...}}.
        return self.send_json(exchange, status, {"error": {"message": message}})


class FakeSglang(FakeVllm):
    """A scriptable SGLang on 127.0.0.1 at an ephemeral port. Use as a context manager."""

    handler = _SglangHandler

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "sglang",
                    "root": self.model,
                    "max_model_len": self.max_model_len,
                }
            ],
        }
