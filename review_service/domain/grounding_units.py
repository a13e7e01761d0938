"""The words of a text as the grounding rule compares them (`grounding.py`): each word
folded (case, accents, compatibility forms), and a date, time or number read as one typed
value however it is written ("14 May", "May 14th", "14.05.", "5月14日"; "10 am", "10:00";
"drei" = 3), with its character span.

Plain Python; no model, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


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
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
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
        ("word", rf"[{CJK}]|[^\W\d_{CJK}]+(?:'s)?"),
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
