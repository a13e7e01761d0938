"""Changes: whether a reply says something else about a subject than another reply does.

A trained fact that is no longer true does not go away by training its successor next to
it: the model then holds both ("18 March" and "20 March"). So a reply that would replace a
live trained fact says so (`superseded_fact`), two undecided replies that would train a
contradiction say so (`conflicts`), and a later conversation whose memories say otherwise
about a trained fact is found (`memory_changed`).

What a reply is about is read from the memory it leaned on most, not from its own words:
the memory is the fact's record ("User's dentist appointment is on 18 March at 14:30"); the
reply only restates part of it in its own words ("It's on March 18th at 2:30 pm"). The rule:

- a reply's *fact* is the clauses (split at ";", a sentence end, a line) of the first of its
  memories, most leaned on first, whose values the reply states, and only the values it
  states (training teaches what the reply says, not all its memory holds). A reply that
  states no value of any memory carries no fact and never changes anything;
- a clause is split into its *subject* and its *values*. Values are typed units
  (`grounding_units`: dates, times, weekdays, numbers, read the same however written) and
  names after the clause's first value or copula ("is", "heißt", "是"); a name before it
  names what the clause is about ("Dentist", "Mia", "Zahnarzttermin": German capitalises
  nouns). The subject is the other content words, without function words and without the
  words that only say a fact changed or how it is named ("now", "moved", "called",
  "verschoben", "叫");
- two facts are about the same subject when every word of the shorter subject is in the
  other (equal, or sharing a stem as grounding reads them), the two match with a Dice
  coefficient of at least `SAME_SUBJECT` ("dentist appointment" / "appointment with the
  dentist" = 1.0; "dentist" / "dentist appointment" = 0.67; "dentist appointment" /
  "hairdresser appointment" fails: "dentist" is not in the other; "cat" / "cat food
  brand" = 0.5), and they name the same person: the relation words
  ("sister", "son", "Tochter") are equal on both sides (a fact about the user's sister is
  not one about the user);
- they say another value when a kind of value present in both has, on each side, a value
  the other side lacks ("18 March" / "20 March"; "Biscuit" / "Mimi"; 2 / 3 kids). A value
  only one side has says nothing (a reply that leaves out the time does not move the
  appointment); equal values are no change;
- a preference has no typed value ("prefers oat milk"): it changes only where the clause
  says it holds one value ("prefers", "favourite", "Lieblings-", "最"), each side has a
  word the other lacks after the copula, and either the subject names more than the
  preference ("favourite colour") or the values share a word ("oat milk" / "almond milk"),
  so "prefers window seats" and "prefers oat milk" are two preferences, not one changed;
- a clause that says it adds a fact ("also", "another", "second", "auch", "也") changes
  nothing: a second cat is not a renamed one.

The change line gives the values of the kinds that changed, each side without the values
both state, the older side first ("18 March 14:30 -> 20 March"); dates, times and weekdays
are one kind here, so the time a moved appointment loses is shown.

It is lexical, like grounding, and wrong where meaning needs more than words (each of
these checked by hand, outside the labelled sets): "moved to Berlin" and "lives in Leeds"
share no subject word (missed); a paraphrase of the subject with no shared stem ("GP" /
"doctor") is another subject (missed); two appointments with the same subject words (a
dentist checkup and a dentist cleaning) read as one moved (a false change); "Mueller" for
"Müller" is another name (a false change); a Chinese name is not a typed value ("咪咪" /
"球球": missed). Measured on labelled cases in tests/unit/review/change_cases.json
(test_changes_cases.py): design set 39 cases, held-out set 22 cases run once, both
precision 1.00 and recall 1.00; both sets were written by the rule's author, so the
figures are optimistic for text written by others.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from review_service.domain.grounding import _same_word
from review_service.domain.grounding_units import STOP, TITLES, Unit, units
from review_service.domain.model import Candidate, MemoryAttribution, Status

SAME_SUBJECT = 0.6
# Replies (and memory clauses) whose facts are kept: more than a long list holds, so listing
# it again reads none twice (a cache smaller than the list would miss on every reply).
CACHED = 65536
UNDECIDED = (Status.PENDING, Status.APPROVED)

# Words that say a fact changed, or how it is named, not what it is about.
_LIGHT = set(
    """now new newly moved changed change rescheduled renamed postponed updated named called
    actually currently instead is are was were got gets be set jetzt neu neue neuer neuen
    neues verschoben verlegt geändert geandert heißt heisst heissen hiess hieß wurde wird
    ist sind nun 是 叫""".split()
)
# After one of these, a name or typed value is what the clause says of its subject.
_COPULA = set(
    """is are was were named called prefers prefer likes lives live works ist sind heißt
    heisst heissen wohnt arbeitet bevorzugt mag 是 叫 住""".split()
)
_ADDITIVE = set(
    """also another second too additionally both auch weitere weiteren weiterer zweite
    zweiten zweiter zweites noch 也 还 另""".split()
)
_SINGLE = {"prefers", "prefer", "preferred", "favourite", "favorite", "bevorzugt", "最"}
_RELATION = set(
    """sister brother mother father mom mum dad wife husband son daughter friend boss
    partner girlfriend boyfriend grandmother grandfather colleague neighbour neighbor
    schwester bruder mutter vater frau mann sohn tochter freund freundin chef partnerin
    oma opa kollege nachbar 妹 姐 哥 弟 妈 爸 儿 女 妻 夫 朋""".split()
)
_CJK_STOP = set("用户的在了和有我你他她它们这那个是叫现改")
_CLAUSE = re.compile(r"[;；。\n]|(?<=[a-zäöüß]{3})[.!?]\s+(?=\S)")
_WHEN = ("date", "time", "weekday")


@dataclass(frozen=True)
class Change:
    """What differs between a reply and another one (`other_ns`): old value first."""

    other_ns: int
    old: str
    new: str

    @property
    def line(self) -> str:
        return f"{self.old} -> {self.new}"


@dataclass(frozen=True)
class _Fact:
    subject: tuple[str, ...]
    relations: frozenset[str]
    values: tuple[Unit, ...]
    # A preference's words after its copula (only where the clause holds one value).
    words: tuple[Unit, ...]
    single: bool


def _family(kind: str) -> str:
    return "when" if kind in _WHEN else kind


def _content(unit: Unit) -> bool:
    if unit.kind not in ("word", "name"):
        return False
    value = unit.value
    return value not in STOP and value not in TITLES and value not in _CJK_STOP


def _clauses(text: str) -> list[str]:
    return [part for part in _CLAUSE.split(text) if part and part.strip()]


@functools.lru_cache(maxsize=CACHED)
def _clause_fact(text: str) -> _Fact | None:
    """The subject and values of one clause; None for one that adds a fact."""
    found = units(text)
    if any(u.value in _ADDITIVE for u in found):
        return None
    single = any(u.value in _SINGLE or u.value.startswith("lieblings") for u in found)
    subject: list[str] = []
    values: list[Unit] = []
    words: list[Unit] = []
    after = False
    previous = ""
    for unit in found:
        kind, previous = previous, unit.kind
        if unit.typed and unit.kind != "name":
            values.append(unit)
            after = True
            continue
        if not _content(unit) and unit.value not in _COPULA:
            continue
        if unit.value in _COPULA:
            after = True
            if unit.value in _LIGHT:
                continue
            if not single or unit.value not in _SINGLE:
                subject.append(unit.value)
                continue
        if unit.value in _LIGHT:
            continue
        if unit.kind == "name" and after and kind != "number":
            values.append(unit)
        elif single and after and unit.value not in _SINGLE:
            words.append(unit)
        else:
            subject.append(unit.value)
    relations = frozenset(w for w in subject if w in _RELATION)
    if not subject or not (values or words):
        return None
    return _Fact(tuple(subject), relations, tuple(values), tuple(words), single)


def _says(reply: Sequence[Unit], value: Unit) -> bool:
    """Whether a reply's units state a value of a memory."""
    for unit in reply:
        if value.kind in ("name", "word"):
            if unit.kind in ("name", "word") and _same_word(unit.value, value.value):
                return True
        elif unit.kind == value.kind and unit.value == value.value:
            return True
    return False


