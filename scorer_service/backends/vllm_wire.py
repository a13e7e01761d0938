"""Reading what a vLLM-style server answers: prompt log-probabilities into the requested
ranges, and the checks every answer goes through (an object where one is due, a number
that is a log-probability, the error texts that mean "LoRA is off" or "no such adapter").
Shared by the vLLM, vLLM `/score` and SGLang adapters; a malformed answer is a
`BackendProtocolError` naming where.
"""

from __future__ import annotations

import math
import re
from typing import Any

from scorer_service.backends.base import RangeLogprobs, ScoreRequest
from scorer_service.errors import BackendProtocolError

# vLLM's stand-in for -inf (`clamp_prompt_logprobs`); anything at or below it is -inf.
CLAMPED_NEG_INF = -9999.0


def ranges_from_prompt_logprobs(request: ScoreRequest, reply: Any) -> RangeLogprobs:
    """Slice the requested ranges out of a `/v1/completions` answer, checking each position
    read: the list is as long as the prompt and the entry holds the token that was sent."""
    per_position = first_choice(reply).get("prompt_logprobs")
    if per_position is None:
        raise BackendProtocolError(
            "the completion carries no prompt_logprobs; a vLLM 0.7.x server reads "
            "prompt_logprobs=0 as off: configure prompt_logprobs=1"
        )
    positions = expect_list(per_position, "prompt_logprobs")
    token_ids = list(request.token_ids)
    if len(positions) != len(token_ids):
        raise BackendProtocolError(
            f"prompt_logprobs has {len(positions)} entries for a prompt of "
            f"{len(token_ids)} tokens: the answer does not line up with the prompt"
        )
    result: RangeLogprobs = []
    for start, end in request.ranges:
        values: list[float] = []
        for position in range(start, end):
            token = token_ids[position]
            entry = positions[position]
            found = entry.get(str(token)) if isinstance(entry, dict) else None
            if not isinstance(found, dict):
                held = list(entry)[:3] if isinstance(entry, dict) else entry
                raise BackendProtocolError(
                    f"prompt_logprobs[{position}] does not score the sent token {token} "
                    f"(it holds {held!r}): the answer does not line up with the prompt"
                )
            values.append(logprob_from_wire(found.get("logprob"), f"prompt_logprobs[{position}]"))
        result.append(values)
    return result


def lora_disabled(message: str) -> bool:
    """Whether an engine's error text says it was started without LoRA support (vLLM:
    "LoRA is not enabled. Use --enable-lora ...", as a 400 or a 500)."""
    return "lora is not enabled" in message.lower() or "--enable-lora" in message


def adapter_missing(message: str, name: str) -> bool:
    """Whether an engine's refusal says model `name` does not exist (vLLM: "The model `v1`
    does not exist.", quoted with backticks or apostrophes depending on the version)."""
    quoted = rf"[`'\"]?{re.escape(name)}[`'\"]?"
    return re.search(rf"model {quoted} does not exist", message) is not None


def check_ranges(request: ScoreRequest, where: str) -> None:
    """The port's contract on ranges; broken, it is the caller's bug, not the engine's."""
    length = len(request.token_ids)
    for start, end in request.ranges:
        if not 1 <= start < end <= length:
            raise ValueError(
                f"{where}: range [{start}, {end}) is outside 1 <= start < end <= {length}"
            )


# A log-probability is at most 0. Engines compute log-softmax in float32 (or lower), whose
# rounding can land a hair above 0 for a near-certain token; beyond this it is an engine fault.
POSITIVE_LOGPROB_TOLERANCE = 1e-3


def logprob_from_wire(value: object, where: str) -> float:
    """A wire log-probability as a float in [-inf, 0]; NaN, +inf or a positive value refused:
    scored, it would become a NaN or nonsense divergence reported as OK."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise BackendProtocolError(f"{where}: logprob is {value!r}, not a number")
    if value > POSITIVE_LOGPROB_TOLERANCE:
        raise BackendProtocolError(f"{where}: logprob is {value!r}, above 0: not a log-probability")
    if value <= CLAMPED_NEG_INF:
        return float("-inf")
    return min(float(value), 0.0)


def first_choice(reply: Any) -> dict[str, Any]:
    choices = expect_list(expect_object(reply, "completion").get("choices"), "choices")
    if not choices:
        raise BackendProtocolError("the completion has no choices")
    return expect_object(choices[0], "choices[0]")


def expect_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BackendProtocolError(f"{where}: expected a JSON object, got {_kind(value)}")
    return value


def expect_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BackendProtocolError(f"{where}: expected a JSON list, got {_kind(value)}")
    return value


def expect_int(container: Any, key: str, where: str) -> int:
    value = expect_object(container, where).get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BackendProtocolError(f"{where}.{key}: expected an integer, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
