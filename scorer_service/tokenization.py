"""`build_token_ids`: a conversation to prompt token ids plus the token range of every reply.

Cost invariant: the chat template is rendered a constant number of times per conversation
(never once per prefix, which is quadratic in the number of turns) and the text is tokenized
once, with offsets. Character spans of the reply contents are then mapped to token spans.

To find each content in the rendered text without being fooled by template markers (a reply
whose whole content is "user" would otherwise match the `<|im_start|>user` marker), the
template is also rendered with a unique placeholder per message: the text around the
placeholders is the template's own, so splicing the real contents in gives exact spans.
A template that rewrites content (trims it, strips reasoning) breaks that splice; then each
content is searched in order in the real rendering, and a reply that cannot be found is
reported instead of being scored on the wrong tokens.

A reply range covers its content tokens only, and must start and end on token boundaries;
a tokenizer that merges the first content token with the template's marker is reported for
that reply (`ReplyRange.problem`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scorer_service.conversation import Message, Variant, select
from scorer_service.errors import InvalidConversation


class ChatTokenizer(Protocol):
    """What is needed of a `transformers` tokenizer."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...

    def __call__(self, text: str, **kwargs: Any) -> Any: ...

    def decode(self, token_ids: Any, **kwargs: Any) -> str: ...


@dataclass(frozen=True)
class ReplyRange:
    """One assistant reply: [start, end) into the token ids (empty when `problem` is set)."""

    message: Message
    start: int
    end: int
    problem: str = ""


@dataclass(frozen=True)
class TokenizedConversation:
    variant: Variant
    text: str
    token_ids: list[int]
    # Character span of each token in `text`.
    offsets: list[tuple[int, int]]
    replies: list[ReplyRange]
    # The messages rendered (the variant's) and each one's content span in `text` (None: the
    # template changed it). Planning cuts the prompt along these without rendering again.
    messages: tuple[Message, ...] = ()
    content_spans: tuple[tuple[int, int] | None, ...] = ()

    def token_text(self, index: int) -> str:
        start, end = self.offsets[index]
        return self.text[start:end]

    def reply(self, path: str) -> ReplyRange | None:
        for reply in self.replies:
            if reply.message.node_path == path:
                return reply
        return None


_PLACEHOLDER = "\x00ftreview-message-{}\x00"


def render(tokenizer: ChatTokenizer, messages: Sequence[Message]) -> str:
    chat = [{"role": m.role, "content": m.content} for m in messages]
    try:
        text = tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception as exc:  # jinja raises its own TemplateError, plus whatever it calls
        raise InvalidConversation("", f"the chat template refused the conversation: {exc}") from exc
    if not isinstance(text, str):
        raise InvalidConversation("", "the chat template did not render to text")
    return text


def build_token_ids(
    messages: Sequence[Message], tokenizer: ChatTokenizer, variant: Variant
) -> TokenizedConversation:
    """Token ids of the variant's prompt and the content token range of every reply in it."""
    chosen = select(list(messages), variant)
    text, spans = _render_with_spans(tokenizer, chosen)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    token_ids = [int(t) for t in encoding["input_ids"]]
    offsets: list[tuple[int, int]] = [(int(a), int(b)) for a, b in encoding["offset_mapping"]]
    starts = [a for a, _ in offsets]
    ends = [b for _, b in offsets]
    replies: list[ReplyRange] = []
    for message, span in zip(chosen, spans, strict=True):
        if not message.is_reply:
            continue
        if span is None:
            replies.append(ReplyRange(message, 0, 0, "the chat template changed its text"))
        elif span[0] == span[1]:
            replies.append(ReplyRange(message, 0, 0, "the reply is empty"))
        else:
            replies.append(_token_range(message, span, starts, ends))
    return TokenizedConversation(
        variant, text, token_ids, offsets, replies, tuple(chosen), tuple(spans)
    )


def _render_with_spans(
    tokenizer: ChatTokenizer, messages: Sequence[Message]
) -> tuple[str, list[tuple[int, int] | None]]:
    text = render(tokenizer, messages)
    placeholders = [
        Message(m.role, _PLACEHOLDER.format(i), m.timestamp_ns, m.memory, m.node_path)
        for i, m in enumerate(messages)
    ]
    skeleton = render(tokenizer, placeholders)
    spliced: list[str] = []
    spans: list[tuple[int, int] | None] = []
    cursor = length = 0
    for index, message in enumerate(messages):
        marker = _PLACEHOLDER.format(index)
        at = skeleton.find(marker, cursor)
        if at < 0:
            break
        between = skeleton[cursor:at]
        spliced.append(between)
        length += len(between)
        spans.append((length, length + len(message.content)))
        spliced.append(message.content)
        length += len(message.content)
        cursor = at + len(marker)
    spliced.append(skeleton[cursor:])
    if len(spans) == len(messages) and "".join(spliced) == text:
        return text, spans
    return text, _search_in_order(text, messages)


def _search_in_order(text: str, messages: Sequence[Message]) -> list[tuple[int, int] | None]:
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for message in messages:
        at = text.find(message.content, cursor) if message.content else -1
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(message.content)))
        cursor = at + len(message.content)
    return spans


def _token_range(
    message: Message, span: tuple[int, int], starts: list[int], ends: list[int]
) -> ReplyRange:
    first = bisect.bisect_left(starts, span[0])
    last = bisect.bisect_left(ends, span[1])
    if first >= len(starts) or starts[first] != span[0]:
        return ReplyRange(message, 0, 0, "the reply does not start on a token boundary")
    if last >= len(ends) or ends[last] != span[1]:
        return ReplyRange(message, 0, 0, "the reply does not end on a token boundary")
    if first == 0:
        return ReplyRange(message, 0, 0, "the reply has no context before it")
    return ReplyRange(message, first, last + 1)
