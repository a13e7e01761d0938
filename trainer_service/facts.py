"""The fact a reply carries: the words its memories put there, and whether an answer has them.

A reply says its fact in some wording ("Your cat is named Biscuit."); a model that learnt
the fact may answer in another ("Your cat is Biscuit."). What must come back is the part
the memories supplied. The base model already tells which part that is: per reply token,
log p(token | context with memories) − log p(token | context without) is the same per-token
divergence the Scorer reports, and the tokens the memories made far likelier are the fact.

Invariants:
- a reply's fact words are the words holding a token whose per-token divergence on the base
  model is at least `KEY_NATS` (the memories made it at least e times likelier) and at least
  `OF_PEAK` of the reply's largest (a wording the memory nudged, "named" beside "Biscuit",
  is not the fact), at most `MAX_WORDS` of them, largest first; when no token reaches
  `KEY_NATS`, the one word holding the largest positive divergence; when none is positive,
  no fact words (nothing to recall);
- words are compared the same way on both sides (`words`): NFKC, lower case, runs of letters
  and digits, and each CJK character a word of its own (Chinese has no spaces: a run of it
  is a clause, not a word);
- an answer recalls a fact when every fact word is one of its words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# A token the memories made at least e times likelier than without them marks the fact.
KEY_NATS = 1.0
# ...and at least this share of the reply's peak.
OF_PEAK = 0.5
# A reply's fact is a handful of words; more would ask for the wording again.
MAX_WORDS = 4

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def words(text: str) -> list[str]:
    """The words of `text` as recall compares them."""
    return [w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", text))]


@dataclass(frozen=True)
class TokenSpan:
    """A reply token's characters in the reply (start, end) and its per-token divergence."""

    start: int
    end: int
    divergence: float


def fact_words(reply: str, tokens: Sequence[TokenSpan]) -> tuple[str, ...]:
    """The words of `reply` its memories supplied (see the module's invariants)."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(reply)]
    strongest: dict[int, float] = {}
    for token in tokens:
        for i, (start, end) in enumerate(spans):
            if token.start < end and start < token.end:
                strongest[i] = max(strongest.get(i, float("-inf")), token.divergence)
    ranked = sorted(strongest.items(), key=lambda item: -item[1])
    floor = max(KEY_NATS, OF_PEAK * ranked[0][1]) if ranked else KEY_NATS
    chosen = [i for i, value in ranked if value >= floor][:MAX_WORDS]
    if not chosen and ranked and ranked[0][1] > 0:
        chosen = [ranked[0][0]]
    seen: list[str] = []
    for i in sorted(chosen):
        for word in words(reply[spans[i][0] : spans[i][1]]):
            if word not in seen:
                seen.append(word)
    return tuple(seen)


def recalls(answer: str, fact: Sequence[str]) -> bool:
    """Whether `answer` says every fact word (an empty fact is recalled by any answer)."""
    said = set(words(answer))
    return all(word in said for word in fact)
