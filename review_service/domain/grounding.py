"""Grounding: whether what a reply's memories drove it to say is what those memories say.

Divergence says how much a reply leaned on its memories, not whether it repeated them
faithfully: a reply that gives the wrong date leans on its memory as much as the right one.
This rule reads what the reply states where its memories drove it and looks it up in them.

What it rests on:
- the *memory-driven* part of a reply is read from its per-token divergence the way the
  trainer reads a reply's fact (design §11): units holding a token of at least `KEY_NATS`
  and at least `OF_PEAK` of the reply's strongest unit, at most `MAX_UNITS`, else the one
  unit with the largest positive divergence. A unit is a word, or a whole date, time or
  number however it is written ("14 May", "May 14th", "14.05.", "5月14日"; "10:00", "10 am",
  "10 Uhr", "10点"), so a date is one claim, not two words. Words the memories made at
  least `KEY_NATS` *less* likely are checked too when they are a date, time, number, weekday
  or name: a wrong value is exactly what a memory argues against. Function words ("the",
  "your", "ist") carry no claim and are skipped;
- units are compared normalised: case-folded, compatibility forms and accents dropped
  (NFKD), dates as (month, day) (the year is ignored, a memory rarely repeats it), times as
  minutes of the day, numbers as values ("drei" = 3), words equal or sharing a stem (one a
  prefix of the other, the shorter at least four letters: "Katze"/"Katzen"; or the first
  five letters alike: "allergic"/"allergy"); CJK characters one by one;
- a driven unit found in any memory is *supported*. One not found, of a typed kind (date,
  time, weekday, number, capitalised name), is a *contradiction* when the memory the reply
  leaned on most holds a value of the same kind that the reply does not state, in the same
  role: for dates, times and weekdays any such value (a memory of an appointment has one
  date); for numbers and names a value sharing a context word within three words ("with
  Dr. Weber" / "with Dr. Haller", "3 kids" / "2 kids"). Otherwise it goes *beyond* the
  memories, unless the user's own question said it;
- the verdict is the worst span: contradicts, else beyond, else supported (also when the
  reply holds nothing memory-driven to check).

It is a lexical rule, explainable span by span, and wrong where meaning needs more than
words: a paraphrase with no shared stem reads as beyond ("leaves" for "departs"), a value
computed from a memory (an age from a birth year) as a contradiction, "Mueller" for "Müller"
as another name; and a wrong value the memories neither drove nor argued against (under
`KEY_NATS` either way) is not looked at. Measured on labelled cases in
tests/unit/review/test_grounding.py.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ftreview.core.placement import ScoredToken, token_spans

from review_service.domain.grounding_units import CJK, STOP, Unit, units
from review_service.domain.model import Candidate, MemoryAttribution, TokenValue

KEY_NATS = 1.0
OF_PEAK = 0.5
# A unit may be several words (a date), and one sentence may state a weekday, date, time and
# name: a few more than the trainer's four words.
MAX_UNITS = 6
# A stem match: the shorter word, when a prefix of the other, has at least this many letters;
# otherwise the two share at least one more.
STEM = 4
# How many words on each side make a value's role.
WINDOW = 3


class Grounding(enum.Enum):
    SUPPORTED = "supported"
    BEYOND_MEMORIES = "beyond_memories"
    CONTRADICTS_MEMORY = "contradicts_memory"


@dataclass(frozen=True)
class GroundingSpan:
    """One memory-driven unit of the reply (characters `start`..`end`) and what the memories
    say about it: the memory that states it (supported) or states another value of its kind
    (contradicts: `value` is that memory's), or nothing (beyond)."""

    start: int
    end: int
    kind: Grounding
    node_path: str = ""
    value: str = ""


@dataclass(frozen=True)
class GroundingResult:
    verdict: Grounding
    spans: tuple[GroundingSpan, ...] = ()

    @property
    def flagged(self) -> tuple[GroundingSpan, ...]:
        return tuple(s for s in self.spans if s.kind is not Grounding.SUPPORTED)


# -- matching ---------------------------------------------------------------------------


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    if _cjk(a) or _cjk(b):
        return False
    short, long = sorted((a, b), key=len)
    if len(short) >= STEM and long.startswith(short):
        return True
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(short))
    return shared >= STEM + 1


CJK_START = re.compile(rf"[{CJK}]")


def _cjk(word: str) -> bool:
    return CJK_START.match(word) is not None


def _states(unit: Unit, other: Unit) -> bool:
    """Whether `other` (a unit of a memory) states what `unit` states."""
    if unit.kind in ("word", "name"):
        return other.kind in ("word", "name") and _same_word(unit.value, other.value)
    if unit.kind == "number" and other.kind == "date":
        return float(unit.value) == int(other.value[3:])
    return unit.kind == other.kind and unit.value == other.value


def _context(text_units: Sequence[Unit], index: int) -> dict[str, int]:
    """The content words around unit `index`, each with its offset (−3..3)."""
    out: dict[str, int] = {}
    for step in (-1, 1):
        position, seen = index + step, 0
        while 0 <= position < len(text_units) and seen < WINDOW:
            unit = text_units[position]
            if unit.kind in ("word", "name") and unit.value not in STOP:
                seen += 1
                out.setdefault(unit.value, step * seen)
            position += step
    return out


