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
- besides those, every word of the reply that holds a digit and that the memories supplied
  (a word of a message the context with memories has and the one without has not) is a fact
  word. A number is one token per digit here, and the model's prior already favours some
  digits in place, so "9" in "9 July" can rise less than a name and fall outside the ranked
  words; an answer that says "8 July" must not count as recalling it. Measured on the fact
  set's tuning half (38 facts, bench/learning): the ranked words alone left the number the
  bench judges by out of 8 facts' fact words, and with this rule out of none;
- fact words are kept as the reply writes them ("10:00", "B12": what a person reads in a
  report); words next to each other with at most one mark between them are one fact word;
- words are compared the same way on both sides (`words`): NFKC, lower case, runs of letters
  and digits, and each CJK character a word of its own (Chinese has no spaces: a run of it
  is a clause, not a word); a number is one word however it is grouped or padded ("1,185"
  is "1185", "07" is "7"), so "07:25" and "7:25" say the same time;
- an answer recalls a fact when every word of every fact word is one of its words. Its
  words as they were read before numbers were compared as numbers ("07", "1", "185") count
  too, so a fact a trainer stored then still comes back when the answer says it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

# A token the memories made at least e times likelier than without them marks the fact.
KEY_NATS = 1.0
# ...and at least this share of the reply's peak.
OF_PEAK = 0.5
# A reply's fact is a handful of words; more would ask for the wording again.
MAX_WORDS = 4

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# A number grouped in thousands by commas ("1,185"; "3,5" is a German decimal), a CJK
# character, or a run of letters and digits.
_WORD = re.compile(rf"\d+(?:,\d{{3}}(?!\d))+|[{_CJK}]|[^\W_{_CJK}]+")
# Words as they were read before: runs of letters and digits, digits as written.
_AS_WRITTEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def words(text: str) -> list[str]:
    """The words of `text` as recall compares them."""
    found = (w.replace(",", "") for w in _WORD.findall(unicodedata.normalize("NFKC", text)))
    return [w.lstrip("0") or "0" if w.isdigit() else w.lower() for w in found]


@dataclass(frozen=True)
class TokenSpan:
    """A reply token's characters in the reply (start, end) and its per-token divergence."""

    start: int
    end: int
    divergence: float


def supplied(with_memories: Iterable[str], without: Iterable[str]) -> frozenset[str]:
    """The words the memories bring: those of the texts (messages) with memories that are not
    among the texts without them. A word an earlier turn also said still counts: asked cold,
    that turn is not there."""
    kept = set(without)
    return frozenset(w for text in with_memories if text not in kept for w in words(text))


def fact_words(
    reply: str, tokens: Sequence[TokenSpan], brought: Collection[str] = ()
) -> tuple[str, ...]:
    """The words of `reply` its memories supplied (see the module's invariants); `brought`
    is what `supplied` returns for the reply's contexts."""
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
    numbers = [
        i
        for i, (start, end) in enumerate(spans)
        if any(c.isdigit() for c in reply[start:end])
        and all(w in brought for w in words(reply[start:end]))
    ]
    # Words next to each other with at most one mark and no space between them are read as
    # one ("10:00", "B-12", "周三"): the fact reads as the reply wrote it.
    runs: list[list[int]] = []
    for i in sorted({*chosen, *numbers}):
        if runs and runs[-1][-1] == i - 1 and _joined(reply[spans[i - 1][1] : spans[i][0]]):
            runs[-1].append(i)
        else:
            runs.append([i])
    found: list[str] = []
    compared: set[tuple[str, ...]] = set()
    for run in runs:
        text = reply[spans[run[0]][0] : spans[run[-1]][1]]
        if tuple(words(text)) not in compared:
            compared.add(tuple(words(text)))
            found.append(text)
    return tuple(found)


def _joined(gap: str) -> bool:
    return len(gap) <= 1 and not gap.isspace()


def recalls(answer: str, fact: Sequence[str]) -> bool:
    """Whether `answer` says every fact word (an empty fact is recalled by any answer)."""
    said = set(words(answer))
    said.update(w.lower() for w in _AS_WRITTEN.findall(unicodedata.normalize("NFKC", answer)))
    return all(w in said for word in fact for w in words(word))
