"""The alternate: what the model says in a reply's place when its memories are gone.

The prompt is the conversation before the reply, without memories, ending in the template's
generation prompt, so the model continues as the assistant; generation is greedy and
bounded, and stops at the end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scorer_service.conversation import Message
from scorer_service.errors import InvalidConversation, ReplyNotFound

DEFAULT_MAX_NEW_TOKENS = 128
DEFAULT_ANSWER_TOKENS = 64
MAX_NEW_TOKENS_LIMIT = 2048


def alternate_prompt(messages: Sequence[Message], timestamp_ns: int, tokenizer: Any) -> list[int]:
    if not timestamp_ns:
        raise InvalidConversation("reply_timestamp", "name the reply by its (set) timestamp")
    at = next(
        (i for i, m in enumerate(messages) if m.is_reply and m.timestamp_ns == timestamp_ns),
        None,
    )
    if at is None:
        raise ReplyNotFound(f"no assistant reply with timestamp {timestamp_ns} in the conversation")
    return _generation_prompt(messages[:at], tokenizer)


def answer_prompt(messages: Sequence[Message], tokenizer: Any) -> list[int]:
    """The conversation without memories, ending in the generation prompt: the model answers
    its last message cold (`ftreview ask`)."""
    if not any(not m.memory for m in messages):
        raise InvalidConversation("", "nothing to answer: the conversation has no message")
    return _generation_prompt(messages, tokenizer)


def _generation_prompt(messages: Sequence[Message], tokenizer: Any) -> list[int]:
    context = [{"role": m.role, "content": m.content} for m in messages if not m.memory]
    try:
        ids = tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
    except Exception as exc:
        raise InvalidConversation("", f"the chat template refused the conversation: {exc}") from exc
    encoded = tokenizer(ids, add_special_tokens=False)
    return [int(t) for t in encoded["input_ids"]]


def stop_token_ids(tokenizer: Any) -> list[int]:
    stops = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id >= 0:
            stops.add(token_id)
    return sorted(stops)