def _role_score(mine: dict[str, int], theirs: dict[str, int]) -> int:
    return sum(
        2 if theirs[word] == offset else 1 for word, offset in mine.items() if word in theirs
    )


@dataclass(frozen=True)
class _Memory:
    node_path: str
    units: tuple[Unit, ...]


def _counterpart(
    reply_units: Sequence[Unit], index: int, top: _Memory, stated: Sequence[Unit]
) -> Unit | None:
    """The top memory's value of the unit's kind, in its role, that the reply does not state."""
    unit = reply_units[index]
    kind = unit.kind
    mine = _context(reply_units, index)
    near = {"name": ("name", "word"), "number": ("number", "date")}.get(kind, (kind,))
    stated = [s for s in stated if s.kind in near]
    best: tuple[int, Unit] | None = None
    for position, other in enumerate(top.units):
        if other.kind != kind or any(_states(s, other) or _states(other, s) for s in stated):
            continue
        score = _role_score(mine, _context(top.units, position))
        if kind in ("number", "name") and score == 0:
            continue
        if best is None or score > best[0]:
            best = (score, other)
    return best[1] if best else None


def _driven(reply_units: Sequence[Unit], values: Sequence[float | None]) -> list[int]:
    """Indexes of the units the memories drove (or, typed, argued against)."""
    strongest: dict[int, float] = {}
    weakest: dict[int, float] = {}
    for index, unit in enumerate(reply_units):
        if unit.stop:
            continue
        covered = [v for v in values[unit.start : unit.end] if v is not None]
        if covered:
            strongest[index], weakest[index] = max(covered), min(covered)
    ranked = sorted(strongest.items(), key=lambda item: -item[1])
    floor = max(KEY_NATS, OF_PEAK * ranked[0][1]) if ranked else KEY_NATS
    chosen = [i for i, value in ranked if value >= floor][:MAX_UNITS]
    if not chosen and ranked and ranked[0][1] > 0:
        chosen = [ranked[0][0]]
    contested = [i for i, v in weakest.items() if v <= -KEY_NATS and reply_units[i].typed]
    return sorted(set(chosen) | set(contested))


def ground(
    reply: str,
    tokens: Sequence[ScoredToken],
    memories: Sequence[MemoryAttribution],
    question: str = "",
) -> GroundingResult:
    """The grounding of `reply` (see the module's rule). `memories` come most-leaned-on
    first; spans are in characters of `reply`."""
    values: list[float | None] = [None] * len(reply)
    for start, end, divergence in token_spans(tokens, reply):
        for i in range(start, min(end, len(reply))):
            current = values[i]
            values[i] = divergence if current is None else max(current, divergence)
    reply_units = units(reply)
    kept = [_Memory(m.node_path, tuple(units(m.content))) for m in memories]
    asked = units(question)
    spans: list[GroundingSpan] = []
    for index in _driven(reply_units, values):
        unit = reply_units[index]
        support = next(
            ((memory, other) for memory in kept for other in memory.units if _states(unit, other)),
            None,
        )
        if support is not None:
            memory, other = support
            spans.append(
                GroundingSpan(
                    unit.start, unit.end, Grounding.SUPPORTED, memory.node_path, other.surface
                )
            )
            continue
        counterpart = (
            _counterpart(reply_units, index, kept[0], reply_units) if unit.typed and kept else None
        )
        if counterpart is not None:
            spans.append(
                GroundingSpan(
                    unit.start,
                    unit.end,
                    Grounding.CONTRADICTS_MEMORY,
                    kept[0].node_path,
                    counterpart.surface,
                )
            )
        elif any(_states(unit, other) for other in asked):
            spans.append(GroundingSpan(unit.start, unit.end, Grounding.SUPPORTED))
        else:
            spans.append(GroundingSpan(unit.start, unit.end, Grounding.BEYOND_MEMORIES))
    kinds = {s.kind for s in spans}
    verdict = (
        Grounding.CONTRADICTS_MEMORY
        if Grounding.CONTRADICTS_MEMORY in kinds
        else Grounding.BEYOND_MEMORIES
        if Grounding.BEYOND_MEMORIES in kinds
        else Grounding.SUPPORTED
    )
    return GroundingResult(verdict, tuple(spans))


def candidate_grounding(candidate: Candidate) -> GroundingResult:
    """The grounding of a candidate's reply against its memories and its question.

    Every answer about a candidate carries it, so it is kept per value (what it is computed
    from is all immutable): a decision does not pay for it again."""
    return _cached(candidate.content, candidate.tokens, candidate.memories, candidate.question)


@functools.lru_cache(maxsize=4096)
def _cached(
    content: str,
    tokens: tuple[TokenValue, ...],
    memories: tuple[MemoryAttribution, ...],
    question: str,
) -> GroundingResult:
    return ground(content, tokens, memories, question)