@functools.lru_cache(maxsize=CACHED)
def _facts(content: str, memories: tuple[MemoryAttribution, ...]) -> tuple[_Fact, ...]:
    reply = units(content)
    for memory in memories:
        stated: list[_Fact] = []
        for clause in _clauses(memory.content):
            fact = _clause_fact(clause)
            if fact is None:
                continue
            values = tuple(v for v in fact.values if _says(reply, v))
            words = tuple(w for w in fact.words if _says(reply, w))
            if values or words:
                stated.append(_Fact(fact.subject, fact.relations, values, words, fact.single))
        if stated:
            return tuple(stated)
    return ()


@functools.lru_cache(maxsize=CACHED)
def _memory_facts(content: str) -> tuple[_Fact, ...]:
    return tuple(f for f in map(_clause_fact, _clauses(content)) if f is not None)


def facts_of(candidate: Candidate) -> tuple[_Fact, ...]:
    return _facts(candidate.content, candidate.memories)


def subject_keys(candidate: Candidate) -> tuple[frozenset[str], ...]:
    """For an index, per fact of the reply: the keys of its subject's words (a word's first
    four characters, which every pair of words the stem rule matches has in common). Two
    replies about the same subject share at least all the keys of one of the two facts
    (every word of the shorter subject is in the other); empty for a reply with no fact."""
    return _keys(candidate.content, candidate.memories)


