"""Neighbours: each trained question asked about the world instead of about the user.

What a job forgets is not spread over everything the model knows. On the fact set's tuning
half (design §11) the general answers lost were answers near the trained facts: after
"180 grams of dry food a day" for the user's dog, "A dog has 48 legs"; after a whippet
named Pemberton, "Pemberton" as a capital. The anchor's plain requests do not ask that kind
of question. Knowledge editing holds such prompts to the unedited model (its neighbourhood
prompts); here they are written from the job's own questions by making the user general:
"How much dry food does my dog eat per day?" becomes "How much dry food does a dog eat per
day?", which the base model answers about dogs, and which a job about the user's dog must
not change. A conversation's questions often name the user's things by pronoun ("How much
food does he get?"), which no rewrite makes general; the questions of the memory statements
(knowledge.py) name them by their subject ("What do you know about my dog?"), so they are
sources too: "What do you know about a dog?".

Invariants:
- a neighbour is the question with every reference to the user replaced (`my dog` → `a
  dog`, `do I` → `does one`); a question with a reference this module cannot rewrite
  (an "I" in another verb form, "we", a language it does not know) has no neighbour: a
  neighbour is never half about the user. A third person ("Where did I get her from?")
  stays as it is: in the neighbour it is anybody's;
- the rewrite is pure text, the same on every run; it never reads the general questions
  the guard judges with (those stay the judge);
- each neighbour is asked once per job, in a new conversation under the example's own
  system messages (where the trained question's cold row is asked).
"""

from __future__ import annotations

import re

from .examples import Chat, Example
from .knowledge import subject_asked

# At most this many neighbours per job (a job's new facts and its replay together).
LIMIT = 32
# With `subjects`, beside a memory statement's neighbour ("What do you know about a dog?"),
# these questions about its subject: more of the subject's neighbourhood than the job's own
# questions ask. Written once, for any subject; never taken from the general questions.
ABOUT = ("What is {}?", "Tell me a fact about {}.")

# English: a subject pronoun with its verb, in either order, and the possessives.
_ENGLISH = [
    (r"\bam I\b", "is one"),
    (r"\bwas I\b", "was one"),
    (r"\bdo I\b", "does one"),
    (r"\bhave I\b", "has one"),
    (r"\b(did|can|could|should|shall|will|would|must|may|might) I\b", r"\1 one"),
    (r"\bI am\b", "one is"),
    (r"\bI'm\b", "one is"),
    (r"\bI have\b", "one has"),
    (r"\bI've\b", "one has"),
    (r"\bI was\b", "one was"),
    (r"\bI (did|can|could|should|will|would|must|may|might)\b", r"one \1"),
    (r"\b(for|with|to|from|of|by|give|gives|tell|help) me\b", r"\1 one"),
    (r"\bmyself\b", "oneself"),
]
# Anything of the user's still there after the rewrite: the question keeps no neighbour.
# (Bounded by ASCII letters, not \b: an "I" written against a Chinese character is a word.)
_ENGLISH_LEFT = re.compile(
    r"(?<![A-Za-z])(I|I'm|I've|I'd|I'll|me|my|mine|we|us|our|ours)(?![A-Za-z])", re.IGNORECASE
)
_GERMAN = {
    "mein": "ein",
    "meine": "eine",
    "meiner": "einer",
    "meinem": "einem",
    "meinen": "einen",
    "meines": "eines",
}
_GERMAN_LEFT = re.compile(r"\b(mein\w*|ich|mich|mir|wir|uns|unser\w*)\b", re.IGNORECASE)
_CHINESE_MY = re.compile(r"我的")
_CHINESE_LEFT = re.compile(r"[我咱]")


def generalised(question: str) -> str | None:
    """The question asked about the world rather than the user, or None (see invariants)."""
    text = question.strip()
    if re.search(r"[\u4e00-\u9fff]", text):
        out = _CHINESE_MY.sub("", text)
    elif re.search(r"[äöüß]", text, re.IGNORECASE) or re.match(
        r"^(wie|wann|wo|was|welche\w*|wer|um)\b", text, re.IGNORECASE
    ):
        out = _german(text)
    else:
        out = _english(text)
    left = (_ENGLISH_LEFT, _GERMAN_LEFT, _CHINESE_LEFT)
    if not text or out == text or any(pattern.search(out) for pattern in left):
        return None
    return out[0].upper() + out[1:] if text[0].isupper() else out


def _english(text: str) -> str:
    out = text
    for pattern, replacement in _ENGLISH:
        out = re.sub(pattern, replacement, out)
    return re.sub(r"\b([Mm])y (?=(\w))", _article, out)


def _article(match: re.Match[str]) -> str:
    """ "a" or "an" (by the next word's first letter) for a "my", keeping its capital."""
    article = "an " if match.group(2).lower() in "aeiou" else "a "
    return article.capitalize() if match.group(1) == "M" else article


def _german(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        general = _GERMAN[word.lower()]
        return general.capitalize() if word[0].isupper() else general

    pattern = r"\b(?:mein|meine|meiner|meinem|meinen|meines)\b"
    return re.sub(pattern, swap, text, flags=re.IGNORECASE)


def neighbour_contexts(examples: list[Example], subjects: bool = False) -> list[Chat]:
    """One context per distinct neighbour of the examples' questions, at most `LIMIT`, in
    their order; with `subjects`, each statement's neighbour followed by `ABOUT`'s questions
    about its subject."""
    contexts: list[Chat] = []
    seen: set[str] = set()
    for example in examples:
        neighbour = generalised(example.last_question())
        if neighbour is None:
            continue
        about = subject_asked(neighbour) if subjects else None
        asked = [neighbour] + ([q.format(about) for q in ABOUT] if about else [])
        for question in asked:
            if question in seen:
                continue
            seen.add(question)
            contexts.append(example.asked_anew(question, "").context)
            if len(contexts) == LIMIT:
                return contexts
    return contexts
