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
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ftreview.core.placement import ScoredToken, token_spans

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


# -- units ------------------------------------------------------------------------------


def fold(word: str) -> str:
    """Case-folded, accents and compatibility forms dropped (ß → ss, é → e, ２ → 2)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_MONTHS = {
    1: "january jan januar jänner jaenner",
    2: "february feb februar",
    3: "march mar märz maerz marz",
    4: "april apr",
    5: "may mai",
    6: "june jun juni",
    7: "july jul juli",
    8: "august aug",
    9: "september sep sept",
    10: "october oct oktober okt",
    11: "november nov",
    12: "december dec dezember dez",
}
MONTH = {fold(name): number for number, names in _MONTHS.items() for name in names.split()}
_WEEKDAYS = {
    1: "monday mon montag",
    2: "tuesday tue tues dienstag",
    3: "wednesday wed mittwoch",
    4: "thursday thu thurs donnerstag",
    5: "friday fri freitag",
    6: "saturday sat samstag sonnabend",
    7: "sunday sun sonntag",
}
WEEKDAY = {fold(name): number for number, names in _WEEKDAYS.items() for name in names.split()}
NUMBER_WORDS = {
    fold(name): value
    for value, names in enumerate(
        [
            "zero null",
            "one eins",
            "two zwei",
            "three drei",
            "four vier",
            "five fünf",
            "six sechs",
            "seven sieben",
            "eight acht",
            "nine neun",
            "ten zehn",
            "eleven elf",
            "twelve zwölf",
        ]
    )
    for name in names.split()
}
STOP = set(
    """a an the and or but if of to in on at by for with from as is are was were be been am
    it its this that these those there here i you he she we they me him her us them my your
    his our their yours user user's users so not no yes do does did have has had will would
    can could should may might just also still then than about into over after before
    again what which who when where how why all any some one's s o clock oclock
    der die das den dem des ein eine einen einem einer eines und oder aber wenn von zu im in
    am an auf bei mit aus als ist sind war waren sein es du sie er wir ihr ihre ihren ihrem
    ihrer dein deine deinen deinem deiner mein meine meinen ich dich dir mich mir uns euch
    nutzer nutzers nutzerin benutzer benutzers nicht nein ja auch noch dann um für fur über
    nach vor wieder was wer wann wo wie warum alle hat haben hatte wird werden kann könnte
    sollte dass noch schon sehr""".split()
)
TITLES = {"dr", "mr", "mrs", "ms", "prof", "frau", "herr", "doktor", "doctor"}

_MONTH_RE = "|".join(
    sorted({n for names in _MONTHS.values() for n in names.split()}, key=len, reverse=True)
)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("date_iso", r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"),
        ("date_cjk", r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号號]"),
        ("time_cjk", r"(上午|早上|中午|下午|晚上)?(\d{1,2})[点點](?:(\d{1,2})分|(半))?"),
        (
            "time_colon",
            r"(?<!\d)(\d{1,2}):(\d{2})(?:\s*(a\.?m\.?|p\.?m\.?)(?![\w])|\s*uhr\b|h\b)?",
        ),
        ("date_dots", r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{2,4})?"),
        (
            "date_day_month",
            rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?({_MONTH_RE})\b(?:\s+(\d{{4}}))?",
        ),
        (
            "date_month_day",
            rf"\b({_MONTH_RE})\.?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?",
        ),
        (
            "time_word",
            r"(?<![\d.])(\d{1,2})(?:[.:](\d{2}))?\s*(a\.?m\.?|p\.?m\.?|uhr|o'?clock)(?![\w])",
        ),
        ("number", r"(?<![\d.,])(\d+(?:[.,]\d+)?)(?:st|nd|rd|th)?(?!\d)"),
        ("word", rf"[{_CJK}]|[^\W\d_{_CJK}]+(?:'s)?"),
    )
)


@dataclass(frozen=True)
class Unit:
    """One claim-sized piece of a text: its characters, kind and normalised value."""

    start: int
    end: int
    kind: str  # date, time, number, weekday, name, word
    value: str
    surface: str

    @property
    def typed(self) -> bool:
        return self.kind != "word"

    @property
    def stop(self) -> bool:
        return self.kind == "word" and (self.value in STOP or self.value in TITLES)


def _hour(hour: int, minute: int, marker: str) -> str:
    marker = marker.lower().replace(".", "")
    if marker in ("pm", "下午", "晚上") and hour < 12:
        hour += 12
    if marker == "am" and hour == 12:
        hour = 0
    return f"{hour:02d}:{minute:02d}"


def _typed(kind: str, match: re.Match[str]) -> tuple[str, str] | None:
    g = match.groups()
    if kind == "date_iso":
        return "date", f"{int(g[1]):02d}-{int(g[2]):02d}"
    if kind == "date_cjk":
        return "date", f"{int(g[1]):02d}-{int(g[2]):02d}"
    if kind == "date_dots":
        day, month = int(g[0]), int(g[1])
        return ("date", f"{month:02d}-{day:02d}") if 1 <= month <= 12 and day <= 31 else None
    if kind == "date_day_month":
        return "date", f"{MONTH[fold(g[1])]:02d}-{int(g[0]):02d}"
    if kind == "date_month_day":
        return "date", f"{MONTH[fold(g[0])]:02d}-{int(g[1]):02d}"
    if kind == "time_cjk":
        minute = 30 if g[3] else int(g[2] or 0)
        return "time", _hour(int(g[1]), minute, g[0] or "")
    if kind == "time_colon":
        return "time", _hour(int(g[0]), int(g[1]), g[2] or "")
    if kind == "time_word":
        return "time", _hour(int(g[0]), int(g[1] or 0), g[2])
    if kind == "number":
        return "number", str(float(g[0].replace(",", ".")))
    return None


def units(text: str) -> list[Unit]:
    """The units of `text`, in order; typed ones (dates, times, numbers) are matched first
    and no unit overlaps another."""
    taken = [False] * len(text)
    found: list[Unit] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if start == end or any(taken[start:end]):
                continue
            surface = match.group(0)
            if kind == "word":
                value = fold(surface.removesuffix("'s"))
                if value in NUMBER_WORDS:
                    unit = Unit(start, end, "number", str(float(NUMBER_WORDS[value])), surface)
                elif value in WEEKDAY or value.removesuffix("s") in WEEKDAY:
                    day = WEEKDAY.get(value) or WEEKDAY[value.removesuffix("s")]
                    unit = Unit(start, end, "weekday", str(day), surface)
                elif (
                    surface[0].isupper()
                    and value not in STOP
                    and value not in TITLES
                    and value not in MONTH
                ):
                    unit = Unit(start, end, "name", value, surface)
                else:
                    unit = Unit(start, end, "word", value, surface)
            else:
                typed = _typed(kind, match)
                if typed is None:
                    continue
                unit = Unit(start, end, typed[0], typed[1], surface)
            found.append(unit)
            taken[start:end] = [True] * (end - start)
    return sorted(found, key=lambda u: u.start)


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


_CJK_START = re.compile(rf"[{_CJK}]")


def _cjk(word: str) -> bool:
    return _CJK_START.match(word) is not None


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
