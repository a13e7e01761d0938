"""Bounds in tokens on what a request asks the trainer to learn, checked before it is stored.

Invariants:
- tokens are counted as the trainer trains and measures them: the chat template's
  generation prompt for the context (`measures.prompt_ids`), then the reply's own tokens,
  with the trainer's tokenizer (loaded once, on its own: a refusal never loads the model);
- a reply has at most `MAX_REPLY_TOKENS` tokens, and a context with its reply, plus the few
  tokens the guard generates past the reply, fits the base model's context, for every
  example (with and without memories) and every held-out reply;
- an example beyond a bound is not trained: the answer lists it in `rejected` with the
  field, the count and the limit (the README's contract: one reply too long does not stop
  the others); a held-out reply beyond a bound is left out of the forgetting check;
- a training row is at most `ROW_TOKENS` when it can be: its context loses its oldest turns
  (never its leading system messages, never its last message) until the row fits
  (`trimmed`). TRL cuts a longer row from the end, which cuts the reply, the only part
  trained, and then drops the row; a reply late in a long conversation was trained on none
  of its rows that kept the conversation. A row that cannot fit even so goes with its
  leading system messages and last message only, uncut (it fits the base model's context,
  above); the guard measures on the whole context.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract import Request
from .examples import Chat, Example

# Half a training row (`ROW_TOKENS`), so a reply at the bound still has room for its
# question and some of the conversation. It also bounds the guard's generation budget (the
# longest reply + 8).
MAX_REPLY_TOKENS = 1024
# The guard generates up to a reply's length plus this many tokens after the context.
GENERATION_MARGIN = 8
# A training row's tokens, context and reply, when its context can be trimmed to fit. Rows
# are padded to the longest in a batch: this bounds a step's cost as well.
ROW_TOKENS = 2048
# The tokens a chat template adds after a reply (end of turn, newline), counted generously.
TURN_END_TOKENS = 4


class TokenCounter:
    """Counts tokens with the base model's tokenizer, loaded on first use (thread-safe).
    The counting methods block: call them off the event loop."""

    def __init__(self, base_folder: Path) -> None:
        self.base_folder = base_folder
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._context_length: int | None = None

    def _load(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from .model import context_length, load_tokenizer

                self._context_length = context_length(self.base_folder)
                self._tokenizer = load_tokenizer(self.base_folder)
            return self._tokenizer

    @property
    def context_length(self) -> int | None:
        self._load()
        return self._context_length

    def prompt(self, context: Chat) -> int:
        from .measures import prompt_ids

        return len(prompt_ids(self._load(), context))

    def text(self, text: str) -> int:
        return len(self._load()(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class Overlong:
    """What a request holds beyond the bounds: example key -> why, and the positions of
    held-out replies to leave out."""

    examples: dict[str, str] = field(default_factory=dict)
    held_out: frozenset[int] = frozenset()


def overlong(request: Request, tokens: TokenCounter) -> Overlong:
    """Every example and held-out reply of `request` beyond the bounds (see the module)."""
    fields = list(request.reply_fields)
    if len(fields) != len(request.examples) + len(request.held_out):
        fields = [f"examples[{i}].messages[-1]" for i in range(len(request.examples))]
        fields += [f"held_out[{i}].messages[-1]" for i in range(len(request.held_out))]
    examples = {}
    for field_, example in zip(fields[: len(request.examples)], request.examples, strict=True):
        why = _beyond(field_, example.context, example.context_with_memories, example.reply, tokens)
        if why:
            examples[example.key] = why
    held = fields[len(request.examples) :]
    held_out = frozenset(
        i
        for i, (field_, h) in enumerate(zip(held, request.held_out, strict=True))
        if _beyond(field_, h.context, None, h.reply, tokens)
    )
    return Overlong(examples, held_out)


def _beyond(
    field_: str, context: Chat, with_memories: Chat | None, reply: str, tokens: TokenCounter
) -> str:
    """Why this reply cannot be trained whole ("" when it can): the field, count and limit."""
    reply_tokens = tokens.text(reply)
    if reply_tokens > MAX_REPLY_TOKENS:
        return f"{field_}.content: the reply is {reply_tokens} tokens, at most {MAX_REPLY_TOKENS}"
    limit = tokens.context_length
    if limit is None:
        return ""
    chat_field = field_.rsplit("[", 1)[0]
    for where, chat in ((chat_field, context), (_memories_field(chat_field), with_memories)):
        if chat is None:
            continue
        total = tokens.prompt(chat) + reply_tokens + GENERATION_MARGIN
        if total > limit:
            return (
                f"{where}: the context and its reply are {total - GENERATION_MARGIN} tokens "
                f"(+{GENERATION_MARGIN} the guard generates); the base model's context is "
                f"{limit} tokens"
            )
    return ""


def _memories_field(messages_field: str) -> str:
    return messages_field.removesuffix(".messages") + ".messages_with_memories"


def trimmed(tokenizer: Any, context: Chat, reply: str, budget: int = ROW_TOKENS) -> Chat:
    """`context` without its oldest turns, so that it and `reply` fit `budget` tokens (see
    the module's invariants); `context` itself when it fits."""
    from .measures import prompt_ids

    reply_tokens = len(tokenizer(reply, add_special_tokens=False)["input_ids"])
    room = budget - reply_tokens - TURN_END_TOKENS
    if len(prompt_ids(tokenizer, context)) <= room:
        return context
    lead = 0
    while lead < len(context) - 1 and context[lead]["role"] == "system":
        lead += 1
    head, turns = context[:lead], context[lead:]
    # Drop the oldest turns, then whatever is left before a user message (a conversation
    # goes on from a question), until it fits; the last message always stays.
    for start in range(1, len(turns)):
        if turns[start]["role"] != "user" and start < len(turns) - 1:
            continue
        shorter = head + turns[start:]
        if len(prompt_ids(tokenizer, shorter)) <= room:
            return shorter
    return head + turns[-1:] if len(turns) > 1 else context


def training_row(example: Example, tokenizer: Any) -> dict[str, Any]:
    """TRL's prompt–completion row for `example`, its context trimmed to fit (`trimmed`)."""
    return {
        "prompt": trimmed(tokenizer, example.context, example.reply),
        "completion": [{"role": "assistant", "content": example.reply}],
    }
