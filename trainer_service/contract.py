"""The README's fine-tuning endpoint contract, checked: a request body to examples.

Invariant: anything that reaches the ledger is well formed; anything else is refused whole,
before a key is stored, with `ContractError(where, what)` naming the field at fault (e.g.
`examples[2].messages: no message with weight 1`), which the HTTP layer answers with 400.

The request (README "Fine-tuning endpoint contract"), with the trainer's optional additions:

    {"model"?: str,
     "examples": [{"idempotency_key": str, "timestamp"?: str, "conversation_id"?: str,
                   "divergence"?: number,
                   "messages": [{"role", "content", "weight"?: 0|1}, ...],   # no memories
                   "messages_with_memories"?: [{"role", "content"}, ...]}],  # addition
     "held_out"?: [{"messages": [..., {"role": "assistant", "content", "weight": 1}]}],  # addition
     "settings"?: {"target_divergence"?, "max_drift"?, "learning_rate"?, "max_epochs"?}}

- `messages`: the context without memories, then the reply: exactly one assistant message
  with `weight: 1` (messages after it are ignored).
- `messages_with_memories` (addition): the same context with the memory messages in, before
  the reply (the reply itself may be left out); the guard measures divergence with it.
  Without it the guard estimates divergence from `divergence`, so one of the two is needed.
- `held_out` (addition): generic replies whose log-likelihood without memories must not
  fall (the guard's generic figure); kept for later jobs too.
- `settings` (addition): per-request overrides of the guard and the optimiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .examples import Chat, Example, HeldOut

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
SETTING_TYPES: dict[str, type] = {
    "target_divergence": float,
    "max_drift": float,
    "min_retention": float,
    "learning_rate": float,
    "max_epochs": int,
}


class ContractError(ValueError):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}" if where else what)
        self.where = where
        self.what = what


@dataclass(frozen=True)
class Request:
    model: str
    examples: list[Example]
    held_out: list[HeldOut]
    settings: dict[str, float | int]


def _chat(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ContractError(where, "expected a non-empty list of messages")
    for i, message in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(message, dict):
            raise ContractError(at, f"expected an object, got {type(message).__name__}")
        if message.get("role") not in ROLES:
            raise ContractError(f"{at}.role", f"expected one of {sorted(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise ContractError(f"{at}.content", "expected a string")
        weight = message.get("weight", 0)
        if weight not in (0, 1) or isinstance(weight, bool):
            raise ContractError(f"{at}.weight", "expected 0 or 1")
    return value


def _plain(messages: list[dict[str, Any]]) -> Chat:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _split(messages: list[dict[str, Any]], where: str) -> tuple[Chat, str]:
    """(context, reply) of a message list whose target is its one weight-1 message."""
    targets = [i for i, m in enumerate(messages) if m.get("weight", 0) == 1]
    if not targets:
        raise ContractError(where, "no message with weight 1")
    if len(targets) > 1:
        raise ContractError(where, f"{len(targets)} messages with weight 1, expected one")
    at = targets[0]
    if messages[at]["role"] != "assistant":
        raise ContractError(f"{where}[{at}]", "the message with weight 1 must be an assistant's")
    if not messages[at]["content"].strip():
        raise ContractError(f"{where}[{at}].content", "the reply is empty")
    if at == 0:
        raise ContractError(where, "the reply has no context before it")
    return _plain(messages[:at]), messages[at]["content"]


def _example(value: Any, where: str) -> Example:
    if not isinstance(value, dict):
        raise ContractError(where, f"expected an object, got {type(value).__name__}")
    key = value.get("idempotency_key")
    if not isinstance(key, str) or not key.strip():
        raise ContractError(f"{where}.idempotency_key", "expected a non-empty string")
    context, reply = _split(_chat(value.get("messages"), f"{where}.messages"), f"{where}.messages")
    with_memories: Chat | None = None
    if value.get("messages_with_memories") is not None:
        field = f"{where}.messages_with_memories"
        full = _plain(_chat(value["messages_with_memories"], field))
        if full[-1]["role"] == "assistant" and full[-1]["content"] == reply:
            full = full[:-1]
        if not full:
            raise ContractError(field, "no context before the reply")
        with_memories = full
    divergence = value.get("divergence")
    if divergence is not None and (
        isinstance(divergence, bool)
        or not isinstance(divergence, int | float)
        or not math.isfinite(divergence)
    ):
        raise ContractError(f"{where}.divergence", "expected a finite number")
    if divergence is None and with_memories is None:
        raise ContractError(where, "needs `divergence` or `messages_with_memories`")
    conversation = value.get("conversation_id", "")
    if not isinstance(conversation, str):
        raise ContractError(f"{where}.conversation_id", "expected a string")
    return Example(
        key=key,
        context=context,
        reply=reply,
        context_with_memories=with_memories,
        divergence=None if divergence is None else float(divergence),
        conversation_id=conversation,
    )


def _settings(value: Any) -> dict[str, float | int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError("settings", "expected an object")
    out: dict[str, float | int] = {}
    for name, raw in value.items():
        kind = SETTING_TYPES.get(name)
        if kind is None:
            raise ContractError(f"settings.{name}", f"unknown; known: {sorted(SETTING_TYPES)}")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ContractError(f"settings.{name}", "expected a finite number")
        if raw <= 0 and name != "max_drift":
            raise ContractError(f"settings.{name}", "must be above 0")
        if kind is int and raw != int(raw):
            raise ContractError(f"settings.{name}", "expected a whole number")
        out[name] = kind(raw)
    return out


def parse_request(body: Any) -> Request:
    if not isinstance(body, dict):
        raise ContractError("", f"the body must be a JSON object, got {type(body).__name__}")
    model = body.get("model", "")
    if model is None:
        model = ""
    if not isinstance(model, str):
        raise ContractError("model", "expected a string")
    raw = body.get("examples")
    if raw is None:
        raise ContractError("examples", "missing")
    if not isinstance(raw, list):
        raise ContractError("examples", "expected a list")
    examples = [_example(item, f"examples[{i}]") for i, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for i, example in enumerate(examples):
        if example.key in seen:
            raise ContractError(
                f"examples[{i}].idempotency_key",
                f"{example.key!r} is also examples[{seen[example.key]}]",
            )
        seen[example.key] = i
    held_raw = body.get("held_out") or []
    if not isinstance(held_raw, list):
        raise ContractError("held_out", "expected a list")
    held: list[HeldOut] = []
    for i, item in enumerate(held_raw):
        where = f"held_out[{i}]"
        if not isinstance(item, dict):
            raise ContractError(where, "expected an object")
        context, reply = _split(
            _chat(item.get("messages"), f"{where}.messages"), f"{where}.messages"
        )
        held.append(HeldOut(context, reply))
    return Request(model, examples, held, _settings(body.get("settings")))
