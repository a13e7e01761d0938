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
     "settings"?: {"target_divergence"?, "max_drift"?, "min_retention"?, "learning_rate"?,
                   "max_epochs"?, "max_lost_facts"?}}

- `messages`: the context without memories, then the reply: exactly one assistant message
  with `weight: 1` (messages after it are ignored).
- `messages_with_memories` (addition): the same context with the memory messages in, before
  the reply (the reply itself may be left out); the guard measures divergence with it.
  Without it the guard estimates divergence from `divergence`, so one of the two is needed.
- `held_out` (addition): generic replies whose log-likelihood without memories must not
  fall (the guard's generic figure); kept for later jobs too.
- `settings` (addition): per-request overrides of the guard and the optimiser, each within
  `SETTING_BOUNDS`.

Sizes are bounded here too (`MAX_EXAMPLES`, `MAX_HELD_OUT`, `MAX_KEY_CHARS`, and per chat
the core's `MAX_MESSAGES` and `MAX_CONTENT_CHARS`), so that no request makes the trainer
tokenize or store without end; the bounds in tokens, which need the tokenizer, are in
`lengths.py`, and those on the body and its JSON in `body.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ftreview.core.defaults import MAX_CONTENT_CHARS, MAX_MESSAGES

from .examples import Chat, Example, HeldOut

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
SETTING_TYPES: dict[str, type] = {
    "target_divergence": float,
    "max_drift": float,
    "min_retention": float,
    "learning_rate": float,
    "max_epochs": int,
    "max_lost_facts": int,
}
# (lowest, highest, whether the lowest itself is allowed) per setting. Divergence and drift
# are nats per token: 10 is far above anything measured (replies diverge by 0.1-3). A
# retention is a share. A learning rate above 1 only diverges. The guard stops a job 4
# epochs after it stopped improving, so 1,000 epochs is a ceiling, not a plan. Lost facts
# are counted among the checked keys (at most 64), so 1,000 is "any".
SETTING_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "target_divergence": (0.0, 10.0, False),
    "max_drift": (0.0, 10.0, True),
    "min_retention": (0.0, 1.0, True),
    "learning_rate": (0.0, 1.0, False),
    "max_epochs": (1, 1000, True),
    "max_lost_facts": (0, 1000, True),
}
# The Review sends `finetune_batch_size` examples at a time (32 by default) and at most 16
# held-out replies; these leave room above both and bound a job's measuring time.
MAX_EXAMPLES = 256
MAX_HELD_OUT = 64
# The Review's keys are about 35 characters (`ftreview-reply-<nanoseconds>`).
MAX_KEY_CHARS = 256
MAX_NAME_CHARS = 4096


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
    # Where each example's reply, then each held-out reply, is in the body (e.g.
    # "examples[2].messages[5]"), for errors found after parsing (`lengths.py`).
    reply_fields: tuple[str, ...] = ()


def _chat(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ContractError(where, "expected a non-empty list of messages")
    if len(value) > MAX_MESSAGES:
        raise ContractError(where, f"{len(value)} messages, at most {MAX_MESSAGES}")
    chars = 0
    for i, message in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(message, dict):
            raise ContractError(at, f"expected an object, got {type(message).__name__}")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ContractError(f"{at}.role", f"expected one of {sorted(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise ContractError(f"{at}.content", "expected a string")
        chars += len(message["content"])
        if chars > MAX_CONTENT_CHARS:
            raise ContractError(where, f"more than {MAX_CONTENT_CHARS} characters of content")
        weight = message.get("weight", 0)
        if weight not in (0, 1) or isinstance(weight, bool):
            raise ContractError(f"{at}.weight", "expected 0 or 1")
    return value


def _finite(value: Any) -> bool:
    """A JSON number that is a finite float (a bool, or an integer beyond floats, is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _plain(messages: list[dict[str, Any]]) -> Chat:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _split(messages: list[dict[str, Any]], where: str) -> tuple[Chat, str, int]:
    """(context, reply, the reply's index) of a message list whose target is its one
    weight-1 message."""
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
    return _plain(messages[:at]), messages[at]["content"], at


def _example(value: Any, where: str) -> tuple[Example, str]:
    """The example at `where`, and where its reply is."""
    if not isinstance(value, dict):
        raise ContractError(where, f"expected an object, got {type(value).__name__}")
    key = value.get("idempotency_key")
    if not isinstance(key, str) or not key.strip():
        raise ContractError(f"{where}.idempotency_key", "expected a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise ContractError(
            f"{where}.idempotency_key", f"{len(key)} characters, at most {MAX_KEY_CHARS}"
        )
    field = f"{where}.messages"
    context, reply, at = _split(_chat(value.get("messages"), field), field)
    with_memories: Chat | None = None
    if value.get("messages_with_memories") is not None:
        memories_field = f"{where}.messages_with_memories"
        full = _plain(_chat(value["messages_with_memories"], memories_field))
        if full[-1]["role"] == "assistant" and full[-1]["content"] == reply:
            full = full[:-1]
        if not full:
            raise ContractError(memories_field, "no context before the reply")
        with_memories = full
    divergence = value.get("divergence")
    if divergence is not None and not _finite(divergence):
        raise ContractError(f"{where}.divergence", "expected a finite number")
    if divergence is None and with_memories is None:
        raise ContractError(where, "needs `divergence` or `messages_with_memories`")
    conversation = value.get("conversation_id", "")
    if conversation is None:
        conversation = ""
    if not isinstance(conversation, str):
        raise ContractError(f"{where}.conversation_id", "expected a string")
    if len(conversation) > MAX_NAME_CHARS:
        raise ContractError(
            f"{where}.conversation_id", f"{len(conversation)} characters, at most {MAX_NAME_CHARS}"
        )
    example = Example(
        key=key,
        context=context,
        reply=reply,
        context_with_memories=with_memories,
        divergence=None if divergence is None else float(divergence),
        conversation_id=conversation,
    )
    return example, f"{field}[{at}]"


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
        if not _finite(raw):
            raise ContractError(f"settings.{name}", "expected a finite number")
        low, high, low_allowed = SETTING_BOUNDS[name]
        if raw < low or (raw == low and not low_allowed):
            above = "at least" if low_allowed else "above"
            raise ContractError(f"settings.{name}", f"must be {above} {low:g}, got {float(raw):g}")
        if raw > high:
            raise ContractError(f"settings.{name}", f"must be at most {high:g}, got {float(raw):g}")
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
    if len(model) > MAX_NAME_CHARS:
        raise ContractError("model", f"{len(model)} characters, at most {MAX_NAME_CHARS}")
    raw = body.get("examples")
    if raw is None:
        raise ContractError("examples", "missing")
    if not isinstance(raw, list):
        raise ContractError("examples", "expected a list")
    if len(raw) > MAX_EXAMPLES:
        raise ContractError("examples", f"{len(raw)} examples, at most {MAX_EXAMPLES} a request")
    parsed = [_example(item, f"examples[{i}]") for i, item in enumerate(raw)]
    examples = [example for example, _ in parsed]
    fields = [field for _, field in parsed]
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
    if len(held_raw) > MAX_HELD_OUT:
        raise ContractError("held_out", f"{len(held_raw)} replies, at most {MAX_HELD_OUT}")
    held: list[HeldOut] = []
    for i, item in enumerate(held_raw):
        where = f"held_out[{i}]"
        if not isinstance(item, dict):
            raise ContractError(where, "expected an object")
        field = f"{where}.messages"
        context, reply, at = _split(_chat(item.get("messages"), field), field)
        held.append(HeldOut(context, reply))
        fields.append(f"{field}[{at}]")
    settings = _settings(body.get("settings"))
    return Request(model, examples, held, settings, tuple(fields))


# A retraction names keys the trainer accepted; as many as a request may send, and a reason
# of a line or two (the Review writes "superseded by <key>").
MAX_RETRACT = MAX_EXAMPLES
MAX_REASON_CHARS = 4096


def parse_retract(body: Any) -> list[tuple[str, str]]:
    """`{"retract": [{"idempotency_key": str, "reason": str}]}` -> [(key, reason)]; one
    key at most once."""
    if not isinstance(body, dict):
        raise ContractError("", f"the body must be a JSON object, got {type(body).__name__}")
    raw = body.get("retract")
    if raw is None:
        raise ContractError("retract", "missing")
    if not isinstance(raw, list) or not raw:
        raise ContractError("retract", "expected a non-empty list")
    if len(raw) > MAX_RETRACT:
        raise ContractError("retract", f"{len(raw)} keys, at most {MAX_RETRACT} a request")
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        where = f"retract[{i}]"
        if not isinstance(item, dict):
            raise ContractError(where, f"expected an object, got {type(item).__name__}")
        key = item.get("idempotency_key")
        if not isinstance(key, str) or not key.strip():
            raise ContractError(f"{where}.idempotency_key", "expected a non-empty string")
        if len(key) > MAX_KEY_CHARS:
            raise ContractError(
                f"{where}.idempotency_key", f"{len(key)} characters, at most {MAX_KEY_CHARS}"
            )
        if key in seen:
            raise ContractError(f"{where}.idempotency_key", f"{key!r} is also retract[{seen[key]}]")
        seen[key] = i
        reason = item.get("reason")
        if not isinstance(reason, str):
            raise ContractError(f"{where}.reason", "expected a string")
        if len(reason) > MAX_REASON_CHARS:
            raise ContractError(
                f"{where}.reason", f"{len(reason)} characters, at most {MAX_REASON_CHARS}"
            )
        out.append((key, reason))
    return out
