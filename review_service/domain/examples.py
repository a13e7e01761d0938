"""Training examples (context distillation, docs/design.md §6), their export formats, and the body
POSTed to the fine-tuning endpoint.

Invariant: an example is the reply's context WITHOUT the memories followed by the
memory-informed reply, and the reply is the only trained target. Earlier assistant turns
are context, never targets (OpenAI: `weight: 0`; TRL: they sit in the prompt), so a model
fine-tuned on the examples learns to say what the memories told it without being told.

The endpoint body adds two optional fields a trainer may use and any other endpoint
ignores (the README contract stays as it was): per example `messages_with_memories`, the
prompt the reply was written with (memories in), so the trainer's forgetting guard can
measure divergence itself; and per request `held_out`, generic replies (scored below the
threshold, or rejected) whose likelihood without memories training must not lower.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ftreview.core.values import format_ns

from review_service.domain.model import Candidate, ContextMessage

# How many generic replies a request carries for the trainer's forgetting check.
HELD_OUT_LIMIT = 16


@dataclass(frozen=True)
class GenericReply:
    """A reply that must not be forgotten: its context without memories, and the reply."""

    context: tuple[ContextMessage, ...]
    content: str


FORMATS = ("openai", "trl")


_KEY_PREFIX = "ftreview-reply-"


def idempotency_key(timestamp_ns: int) -> str:
    """One key per reply, stable across retries, restarts and re-ingests."""
    return f"{_KEY_PREFIX}{timestamp_ns}"


def keyed_reply(key: str) -> int | None:
    """The reply timestamp an `idempotency_key` names; None for a key not made here."""
    digits = key.removeprefix(_KEY_PREFIX)
    if digits == key or not digits.lstrip("-").isdigit():
        return None
    return int(digits)


def _weighted(context: Sequence[ContextMessage], reply: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for message in context:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.role == "assistant":
            entry["weight"] = 0
        messages.append(entry)
    messages.append({"role": "assistant", "content": reply, "weight": 1})
    return {"messages": messages}


def openai_example(candidate: Candidate) -> dict[str, Any]:
    """OpenAI chat fine-tuning: earlier assistant turns `weight: 0`, the reply `weight: 1`."""
    return _weighted(candidate.context, candidate.content)


def trl_example(candidate: Candidate) -> dict[str, Any]:
    """TRL conversational prompt/completion: the loss falls on the completion only."""
    return {
        "prompt": [{"role": m.role, "content": m.content} for m in candidate.context],
        "completion": [{"role": "assistant", "content": candidate.content}],
    }


def example(candidate: Candidate, fmt: str) -> dict[str, Any]:
    if fmt == "openai":
        return openai_example(candidate)
    if fmt == "trl":
        return trl_example(candidate)
    raise ValueError(f"unknown export format {fmt!r}")


def jsonl(candidates: list[Candidate], fmt: str) -> str:
    """One example per line, keys in a fixed order, non-ASCII kept readable."""
    return "".join(json.dumps(example(c, fmt), ensure_ascii=False) + "\n" for c in candidates)


def endpoint_request(
    candidates: list[Candidate],
    model: str,
    with_memories: Mapping[int, Sequence[ContextMessage]] | None = None,
    held_out: Sequence[GenericReply] = (),
) -> dict[str, Any]:
    """The JSON body POSTed to `learn.finetune_url` (contract in the README). An example
    whose conversation is not stored goes without `messages_with_memories`."""
    examples = []
    for c in candidates:
        example: dict[str, Any] = {
            "idempotency_key": idempotency_key(c.timestamp_ns),
            "timestamp": format_ns(c.timestamp_ns),
            "conversation_id": c.conversation_id,
            "divergence": c.divergence,
            **openai_example(c),
        }
        prompt = (with_memories or {}).get(c.timestamp_ns)
        if prompt:
            example["messages_with_memories"] = [
                {"role": m.role, "content": m.content} for m in prompt
            ]
        examples.append(example)
    body: dict[str, Any] = {"examples": examples}
    if held_out:
        body["held_out"] = [_weighted(g.context, g.content) for g in held_out[:HELD_OUT_LIMIT]]
    if model:
        body["model"] = model
    return body
