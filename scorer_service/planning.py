"""The prompts that score a conversation: which tokens go to the engine, for which replies.

Cost invariant: planning never renders the chat template once per reply nor once per step of
a search. Each variant is rendered and tokenized once (`build_token_ids`); a prompt that has
to leave out messages (a reply beyond the model's context, or a memory left out for its
attribution) is spliced from *blocks* of those tokens, one block per message, and the splice
is checked once per conversation against one real rendering of a cut conversation. A
template whose rendering is not a sequence of per-message blocks fails that check; its
replies beyond the context are then reported too long instead of scored on guessed tokens.

A block of message i runs from a cut point in the template text between message i-1 and i
to the same point before message i+1. The cut point is the longest prefix shared by every
such between-text (`<|im_end|>\\n<|im_start|>` in ChatML), so dropping messages i..j leaves
the text a rendering of the remaining messages would have, as long as the end-of-turn markup
does not depend on the role.

Long conversations are scored in windows: a reply that does not fit the context is scored
with the earliest droppable messages left out (the first message, memories and system
messages always stay), leaving it half the context so that the replies after it share the
window; each reply keeps at least half the context (or as much as fits, when it is itself
longer) and the number of prompts grows with the length of the conversation over half the
context, not with the number of replies.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from scorer_service.conversation import Message, Variant
from scorer_service.tokenization import (
    ChatTokenizer,
    ReplyRange,
    TokenizedConversation,
    build_token_ids,
    render,
)


class Cancelled(Exception):
    """The call that wanted this plan went away; the worker thread stops here."""


def check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled


@dataclass(frozen=True)
class PlannedReply:
    path: str
    # The reply in the full with-memories tokenization: its token ids and texts.
    original: ReplyRange
    range_with: tuple[int, int]
    range_without: tuple[int, int]
    context_tokens_cut: int = 0


@dataclass
class Job:
    """Prompts for some replies: one per variant, over the same kept messages."""

    # Indices into the conversation's messages of the messages these prompts hold.
    kept: list[int]
    prompt_with: list[int]
    prompt_without: list[int]
    replies: list[PlannedReply] = field(default_factory=list)


@dataclass(frozen=True)
class Blocks:
    """A variant's tokens as consecutive blocks, one per message (the last runs to the end)."""

    tokenized: TokenizedConversation
    bounds: list[int]  # bounds[i]: first token of message i's block; bounds[-1]: the end

    def length(self, index: int) -> int:
        return self.bounds[index + 1] - self.bounds[index]

    def splice(self, kept: Sequence[int], until: int | None = None) -> tuple[list[int], list[int]]:
        """The tokens of the kept blocks (increasing indices), the last cut at token `until`,
        and for each kept message how far its tokens moved to the left."""
        tokens: list[int] = []
        shifts: list[int] = []
        ids = self.tokenized.token_ids
        for position, index in enumerate(kept):
            start = self.bounds[index]
            end = self.bounds[index + 1]
            if until is not None and position == len(kept) - 1:
                end = until
            shifts.append(start - len(tokens))
            tokens.extend(ids[start:end])
        return tokens, shifts


def blocks_of(tokenized: TokenizedConversation) -> Blocks | None:
    """The block bounds, or None when a cut point is not a token boundary."""
    spans = tokenized.content_spans
    if not spans or any(span is None for span in spans):
        return None
    text = tokenized.text
    betweens = [
        text[spans[i - 1][1] : spans[i][0]]  # type: ignore[index]
        for i in range(1, len(spans))
    ]
    shared = _shared_prefix_length(betweens)
    token_starts = [start for start, _ in tokenized.offsets]
    bounds = [0]
    for i in range(1, len(spans)):
        cut = spans[i - 1][1] + shared  # type: ignore[index]
        at = bisect.bisect_left(token_starts, cut)
        if at >= len(token_starts) or token_starts[at] != cut or at < bounds[-1]:
            return None
        bounds.append(at)
    bounds.append(len(tokenized.token_ids))
    return Blocks(tokenized, bounds)


def _shared_prefix_length(texts: Sequence[str]) -> int:
    if not texts:
        return 0
    first = min(texts)
    last = max(texts)  # the lexicographic extremes differ first where any pair does
    length = 0
    while length < len(first) and first[length] == last[length]:
        length += 1
    return length


