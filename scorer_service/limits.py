"""How large a conversation the Scorer takes; a larger one is refused at the call, before any
tokenization, with INVALID_ARGUMENT saying which limit and by how much.

Two megabytes of text is about half a million tokens: more than any engine's context, and
already minutes of tokenizing and window planning; the message count bounds the per-message
bookkeeping. The values live here, alone, so that a shared defaults module can take them.
"""

from __future__ import annotations

from collections.abc import Sequence

from scorer_service.conversation import Message
from scorer_service.errors import InvalidConversation

MAX_CONTENT_CHARS = 2_000_000
MAX_MESSAGES = 20_000


def check_size(messages: Sequence[Message]) -> None:
    if len(messages) > MAX_MESSAGES:
        raise InvalidConversation(
            "nodes",
            f"{len(messages)} messages is over the Scorer's limit of {MAX_MESSAGES}; "
            "split the conversation",
        )
    chars = sum(len(m.content) for m in messages)
    if chars > MAX_CONTENT_CHARS:
        raise InvalidConversation(
            "nodes",
            f"{chars} characters of content is over the Scorer's limit of "
            f"{MAX_CONTENT_CHARS}; split the conversation",
        )
