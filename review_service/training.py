"""Training examples (context distillation, design §6) and their export formats.

Invariant: an example is the reply's context WITHOUT the memories followed by the
memory-informed reply, and the reply is the only trained target. Earlier assistant turns
are context, never targets (OpenAI: `weight: 0`; TRL: they sit in the prompt), so a model
fine-tuned on the examples learns to say what the memories told it without being told.
"""

from __future__ import annotations

import json
from typing import Any

from ftreview.core.values import format_ns

from .model import Candidate

FORMATS = ("openai", "trl")


def idempotency_key(timestamp_ns: int) -> str:
    """One key per reply, stable across retries, restarts and re-ingests."""
    return f"ftreview-reply-{timestamp_ns}"


def openai_example(candidate: Candidate) -> dict[str, Any]:
    """OpenAI chat fine-tuning: earlier assistant turns `weight: 0`, the reply `weight: 1`."""
    messages: list[dict[str, Any]] = []
    for message in candidate.context:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.role == "assistant":
            entry["weight"] = 0
        messages.append(entry)
    messages.append({"role": "assistant", "content": candidate.content, "weight": 1})
    return {"messages": messages}


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


def endpoint_request(candidates: list[Candidate], model: str) -> dict[str, Any]:
    """The JSON body POSTed to `learn.finetune_url` (contract in the README)."""
    body: dict[str, Any] = {
        "examples": [
            {
                "idempotency_key": idempotency_key(c.timestamp_ns),
                "timestamp": format_ns(c.timestamp_ns),
                "conversation_id": c.conversation_id,
                "divergence": c.divergence,
                **openai_example(c),
            }
            for c in candidates
        ]
    }
    if model:
        body["model"] = model
    return body
