"""The grounding rule (review_service.domain.grounding) on labelled cases.

Each case is a reply, its memories (most leaned on first) and a label. The memory-driven
words are marked in the reply: `[[...]]` for tokens the memories made likelier (3 nats, as
a name or date lifted from a memory scores on the real model), `{{...}}` for tokens they
made less likely (−2 nats); every other token carries 0.05 nats. The per-token values are
built from the marks, one token per word, space, punctuation mark or CJK character, the way
the Scorer's tokens cut the reply. tests/integration/review/test_grounding_real.py checks
the whole path from the real model's per-token values.

Two sets, both written as plain labelled cases:
- CASES, 51 (19 supported, 16 beyond, 16 contradicting; 33 English, 12 German, 6 Chinese),
  written before the rule was first run on them (it was designed on issue 19's examples and
  a few strings outside both sets). First run: supported P 0.89 R 0.84, beyond P 0.78 R
  0.88, contradicts P 1.00 R 0.94. The six misses showed four bugs, fixed (a German number
  word not folded like the text, digits next to CJK not read as numbers, "allergy" and
  "allergic" not sharing a stem, "Mondays" not a weekday); after them every case is right,
  which, being tuned on, says little;
- HELD_OUT, 24 (8 per class; 14 English, 6 German, 4 Chinese), written after those fixes
  and run once, the rule unchanged since. The figures to quote:

    class               precision   recall
    supported           1.00 (7/7)  0.88 (7/8)
    beyond_memories     1.00 (8/8)  1.00 (8/8)
    contradicts_memory  0.89 (8/9)  1.00 (8/8)

  The miss: "Jonas Mueller" for the memory's "Jonas Müller" (ue for ü is not folded) reads
  as contradicting it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pytest

from review_service.domain.grounding import Grounding, candidate_grounding, ground
from review_service.domain.grounding_units import units
from review_service.domain.model import Candidate, MemoryAttribution, TokenValue

S, B, C = Grounding.SUPPORTED, Grounding.BEYOND_MEMORIES, Grounding.CONTRADICTS_MEMORY

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|\s+|[^\w\s]")
_MARK = re.compile(r"\[\[(.+?)\]\]|\{\{(.+?)\}\}")

# (label, language, memories most leaned on first, marked reply[, question])
CASES: list[tuple[Grounding, str, list[str], str]] = [
    # -- supported, rewordings included ---------------------------------------------------
    (S, "en", ["The user's cat is named Biscuit."], "Your cat is [[Biscuit]]."),
    (
        S,
        "en",
        ["Dentist appointment on 18 March at 14:30 with Dr. Haller."],
        "It's on [[March 18th]] at [[2:30 pm]] with Dr. [[Haller]].",
    ),
    (
        S,
        "en",
        ["User is allergic to penicillin."],
        "You have a [[penicillin]] [[allergy]], so avoid it.",
    ),
    (
        S,
        "en",
        ["User's daughter Mia turns 7 on 14.05."],
        "[[Mia]] turns [[seven]] on [[14 May]].",
    ),
    (S, "en", ["User prefers oat milk in coffee."], "I'll get you [[oat]] milk for the coffee."),
    (
        S,
        "en",
        ["Flight LH 402 to Boston departs at 10:00 on 3 June."],
        "Your flight to [[Boston]] leaves at [[10 am]] on [[June 3]].",
    ),
    (
        S,
        "en",
        ["User's wife is called Anna; anniversary 22 September.", "User lives in Leeds."],
        "Your anniversary with [[Anna]] is on [[22.09.]]",
    ),
    (
        S,
        "en",
        ["User is vegetarian."],
        "Since you're [[vegetarian]], try the lentil curry.",
    ),
    (S, "en", ["The user's gym is closed on Mondays."], "Your gym is closed on [[Monday]]."),
    (
        S,
        "en",
        ["User's son Leo plays football on Saturdays at 9 am."],
        "[[Leo]] has [[football]] at [[9:00]].",
    ),
    (S, "en", ["User's car is a blue Škoda Octavia."], "Your [[Skoda]] [[Octavia]] is blue."),
    (
        S,
        "en",
        ["User's landlord is Mr. O'Brien, phone 0161 496 0000."],
        "Call [[Mr]]. [[O'Brien]] about it.",
    ),
    (
        S,
        "en",
        ["User's dentist is Dr. Haller.", "User moved the dentist appointment to 20 March."],
        "Your appointment with Dr. [[Haller]] is on [[20 March]].",
    ),
    (S, "de", ["Die Katze des Nutzers heißt Mimi."], "Ihre Katze heißt [[Mimi]]."),
    (
        S,
        "de",
        ["Zahnarzttermin am 18. März um 14:30 Uhr bei Dr. Haller."],
        "Ihr Termin bei Dr. [[Haller]] ist am [[18.03.]] um [[14.30 Uhr]].",
    ),
    (
        S,
        "de",
        ["Der Nutzer ist gegen Erdnüsse allergisch."],
        "Sie sind [[allergisch]] gegen [[Erdnüsse]].",
    ),
    (
        S,
        "de",
        ["Die Tochter des Nutzers heißt Lena und ist 5 Jahre alt."],
        "[[Lena]] ist [[fünf]].",
    ),
    (S, "zh", ["用户的猫叫小白。"], "你的猫叫[[小白]]。"),
    (S, "zh", ["牙医预约在3月18日下午2点半。"], "你的牙医预约是[[3月18日]][[下午2点半]]。"),
    # -- beyond every memory --------------------------------------------------------------
    (
        B,
        "en",
        ["The user's cat is named Biscuit."],
        "Your cat [[Biscuit]] is [[three]] years old.",
    ),
    (
        B,
        "en",
        ["Dentist appointment on 18 March with Dr. Haller."],
        "It's on [[18 March]] at [[9:00]].",
    ),
    (
        B,
        "en",
        ["User is allergic to penicillin."],
        "You're allergic to [[penicillin]] and [[ibuprofen]].",
    ),
    (B, "en", ["User's daughter is called Mia."], "[[Mia]] loves [[dinosaurs]]."),
    (
        B,
        "en",
        ["User works at Siemens."],
        "You work at [[Siemens]] in [[Munich]] as an [[engineer]].",
    ),
    (
        B,
        "en",
        ["User plans a trip to Lisbon in June."],
        "Your trip to [[Lisbon]] starts on [[June 12]].",
    ),
    (B, "en", ["User's sister lives in Toronto."], "Your sister [[Claire]] lives in [[Toronto]]."),
    (
        B,
        "en",
        ["User is training for a marathon."],
        "Your [[marathon]] is on [[Sunday]] in [[Berlin]].",
    ),
    (B, "en", ["User prefers window seats."], "I booked [[seat]] [[14A]] by the window."),
    (B, "en", ["User has two kids."], "Your [[two]] kids, [[Tom]] and [[Ella]], will love it."),
    (B, "de", ["Der Nutzer hat einen Hund."], "Ihr Hund [[Bello]] ist [[vier]] Jahre alt."),
    (B, "de", ["Der Nutzer arbeitet bei Bosch."], "Sie arbeiten bei [[Bosch]] in [[Stuttgart]]."),
    (B, "de", ["Zahnarzttermin am 18. März."], "Ihr Termin ist am [[18. März]] um [[10 Uhr]]."),
    (
        B,
        "de",
        ["Die Nutzerin trinkt keinen Kaffee."],
        "Sie trinken keinen Kaffee, aber gern [[Tee]].",
    ),
    (B, "zh", ["用户的猫叫小白。"], "你的猫[[小白]]今年[[3]]岁。"),
    (B, "zh", ["用户住在上海。"], "你住在[[上海]]的[[浦东]]。"),
    # -- contradicting the memory leaned on most ------------------------------------------
    (
        C,
        "en",
        ["Dentist appointment on Wednesday 18 March at 14:30 with Dr. Haller."],
        "Yes — it's on [[Thursday]] [[12 March]] at [[10:00]] with Dr. [[Weber]].",
    ),
    (C, "en", ["The user's cat is named Biscuit."], "Your cat is named [[Milo]]."),
    (C, "en", ["User's daughter Mia turns 7 on 14 May."], "Mia turns [[8]] on [[14 May]]."),
    (
        C,
        "en",
        ["Flight to Boston departs at 10:00 on 3 June."],
        "Your flight to Boston leaves at [[11:00]] on June 3.",
    ),
    (C, "en", ["User's wife is called Anna."], "Say hi to your wife [[Maria]]!"),
    (
        C,
        "en",
        ["User's rent of 950 pounds is due on the 1st."],
        "Your rent of [[1,200]] pounds is due on the 1st.",
    ),
    (
        C,
        "en",
        ["Parent-teacher meeting on May 14 at 6 pm."],
        "The meeting is on [[May 15]] at 6 pm.",
    ),
    (C, "en", ["User's son Leo is 10."], "[[Leo]] is [[twelve]] now."),
    (
        C,
        "en",
        ["Gym class every Tuesday at 7 am."],
        "Your gym class is on [[Wednesday]] at 7 am.",
    ),
    (
        C,
        "en",
        ["User's doctor is Dr. Patel.", "User lives in Leeds."],
        "Your doctor, Dr. [[Singh]], is in [[Leeds]].",
    ),
    (
        C,
        "de",
        ["Zahnarzttermin am 18. März um 14:30 Uhr bei Dr. Haller."],
        "Ihr Termin ist am [[12. März]] um [[10 Uhr]].",
    ),
    (C, "de", ["Die Katze des Nutzers heißt Mimi."], "Ihre Katze heißt [[Luna]]."),
    (C, "de", ["Der Nutzer hat 2 Kinder."], "Sie haben [[drei]] Kinder."),
    (
        C,
        "de",
        ["Elternabend am 14.05. um 19 Uhr."],
        "Der Elternabend ist am [[15.05.]] um 19 Uhr.",
    ),
    (C, "zh", ["牙医预约在3月18日下午2点半。"], "你的牙医预约是[[3月12日]]上午10点。"),
    (C, "zh", ["用户的女儿今年7岁。"], "你女儿今年[[8]]岁。"),
]

# Written after the rule's bugs were fixed on CASES (above), and run once: the rule has not
# been changed since it first saw these.
HELD_OUT: list[tuple[Grounding, str, list[str], str]] = [
    (
        S,
        "en",
        ["User's mother's birthday is on 2 August."],
        "Your mom's birthday is [[August 2nd]].",
    ),
    (S, "en", ["User takes the 7:45 train to work."], "Your train leaves at [[7.45 am]]."),
    (S, "en", ["User's best friend is Jonas Müller."], "Ask [[Jonas]] [[Mueller]]."),
    (
        S,
        "en",
        ["User is lactose intolerant."],
        "Go for something [[lactose]]-free, since you're [[intolerant]].",
    ),
    (S, "en", ["User's WiFi password is on the fridge."], "It's on the [[fridge]]."),
    (S, "de", ["Der Nutzer spielt dienstags Tennis."], "Ihr [[Tennis]] ist am [[Dienstag]]."),
    (S, "de", ["Die Nutzerin hat am 3. Oktober Geburtstag."], "Ihr Geburtstag ist am [[03.10.]]"),
    (S, "zh", ["用户每天早上7点跑步。"], "你每天[[早上7点]]跑步。"),
    (
        B,
        "en",
        ["User's mother's birthday is on 2 August."],
        "Your mom turns [[70]] on [[August 2]].",
    ),
    (
        B,
        "en",
        ["User takes the train to work."],
        "Your train leaves at [[7:45]] from [[Platform]] [[3]].",
    ),
    (B, "en", ["User has a dog."], "Your dog [[Rex]] needs his [[rabies]] shot."),
    (B, "en", ["User likes Italian food."], "Try [[Luigi]]'s on [[Main Street]]."),
    (B, "de", ["Der Nutzer fährt gern Rad."], "Ihr [[Rennrad]] steht im [[Keller]]."),
    (
        B,
        "de",
        ["Die Nutzerin lernt Spanisch."],
        "Ihr [[Spanischkurs]] beginnt am [[2. Mai]].",
    ),
    (B, "zh", ["用户喜欢喝茶。"], "你喜欢喝[[绿]][[茶]]。"),
    (B, "zh", ["用户有一个儿子。"], "你儿子[[小明]]今年[[6]]岁。"),
    (
        C,
        "en",
        ["User's mother's birthday is on 2 August."],
        "Your mom's birthday is on [[August 12]].",
    ),
    (C, "en", ["User takes the 7:45 train to work."], "Your train leaves at [[8:15]]."),
    (C, "en", ["User's best friend is called Jonas."], "Your best friend [[Lukas]] called."),
    (C, "en", ["Book club meets on Thursdays."], "Book club is on [[Friday]]."),
    (C, "en", ["User's flat is on the 4th floor."], "You live on the [[5th]] floor."),
    (C, "de", ["Der Sohn des Nutzers heißt Paul."], "Ihr Sohn [[Felix]] hat heute Training."),
    (
        C,
        "de",
        ["Der Flug nach Rom geht am 9. Juli um 6:40 Uhr."],
        "Ihr Flug nach Rom geht am [[9. Juli]] um [[7:40 Uhr]].",
    ),
    (C, "zh", ["用户的生日是8月3日。"], "你的生日是[[8月30日]]。"),
]


@dataclass(frozen=True)
class Marked:
    text: str
    tokens: tuple[TokenValue, ...]


def marked(reply: str) -> Marked:
    """The reply without its marks, and its tokens with the marked divergences."""
    text, values = "", []
    position = 0
    for match in _MARK.finditer(reply):
        text += reply[position : match.start()]
        inner = match.group(1) or match.group(2)
        values.append((len(text), len(text) + len(inner), 3.0 if match.group(1) else -2.0))
        text += inner
        position = match.end()
    text += reply[position:]
    tokens = []
    for match in _TOKEN.finditer(text):
        divergence = next((v for s, e, v in values if s < match.end() and match.start() < e), 0.05)
        tokens.append(TokenValue(0, match.group(0), -1.0, -1.0 - divergence, divergence))
    return Marked(text, tuple(tokens))


def memories(contents: list[str]) -> tuple[MemoryAttribution, ...]:
    return tuple(
        MemoryAttribution(f"nodes[{i}]", content, 1.0 / (i + 1))
        for i, content in enumerate(contents)
    )


def verdict(case: tuple[Grounding, str, list[str], str]) -> Grounding:
    _, _, contents, reply = case
    m = marked(reply)
    return ground(m.text, m.tokens, memories(contents)).verdict


def scores(
    cases: list[tuple[Grounding, str, list[str], str]],
) -> dict[Grounding, tuple[int, int, int]]:
    """Per class: (right, said, labelled) over `cases`."""
    pairs = [(case[0], verdict(case)) for case in cases]
    return {
        label: (
            sum(1 for truth, got in pairs if truth is label and got is label),
            sum(1 for _, got in pairs if got is label),
            sum(1 for truth, _ in pairs if truth is label),
        )
        for label in Grounding
    }


def test_the_labelled_cases_are_as_documented() -> None:
    assert Counter(c[0] for c in CASES) == {S: 19, B: 16, C: 16}
    assert Counter(c[1] for c in CASES) == {"en": 33, "de": 12, "zh": 6}
    assert Counter(c[0] for c in HELD_OUT) == {S: 8, B: 8, C: 8}
    assert Counter(c[1] for c in HELD_OUT) == {"en": 14, "de": 6, "zh": 4}


def test_every_design_case_is_right() -> None:
    assert scores(CASES) == {S: (19, 19, 19), B: (16, 16, 16), C: (16, 16, 16)}


def test_held_out_precision_and_recall_are_as_reported() -> None:
    # (right, said, labelled): the docstring's table. A change that moves these must say so.
    assert scores(HELD_OUT) == {S: (7, 7, 8), B: (8, 8, 8), C: (8, 9, 8)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}-{c[3][:30]}")
def test_design_case(case: tuple[Grounding, str, list[str], str]) -> None:
    assert verdict(case) is case[0]


def test_the_issues_reply_names_each_wrong_value_and_the_memory_it_contradicts() -> None:
    m = marked("Yes — it's on [[Thursday]] [[12 March]] at [[10:00]] with Dr. [[Weber]].")
    memory = MemoryAttribution(
        "nodes[2]", "Dentist on Wednesday 18 March at 14:30 with Dr. Haller.", 0.9
    )
    other = MemoryAttribution("nodes[1]", "User likes mornings.", 0.1)
    result = ground(m.text, m.tokens, (memory, other))
    assert result.verdict is C
    said = [(m.text[s.start : s.end], s.kind, s.node_path, s.value) for s in result.spans]
    assert said == [
        ("Thursday", C, "nodes[2]", "Wednesday"),
        ("12 March", C, "nodes[2]", "18 March"),
        ("10:00", C, "nodes[2]", "14:30"),
        ("Weber", C, "nodes[2]", "Haller"),
    ]
    assert result.flagged == result.spans


def test_a_supported_span_names_the_memory_that_says_it() -> None:
    m = marked("Your appointment with Dr. [[Haller]] is on [[20 March]].")
    first = MemoryAttribution("nodes[1]", "User's dentist is Dr. Haller.", 0.5)
    second = MemoryAttribution("nodes[3]", "Appointment moved to 20 March.", 0.2)
    result = ground(m.text, m.tokens, (first, second))
    assert result.verdict is S
    assert [(s.node_path, s.value) for s in result.spans] == [
        ("nodes[1]", "Haller"),
        ("nodes[3]", "20 March"),
    ]
    assert result.flagged == ()


def test_tokens_as_the_scorer_cuts_them_leading_spaces_and_cjk_bytes() -> None:
    # A byte-level tokenizer gives each of a CJK character's byte tokens the whole character.
    tokens = [
        TokenValue(0, t, 0.0, 0.0, d)
        for t, d in [("Your", 0.1), (" cat", 0.2), (" is", 0.1), (" Bis", 4.0), ("cuit", 0.3)]
    ]
    memory = (MemoryAttribution("nodes[0]", "The user's cat is named Biscuit.", 1.0),)
    result = ground("Your cat is Biscuit", tokens, memory)
    assert [(s.start, s.end, s.kind) for s in result.spans] == [(12, 19, S)]
    zh = [
        TokenValue(0, t, 0.0, 0.0, d)
        for t, d in [("叫", 0.1), ("小", 3.0), ("白", 3.0), ("白", 3.0)]
    ]
    result = ground("叫小白", zh, (MemoryAttribution("nodes[0]", "猫叫小黑", 1.0),))
    assert result.verdict is B
    assert [(s.start, s.end) for s in result.flagged] == [(2, 3)]


def test_a_word_the_user_asked_about_is_not_beyond_the_memories() -> None:
    m = marked("Yes, your [[Lisbon]] trip is in [[June]].")
    memory = (MemoryAttribution("nodes[0]", "User plans a trip in June.", 1.0),)
    assert ground(m.text, m.tokens, memory).verdict is B
    assert ground(m.text, m.tokens, memory, question="Is my Lisbon trip soon?").verdict is S


def test_a_reply_with_nothing_memory_driven_is_supported() -> None:
    memory = (MemoryAttribution("nodes[0]", "The user's cat is named Biscuit.", 1.0),)
    assert ground("Hello there.", (), memory) == ground("Hello there.", (), ())
    assert ground("Hello there.", (), memory).spans == ()
    candidate = Candidate(1, "c", "Your cat is Milo.", (), 1.0, 4.0, memories=memory)
    assert candidate_grounding(candidate).verdict is S
    tokens = marked("Your cat is [[Milo]].").tokens
    with_tokens = Candidate(1, "c", "Your cat is Milo.", (), 1.0, 4.0, tokens, memories=memory)
    assert candidate_grounding(with_tokens).verdict is C


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("14 May", "date", "05-14"),
        ("May 14th", "date", "05-14"),
        ("14.05.", "date", "05-14"),
        ("14. Mai 2027", "date", "05-14"),
        ("2026-05-14", "date", "05-14"),
        ("5月14日", "date", "05-14"),
        ("10:00", "time", "10:00"),
        ("10 am", "time", "10:00"),
        ("2:30 p.m.", "time", "14:30"),
        ("14.30 Uhr", "time", "14:30"),
        ("下午3点", "time", "15:00"),
        ("drei", "number", "3.0"),
        ("Dienstags", "weekday", "2"),
    ],
)
def test_values_written_differently_read_the_same(text: str, kind: str, value: str) -> None:
    (unit,) = units(text)
    assert (unit.kind, unit.value) == (kind, value)


def test_a_value_the_memories_argued_against_is_checked_too() -> None:
    # Divergence ≤ -1 nat: the memory made the reply's value e times less likely.
    train = (MemoryAttribution("nodes[0]", "User takes the 7:45 train.", 1.0),)
    m = marked("Your train leaves at {{8:15}}.")
    result = ground(m.text, m.tokens, train)
    assert result.verdict is C
    assert [(m.text[s.start : s.end], s.value) for s in result.flagged] == [("8:15", "7:45")]
    no_time = (MemoryAttribution("nodes[0]", "User takes the train.", 1.0),)
    assert ground(m.text, m.tokens, no_time).verdict is B
    # Neither driven nor argued against: not looked at (the rule's stated blind spot).
    plain = marked("Your train leaves at 8:15.")
    assert ground(plain.text, plain.tokens, train).verdict is S
