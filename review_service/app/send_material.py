"""What a send tells the trainer beyond the examples (`domain.examples.endpoint_request`): each
reply's prompt with its memories, and generic replies the training must not make less
likely (the forgetting guard's held-out set, docs/design.md §9).

Invariants:
- read from one moment: the stored conversations, the kept scores and the view are read
  between two commits (`Writer.read`), so a reply sent or trained meanwhile is not held out;
- a held-out reply is never one being sent nor one in the ledger, and carries its context
  without memories (what the guard scores it on);
- missing material never stops a send: an unstored conversation only costs its examples
  `messages_with_memories` (the trainer then uses `divergence`).
"""

from __future__ import annotations

from collections.abc import Sequence

from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain import replies
from review_service.domain.examples import HELD_OUT_LIMIT, GenericReply
from review_service.domain.model import Candidate, ContextMessage, Conversation, Status
from review_service.domain.ports import ConversationCodec

Material = tuple[dict[int, tuple[ContextMessage, ...]], list[GenericReply]]


async def gather(
    writer: Writer, codec: ConversationCodec, sending: Sequence[Candidate]
) -> Material:
    """(reply timestamp -> its prompt with memories, generic replies to hold out)."""
    store = writer.store
    stamps = {c.timestamp_ns for c in sending}

    def fetch() -> tuple[list[tuple[str, int]], dict[str, bytes | None]]:
        generic = store.generic_replies(HELD_OUT_LIMIT + len(stamps))
        ids = {c.conversation_id for c in sending} | {cid for cid, _ in generic}
        return generic, {cid: store.conversation_body(cid) for cid in sorted(ids)}

    def combine(
        found: tuple[list[tuple[str, int]], dict[str, bytes | None]], view: View
    ) -> Material:
        generic, bodies = found
        stored = {cid: codec.decode(body) for cid, body in bodies.items() if body is not None}
        prompts: dict[int, tuple[ContextMessage, ...]] = {}
        for c in sending:
            conversation = stored.get(c.conversation_id)
            if conversation is not None:
                prompt = replies.contexts_with_memories(conversation).get(c.timestamp_ns)
                if prompt:
                    prompts[c.timestamp_ns] = prompt
        held = _below_threshold(generic, stored, stamps, view)
        held += _rejected(view, stamps)
        return prompts, held[:HELD_OUT_LIMIT]

    return await writer.read(fetch, combine)


def _below_threshold(
    generic: list[tuple[str, int]], stored: dict[str, Conversation], sending: set[int], view: View
) -> list[GenericReply]:
    out: list[GenericReply] = []
    given = {cid: replies.given(conversation) for cid, conversation in stored.items()}
    for cid, ts in generic:
        if ts in sending or ts in view.ledger or cid not in stored or ts not in given[cid]:
            continue
        content = next(
            m.content for m in stored[cid].messages
            if replies.is_trackable(m) and m.timestamp_ns == ts
        )  # fmt: skip
        out.append(GenericReply(given[cid][ts].context, content))
    return out


def _rejected(view: View, sending: set[int]) -> list[GenericReply]:
    """Rejected candidates, most recently decided first."""
    rejected = [
        view.candidates[ts] for ts in view.rejected
        if ts in view.candidates and ts not in sending and ts not in view.ledger
    ]  # fmt: skip
    rejected.sort(key=lambda c: (c.decided_at_ns, c.timestamp_ns), reverse=True)
    return [GenericReply(c.context, c.content) for c in rejected if c.status == Status.REJECTED]
