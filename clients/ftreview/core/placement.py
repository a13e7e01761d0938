"""Placing a reply's tokens back onto the reply's characters.

A token's text is cut from the reply by the tokenizer's offsets, but byte-level tokens of
one character (CJK, emoji, combining marks) each carry that whole character, so the token
texts joined are not the reply. `token_spans` puts each token on the characters it came
from; the review screen colours by it and the Review's grounding rule reads the
memory-driven words from it, so both see the same spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ScoredToken(Protocol):
    """A token's text and its per-token divergence (nats)."""

    @property
    def text(self) -> str: ...

    @property
    def divergence(self) -> float: ...


def _locate(text: str, content: str, cursor: int) -> tuple[int, int] | None:
    """Where a token's text sits in the reply, near `cursor` (where the last token ended)."""
    if not text:
        return None
    if content.startswith(text, cursor):
        return cursor, cursor + len(text)
    # A token of the same character(s) as the one before: its span overlaps the last one.
    for start in range(max(0, cursor - len(text)), cursor):
        if content.startswith(text, start):
            return start, start + len(text)
    # Text outside the reply (a template's newline) around the part that is in it.
    stripped = text.strip()
    if stripped and stripped != text:
        found = content.find(stripped, max(0, cursor - len(stripped)), cursor + len(text) + 1)
        if found >= 0:
            return found, found + len(stripped)
    return None


def _copies(text: str, content: str, cursor: int) -> int:
    count = 0
    while content.startswith(text, cursor + count * len(text)):
        count += 1
    return count


def token_spans(tokens: Sequence[ScoredToken], content: str) -> list[tuple[int, int, float]]:
    """Each token placed on the reply as (start, end, divergence); unplaceable ones left out.

    A run of k tokens with the same text in front of m copies of that text is spread evenly
    over the copies: the byte tokens of "你你" (six of "你") are three per character, while
    "ha" "ha" before "haha" is one each. Runs the reply does not continue overlap the token
    before (the last bytes of a character that an earlier token began).
    """
    spans: list[tuple[int, int, float]] = []
    cursor = 0
    index = 0
    while index < len(tokens):
        text = tokens[index].text
        run = 1
        while index + run < len(tokens) and tokens[index + run].text == text:
            run += 1
        copies = _copies(text, content, cursor) if text else 0
        if copies == 0:
            for token in tokens[index : index + run]:
                where = _locate(token.text, content, cursor)
                if where is not None:
                    spans.append((where[0], where[1], token.divergence))
                    cursor = max(cursor, where[1])
        else:
            for offset, token in enumerate(tokens[index : index + run]):
                slot = offset if run <= copies else offset * copies // run
                start = cursor + slot * len(text)
                spans.append((start, start + len(text), token.divergence))
            cursor += min(run, copies) * len(text)
        index += run
    return spans