@functools.lru_cache(maxsize=CACHED)
def _keys(content: str, memories: tuple[MemoryAttribution, ...]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(word[:4] for word in f.subject) for f in _facts(content, memories))


def _matched(mine: Sequence[str], theirs: Sequence[str]) -> int:
    return sum(1 for word in mine if any(_same_word(word, other) for other in theirs))


def _same_subject(a: _Fact, b: _Fact) -> bool:
    if a.relations != b.relations:
        return False
    mine, theirs = _matched(a.subject, b.subject), _matched(b.subject, a.subject)
    if min(len(a.subject), len(b.subject)) > min(mine, theirs):
        return False
    return 2 * min(mine, theirs) / (len(a.subject) + len(b.subject)) >= SAME_SUBJECT


def _lacks(mine: Sequence[Unit], theirs: Sequence[Unit]) -> list[Unit]:
    """The values of `mine` that `theirs` does not state."""
    return [u for u in mine if not _says(theirs, u)]


def _surface(values: Sequence[Unit]) -> str:
    out = ""
    for unit in values:
        cjk = len(unit.surface) == 1 and not unit.surface.isascii()
        out += unit.surface if cjk or not out else " " + unit.surface
    return out


def _compare(old: _Fact, new: _Fact) -> tuple[str, str] | None:
    """(old line, new line) when `new` says another value about `old`'s subject."""
    if not _same_subject(old, new):
        return None
    changed: set[str] = set()
    for kind in {u.kind for u in old.values} & {u.kind for u in new.values}:
        mine = [u for u in old.values if u.kind == kind]
        theirs = [u for u in new.values if u.kind == kind]
        if _lacks(mine, theirs) and _lacks(theirs, mine):
            changed.add(_family(kind))
    if changed:
        old_values = [u for u in old.values if _family(u.kind) in changed]
        new_values = [u for u in new.values if _family(u.kind) in changed]
        return (
            _surface(_lacks(old_values, new_values) or old_values),
            _surface(_lacks(new_values, old_values) or new_values),
        )
    if not (old.single and new.single and old.words and new.words):
        return None
    gone, came = _lacks(old.words, new.words), _lacks(new.words, old.words)
    if not gone or not came:
        return None
    kept = len(old.words) - len(gone)
    named = [w for w in old.subject if w not in _SINGLE and not w.startswith("lieblings")]
    if not kept and not named:
        return None
    return _surface(old.words), _surface(new.words)


def _between(old: Sequence[_Fact], new: Sequence[_Fact]) -> tuple[str, str] | None:
    for a in old:
        for b in new:
            found = _compare(a, b)
            if found is not None:
                return found
    return None


def superseded_fact(candidate: Candidate, live: Sequence[Candidate]) -> Change | None:
    """The live trained fact (its stored candidate, among `live`) this reply would replace:
    the newest one about the same subject with another value; None when none."""
    mine = facts_of(candidate)
    if not mine:
        return None
    for fact in sorted(live, key=lambda c: c.timestamp_ns, reverse=True):
        if fact.timestamp_ns == candidate.timestamp_ns:
            continue
        found = _between(facts_of(fact), mine)
        if found is not None:
            return Change(fact.timestamp_ns, *found)
    return None


def conflicts(candidate: Candidate, others: Sequence[Candidate]) -> list[Change]:
    """The undecided candidates (pending or approved, not yet sent) among `others` about the
    same subject with another value, oldest first; each change gives the older reply's
    value first."""
    mine = facts_of(candidate)
    if not mine:
        return []
    out = []
    for other in sorted(others, key=lambda c: c.timestamp_ns):
        if other.timestamp_ns == candidate.timestamp_ns or other.status not in UNDECIDED:
            continue
        theirs = facts_of(other)
        older = other.timestamp_ns < candidate.timestamp_ns
        found = _between(theirs, mine) if older else _between(mine, theirs)
        if found is not None:
            out.append(Change(other.timestamp_ns, *found))
    return out


def memory_changed(fact: Candidate, memories: Sequence[MemoryAttribution]) -> Change | None:
    """Whether the memories of a later conversation say otherwise about the subject of a
    trained fact (its stored candidate): the first memory that does, as a change from the
    fact's value to the memory's (`other_ns` is the fact's timestamp)."""
    mine = facts_of(fact)
    if not mine:
        return None
    for memory in memories:
        found = _between(mine, _memory_facts(memory.content))
        if found is not None:
            return Change(fact.timestamp_ns, *found)
    return None
