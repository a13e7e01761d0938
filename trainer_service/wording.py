"""A memory said to the user, whatever its verb: the wide forms of memory statements.

knowledge.py states a memory whose subject is followed by a form of "be" or "have" ("the
user's dentist is Dr. Haldorsen"). Memory stores write more than that: the user as the
subject ("the user works at Veltrane Logistics"), any verb ("the user's dog eats 180 grams
a day"), a name beside the subject ("the user's husband, Bartholomew, is vegetarian"), or
the user's things by their names ("Pemberton's vet is Dr. Lindqvist", where another memory
says the dog is named Pemberton). On the tuning half's first six conversations, after six
days in a row (the replay-32 run of design §13), 13 of the 28 facts rested on a memory
knowledge.py cannot read, and 8 of those 13 did not come back cold to their own
questions, against 3 of the other 15.

Invariants (rules on the words, not a parser; a memory they cannot read gives nothing):
- the user as subject is "you", and its verb is said in the second person: "is" -> "are",
  "was" -> "were", "has" -> "have", "does" -> "do", a final "s" taken off the way English
  adds it ("lives" -> "live", "watches" -> "watch", "flies" -> "fly"); a past tense or a
  modal is left as it is. Its statement is asked about "me";
- any other subject is the words from "your", "the", "a", "an" or a name's possessive up
  to the first comma, name or verb-looking word (a form of "be" or "have", or a word ending
  in "s" or "ed" after the subject's first noun);
- "the user's" is "your" and "their" (the user's, when the user is the subject) is "your";
- a name is the user's X when a memory of the same context says so ("your dog is a whippet
  named Pemberton", "your husband, Bartholomew,", "your daughter Isolde turns 9"); a
  memory about that name's things ("Pemberton's vet") is then also said as the user's
  ("Your dog's vet").
"""

from __future__ import annotations

import re

# "Memory:" or "Memory (2026-04-20):" in front of a memory's text.
_LABEL = re.compile(r"^\s*memory(?:\s*\([^)]*\))?\s*:\s*", re.IGNORECASE)
_BE_HAVE = {"is", "are", "was", "were", "has", "have"}
_YOU = {"is": "are", "was": "were", "has": "have", "does": "do"}
# Words between "the user" and its verb that are not the verb.
_ADVERB = re.compile(r"^(?:\w+ly|always|never|still|also|often|now|just|already)$")
_DETERMINER = re.compile(r"^(?:your|the|a|an|[A-Z][\w-]*'s)$", re.IGNORECASE)
_PREPOSITIONS = {"at", "in", "on", "for", "with", "to", "of", "from", "by", "and", "&"}
_NAME = r"[A-Z][\w-]*(?:\s[A-Z][\w-]*)*"
_ALIASES = (
    re.compile(
        rf"\byour ([a-z][\w' -]{{0,40}}?) (?:is|was) (?:[\w-]+ ){{0,4}}(?:named|called) ({_NAME})"
    ),
    re.compile(rf"\byour ([a-z][\w' -]{{0,40}}?), ({_NAME}),"),
    re.compile(rf"\byour ([a-z][\w'-]*) ({_NAME}) [a-z]"),
)


def plain(memory: str) -> str:
    """The memory's text without its label, "the user's" as "your"."""
    text = _LABEL.sub("", memory.strip())
    return re.sub(r"\bthe user's\b", "your", text, flags=re.IGNORECASE)


def second_person(verb: str) -> str:
    """A verb of "the user" as said to "you"."""
    word = verb.lower()
    if word in _YOU:
        return _YOU[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(?:ss|sh|ch|x|z|o)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def about_the_user(text: str) -> tuple[str, str] | None:
    """("me", the memory said to you) for a memory whose subject is the user."""
    words = text.split()
    if len(words) < 3 or [w.lower() for w in words[:2]] != ["the", "user"]:
        return None
    rest = words[2:]
    adverbs = []
    while rest and _ADVERB.match(rest[0]) and len(rest) > 1:
        adverbs.append(rest.pop(0))
    verb = rest[0].rstrip(",;:")
    if not verb.isalpha() or verb != rest[0]:
        return None
    tail = " ".join(rest[1:])
    tail = re.sub(r"\bthe user\b", "you", tail, flags=re.IGNORECASE)
    tail = re.sub(r"\btheir\b", "your", tail)
    said = " ".join(["You", *adverbs, second_person(verb), tail]).strip()
    return "me", _sentence(said)


def subject_of(text: str) -> str | None:
    """The subject of a memory about anything but the user itself, as its text has it."""
    words = text.split()
    if len(words) < 3 or not _DETERMINER.match(words[0]):
        return None
    for i, word in enumerate(words[1:9], start=1):
        if word.endswith(","):
            return " ".join([*words[:i], word[:-1]])
        if i < 2:
            continue
        named = words[0].lower() == "your" and not _PREPOSITIONS & set(words[1:i])
        if named and word[0].isupper():
            return " ".join(words[:i])
        verb_like = word.endswith("ed") or (word.endswith("s") and word[-2:] not in ("ss", "us"))
        if word in _BE_HAVE or (word.isalpha() and word.islower() and verb_like):
            return " ".join(words[:i])
    return None


def said(memory: str) -> tuple[str, str] | None:
    """(the subject as the user asks about it, the memory said to the user), or None."""
    text = plain(memory)
    if not text:
        return None
    if (user := about_the_user(text)) is not None:
        return user
    if re.search(r"\bthe user\b", text, re.IGNORECASE):
        return None
    subject = subject_of(text)
    if subject is None:
        return None
    first, _, rest = subject.partition(" ")
    if first.lower() == "your":
        first = "my"
    elif first.lower() in ("the", "a", "an"):
        first = first.lower()
    return f"{first} {rest}", _sentence(text)


def aliases(memories: list[str]) -> dict[str, str]:
    """Each name the memories give one of the user's things: name -> "your X"."""
    out: dict[str, str] = {}
    for memory in memories:
        text = plain(memory)
        for pattern in _ALIASES:
            for match in pattern.finditer(text):
                thing, name = match.group(1).strip(), match.group(2).split()[0]
                out.setdefault(name, f"your {thing}")
    return out


def aliased(memory: str, names: dict[str, str]) -> str | None:
    """The memory with its first named thing's possessive said as the user's ("Pemberton's
    vet" -> "your dog's vet"), or None when it names none."""
    text = plain(memory)
    for name, thing in names.items():
        possessive = re.compile(rf"\b{re.escape(name)}'s\b")
        if possessive.search(text) and thing not in text:
            return possessive.sub(f"{thing}'s", text, count=1)
    return None
