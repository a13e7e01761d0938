"""Scoring on an SGLang server: native `POST /generate` with `return_logprob`.

Invariant: as for vLLM, a number handed back is the log-probability of the token that was
sent at that position, or the call fails. SGLang returns `input_token_logprobs` from
`logprob_start_len` on, one `[logprob, token_id, text]` per position, the first always
null; the request starts one before the first scored position, so only what is needed
travels and SGLang's radix cache serves the prefix before it (docs/design.md §10). Each entry's
token id is checked against what was sent. SGLang writes non-finite floats as null, so a
null at a scored position (NaN, or -inf: they cannot be told apart) is refused.

What SGLang shares with vLLM's OpenAI server (`GET /v1/models` with `max_model_len`,
replicas, retries, concurrency of the variants) comes from `VllmServerBackend`; only
scoring and generation are SGLang's own.

    POST /generate {"input_ids": [...], "return_logprob": true, "logprob_start_len": S,
                    "sampling_params": {"max_new_tokens": 0, "temperature": 0, "top_p": 1}}
    200 {"text": "", "output_ids": [], "meta_info": {"prompt_tokens": n,
         "input_token_logprobs": [[null, id_S, null], [lp, id_S+1, null], ...]}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scorer_service.backends.base import Generation, RangeLogprobs, ScoreRequest, StopCheck
from scorer_service.backends.vllm import VllmServerBackend
from scorer_service.backends.vllm_wire import expect_list, expect_object, logprob_from_wire
from scorer_service.errors import BackendProtocolError

# Keep the returned log-probabilities raw: SGLang may rescale them by temperature / top-p.
_NEUTRAL = {"temperature": 0, "top_p": 1}


class SglangBackend(VllmServerBackend):
    """The requested ranges from `/generate`, from one before the first scored position."""

    name = "sglang"
    # vLLM's LoRA batching bug is vLLM's: SGLang keeps scoring the variants side by side.
    serial_after_batch_failure = False

    def adapter_in_use(self) -> str:
        # `/generate` requests here name no LoRA, so the base model serves them (as the
        # `Generation`s of `generate` say).
        return ""

    async def _score_one(self, model: str, request: ScoreRequest) -> RangeLogprobs:
        start = min(first for first, _ in request.ranges) - 1
        reply = await self._engine.post_json(
            "/generate",
            {
                "input_ids": list(request.token_ids),
                # 0 new tokens is allowed (only < 0 is refused): nothing is generated.
                "sampling_params": {"max_new_tokens": 0, **_NEUTRAL},
                "return_logprob": True,
                "logprob_start_len": start,
                "top_logprobs_num": 0,
                "return_text_in_logprobs": False,
            },
        )
        return ranges_from_input_logprobs(request, start, reply)

    async def generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        stop_token_ids: Sequence[int] = (),
        should_stop: StopCheck | None = None,
    ) -> Generation:
        # One request: the engine generates on its side, and a cancelled call cancels it.
        del should_stop
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        reply = expect_object(
            await self._engine.post_json(
                "/generate",
                {
                    "input_ids": list(token_ids),
                    "sampling_params": {
                        "max_new_tokens": max_new_tokens,
                        "stop_token_ids": list(stop_token_ids),
                        **_NEUTRAL,
                    },
                },
            ),
            "/generate reply",
        )
        text = reply.get("text")
        if not isinstance(text, str):
            raise BackendProtocolError(f"/generate reply has no text: {text!r}")
        output = expect_list(reply.get("output_ids"), "/generate output_ids")
        # A stop token ends the output but is not part of the reply (nor of its text).
        count = len(output)
        if count and output[-1] in set(stop_token_ids):
            count -= 1
        return Generation(text=text, token_count=count)


def ranges_from_input_logprobs(request: ScoreRequest, start: int, reply: Any) -> RangeLogprobs:
    """Slice the requested ranges out of `meta_info.input_token_logprobs`, checking its length
    and the token id of every entry read."""
    meta = expect_object(expect_object(reply, "/generate reply").get("meta_info"), "meta_info")
    token_ids = list(request.token_ids)
    prompt_tokens = meta.get("prompt_tokens")
    if prompt_tokens is not None and prompt_tokens != len(token_ids):
        raise BackendProtocolError(
            f"/generate read {prompt_tokens} prompt tokens of the {len(token_ids)} sent"
        )
    entries = expect_list(meta.get("input_token_logprobs"), "meta_info.input_token_logprobs")
    if len(entries) != len(token_ids) - start:
        raise BackendProtocolError(
            f"input_token_logprobs has {len(entries)} entries for positions {start} to "
            f"{len(token_ids) - 1}: the answer does not line up with the prompt"
        )
    result: RangeLogprobs = []
    for first, end in request.ranges:
        values: list[float] = []
        for position in range(first, end):
            where = f"input_token_logprobs[{position - start}] (position {position})"
            entry = entries[position - start]
            token = token_ids[position]
            if not isinstance(entry, list) or len(entry) < 2 or entry[1] != token:
                raise BackendProtocolError(
                    f"{where} does not score the sent token {token} (it holds {entry!r}): "
                    "the answer does not line up with the prompt"
                )
            if entry[0] is None:
                raise BackendProtocolError(
                    f"{where}: logprob is null, which SGLang writes for NaN or an infinity"
                )
            values.append(logprob_from_wire(entry[0], where))
        result.append(values)
    return result
