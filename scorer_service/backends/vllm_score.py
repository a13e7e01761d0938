"""Scoring on the seed system's vLLM server: `/score` extended with `score_ranges`.

Invariant: every requested range comes back exactly once, with exactly `end - start` values,
or the call fails; ranges nobody asked for are refused too, since they mean the server
answered a different request. Only the ranges travel (a few hundred values instead of every
position of a long context, about 70 bytes each on upstream vLLM), which is the point of this
engine. The request and reply shapes live in the two functions below, so a server with
another shape costs a few lines; model resolution, generation and info are upstream vLLM's
(`VllmServerBackend`).

    POST {base}/score  {"model", "prompt": [ids], "score_ranges": [[start, end], ...]}
    200 {"model", "ranges": [{"start", "end", "logprobs": [...]}], "usage": {"prompt_tokens"}}
"""

from __future__ import annotations

from typing import Any

from scorer_service.backends.base import RangeLogprobs, ScoreRequest
from scorer_service.backends.vllm import VllmServerBackend
from scorer_service.backends.vllm_wire import expect_list, expect_object, logprob_from_wire
from scorer_service.errors import BackendProtocolError


class VllmScoreBackend(VllmServerBackend):
    """The requested ranges only, from `POST /score` with `score_ranges`."""

    name = "vllm-score"

    async def _score_one(self, model: str, request: ScoreRequest) -> RangeLogprobs:
        reply = await self._engine.post_json("/score", score_ranges_body(model, request))
        return ranges_from_score_reply(request, reply)


def score_ranges_body(model: str, request: ScoreRequest) -> dict[str, Any]:
    # A range asked twice is sent once; the reply is mapped back by (start, end).
    ranges = list(dict.fromkeys((start, end) for start, end in request.ranges))
    return {
        "model": model,
        "prompt": list(request.token_ids),
        "score_ranges": [[start, end] for start, end in ranges],
    }


def ranges_from_score_reply(request: ScoreRequest, reply: Any) -> RangeLogprobs:
    body = expect_object(reply, "/score reply")
    usage = body.get("usage")
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if prompt_tokens is not None and prompt_tokens != len(request.token_ids):
        raise BackendProtocolError(
            f"/score read {prompt_tokens} prompt tokens of the {len(request.token_ids)} sent"
        )
    requested = [(start, end) for start, end in request.ranges]
    wanted = set(requested)
    returned: dict[tuple[int, int], list[float]] = {}
    for item in expect_list(body.get("ranges"), "/score ranges"):
        entry = expect_object(item, "/score ranges[]")
        key = (entry.get("start"), entry.get("end"))
        if key not in wanted:
            raise BackendProtocolError(f"/score returned range {list(key)}, which was not asked")
        if key in returned:
            raise BackendProtocolError(f"/score returned range {list(key)} twice")
        start, end = key
        values = expect_list(entry.get("logprobs"), f"/score range [{start}, {end})")
        if len(values) != end - start:
            raise BackendProtocolError(
                f"/score range [{start}, {end}) has {len(values)} logprobs, expected {end - start}"
            )
        returned[start, end] = [
            logprob_from_wire(value, f"/score range [{start}, {end}) logprobs[{offset}]")
            for offset, value in enumerate(values)
        ]
    missing = [list(key) for key in dict.fromkeys(requested) if key not in returned]
    if missing:
        raise BackendProtocolError(f"/score left out requested range(s) {missing}")
    return [list(returned[key]) for key in requested]