class Planner:
    """Jobs for the replies of one conversation, in a worker thread (never on the loop)."""

    def __init__(
        self,
        messages: Sequence[Message],
        tokenizer: ChatTokenizer,
        with_memories: TokenizedConversation,
        without: TokenizedConversation,
        context_length: int,
        cancel: threading.Event | None = None,
    ) -> None:
        self.messages = list(messages)
        self.tokenizer = tokenizer
        self.with_memories = with_memories
        self.without = without
        self.context_length = context_length
        self.cancel = cancel
        self._index = {m.node_path: i for i, m in enumerate(self.messages)}
        # Position of each non-memory message in the without-memories variant.
        self._without_index: dict[int, int] = {}
        for i, message in enumerate(self.messages):
            if not message.memory:
                self._without_index[i] = len(self._without_index)
        first_plain = next((i for i, m in enumerate(self.messages) if not m.memory), 0)
        self._fixed = {0, first_plain} | {
            i for i, m in enumerate(self.messages) if m.memory or m.role == "system"
        }
        self._blocks: tuple[Blocks, Blocks] | None = None
        self._blocks_checked = False

    def message_index(self, path: str) -> int:
        return self._index[path]

    def plan(
        self, pairs: Sequence[tuple[str, ReplyRange, ReplyRange]]
    ) -> tuple[list[Job], dict[str, str]]:
        """Jobs for the replies (path, range with, range without); the too-long ones by path
        with why."""
        fitting = [p for p in pairs if p[1].end <= self.context_length]
        jobs: list[Job] = []
        if fitting:
            last = max(self._index[path] for path, _, _ in fitting)
            jobs.append(
                Job(
                    list(range(last + 1)),
                    self.with_memories.token_ids[: max(p[1].end for p in fitting)],
                    self.without.token_ids[: max(p[2].end for p in fitting)],
                    [
                        PlannedReply(path, rw, (rw.start, rw.end), (ro.start, ro.end))
                        for path, rw, ro in fitting
                    ],
                )
            )
        long = [p for p in pairs if p[1].end > self.context_length]
        too_long: dict[str, str] = {}
        if not long:
            return jobs, too_long
        blocks = self.blocks()
        if blocks is None:
            for path, _, _ in long:
                too_long[path] = "the chat template cannot be cut into messages"
            return jobs, too_long
        jobs.extend(self._windows(long, blocks, too_long))
        return jobs, too_long

    def blocks(self) -> tuple[Blocks, Blocks] | None:
        """Both variants' blocks, checked once against a real rendering; None: not cuttable."""
        if not self._blocks_checked:
            self._blocks_checked = True
            with_blocks = blocks_of(self.with_memories)
            without_blocks = blocks_of(self.without)
            found = None
            if with_blocks is not None and without_blocks is not None:
                found = (with_blocks, without_blocks)
                if not self._splices_as_rendered(with_blocks, without_blocks):
                    found = None
            self._blocks = found
        return self._blocks

    def _splices_as_rendered(self, with_blocks: Blocks, without_blocks: Blocks) -> bool:
        # Every other droppable message and every other memory left out: each kind of join
        # a cut or an attribution makes shows up at least once.
        n = len(self.messages)
        droppable = [i for i in range(n) if i not in self._fixed]
        memories = [i for i, m in enumerate(self.messages) if m.memory and i != 0]
        left_out = set(droppable[1::2]) | set(memories[::2])
        kept = [i for i in range(n) if i not in left_out or i == n - 1]
        if len(kept) == n:
            return True
        for variant, blocks in (
            (Variant.WITH_MEMORIES, with_blocks),
            (Variant.WITHOUT_MEMORIES, without_blocks),
        ):
            check(self.cancel)
            indices = self._in_variant(kept, variant)
            if not indices:
                continue
            chosen = [blocks.tokenized.messages[i] for i in indices]
            text = render(self.tokenizer, chosen)
            encoded = self.tokenizer(text, add_special_tokens=False)
            if [int(t) for t in encoded["input_ids"]] != blocks.splice(indices)[0]:
                return False
        return True

    def _in_variant(self, kept: Sequence[int], variant: Variant) -> list[int]:
        if variant is Variant.WITH_MEMORIES:
            return list(kept)
        return [self._without_index[i] for i in kept if i in self._without_index]

    def _windows(
        self,
        long: Sequence[tuple[str, ReplyRange, ReplyRange]],
        blocks: tuple[Blocks, Blocks],
        too_long: dict[str, str],
    ) -> list[Job]:
        with_blocks, _ = blocks
        droppable = [i for i in range(len(self.messages)) if i not in self._fixed]
        dropped_tokens = [0]
        for i in droppable:
            dropped_tokens.append(dropped_tokens[-1] + with_blocks.length(i))
        limit = self.context_length
        jobs: list[Job] = []
        pending = sorted(long, key=lambda p: p[1].end)
        at = 0
        while at < len(pending):
            check(self.cancel)
            path, range_with, _ = pending[at]
            index = self._index[path]
            most = bisect.bisect_left(droppable, index)
            fits = bisect.bisect_left(dropped_tokens, range_with.end - limit, 0, most + 1)
            if fits > most:
                too_long[path] = "too long for the model's context even without earlier turns"
                at += 1
                continue
            roomy = bisect.bisect_left(dropped_tokens, range_with.end - limit // 2, 0, most + 1)
            drop = max(fits, min(roomy, most))
            window = [pending[at]]
            at += 1
            while at < len(pending) and pending[at][1].end - dropped_tokens[drop] <= limit:
                window.append(pending[at])
                at += 1
            jobs.append(self._job(window, set(droppable[:drop]), blocks))
        return jobs

    def _job(
        self,
        window: Sequence[tuple[str, ReplyRange, ReplyRange]],
        gone: set[int],
        blocks: tuple[Blocks, Blocks],
    ) -> Job:
        last = max(self._index[path] for path, _, _ in window)
        kept = [i for i in range(last + 1) if i not in gone]
        with_blocks, without_blocks = blocks
        end_with = max(rw.end for _, rw, _ in window)
        end_without = max(ro.end for _, _, ro in window)
        prompt_with, shifts_with = with_blocks.splice(kept, end_with)
        kept_without = self._in_variant(kept, Variant.WITHOUT_MEMORIES)
        prompt_without, shifts_without = without_blocks.splice(kept_without, end_without)
        shift_with = dict(zip(kept, shifts_with, strict=True))
        shift_without = dict(zip(kept_without, shifts_without, strict=True))
        replies = []
        for path, rw, ro in window:
            index = self._index[path]
            sw = shift_with[index]
            so = shift_without[self._without_index[index]]
            moved_with = (rw.start - sw, rw.end - sw)
            replies.append(PlannedReply(path, rw, moved_with, (ro.start - so, ro.end - so), sw))
        return Job(kept, prompt_with, prompt_without, replies)

    def leave_one_out(
        self, job: Job, memory: int, replies: Sequence[PlannedReply]
    ) -> tuple[list[int], list[tuple[int, int]]] | None:
        """The job's with-memories prompt without memory `memory` (a message index) and the
        ranges of `replies` in it; None when the reply's tokens would not be the same."""
        check(self.cancel)
        kept = [i for i in job.kept if i != memory]
        blocks = self.blocks()
        if blocks is not None:
            until = max(r.original.end for r in replies)
            tokens, shifts = blocks[0].splice(kept, until)
            shift = dict(zip(kept, shifts, strict=True))
            ranges = []
            for reply in replies:
                moved = shift[self._index[reply.path]]
                ranges.append((reply.original.start - moved, reply.original.end - moved))
            return tokens[: max(end for _, end in ranges)], ranges
        # No blocks (a template that is not cuttable): only the uncut job has candidates
        # here, and it is rendered once per memory.
        chosen = [self.messages[i] for i in kept]
        tokenized = build_token_ids(chosen, self.tokenizer, Variant.WITH_MEMORIES)
        ranges = []
        for reply in replies:
            found = tokenized.reply(reply.path)
            if found is None or found.problem:
                return None
            ids = self.with_memories.token_ids
            if (
                tokenized.token_ids[found.start : found.end]
                != ids[reply.original.start : reply.original.end]
            ):
                return None
            ranges.append((found.start, found.end))
        return tokenized.token_ids[: max(end for _, end in ranges)], ranges
