"""The change rule (review_service/domain/changes.py) on labelled cases: precision and recall
of "this reply replaces that one's fact" on tests/unit/review/change_cases.json.

Each case is an earlier reply with its memories (most leaned on first) and a later one (or,
mode `memory`, only a later conversation's memories), labelled by whether a person would
say the later one replaces the earlier one's fact. Mode `supersedes` asks `superseded_fact`
(the earlier reply a live trained fact), `conflict` asks `conflicts` (both undecided),
`memory` asks `memory_changed`. Replies carry no per-token values: the rule reads the memory
and what the reply states, not the divergence.

Two sets, written together while the rule was being designed (names, dates, times,
weekdays, numbers, places, preferences, pets, relatives; English, German, Chinese;
paraphrased subjects; unrelated facts sharing words):
- design, 39 (18 changes): the rule was developed on it; every case was right on its
  first run, which, the rule and cases having one author, says little;
- held_out, 22 (11 changes): run once, at the end, with the rule unchanged since:

    set        precision      recall
    design     1.00 (18/18)   1.00 (18/18)
    held_out   1.00 (11/11)   1.00 (11/11)

  Cases written by others will do worse: the known misses and false changes are listed in
  changes.py's docstring.

The floors asserted are below the measured figures: a false change costs a person a look
and a decision, a missed one trains a contradiction; both matter, so neither may fall under
0.8 on the design set or 0.7 on the held-out set (22 cases: one case moves a figure by up
to 0.1, and a rule change that costs three held-out cases is a regression to look at).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from review_service.domain.changes import conflicts, memory_changed, superseded_fact
from review_service.domain.model import Candidate, MemoryAttribution, Status

CASES = json.loads((Path(__file__).parent / "change_cases.json").read_text())["cases"]
OLD_NS, NEW_NS = 1_000, 2_000


def candidate(ts: int, side: dict[str, Any], status: Status = Status.PENDING) -> Candidate:
    memories = tuple(
        MemoryAttribution(f"nodes[1].children[{i}]", text, 2.0 / (i + 1))
        for i, text in enumerate(side["memories"])
    )
    return Candidate(ts, f"c{ts}", side["reply"], (), 1.5, 3.0, status=status, memories=memories)


def predicted(case: dict[str, Any]) -> bool:
    mode = case.get("mode", "supersedes")
    old = candidate(OLD_NS, case["old"])
    if mode == "memory":
        later = [
            MemoryAttribution(f"m{i}", text, 1.0) for i, text in enumerate(case["new"]["memories"])
        ]
        return memory_changed(old, later) is not None
    new = candidate(NEW_NS, case["new"])
    if mode == "conflict":
        return bool(conflicts(new, [old]))
    return superseded_fact(new, [old]) is not None


def scores(name: str) -> tuple[float, float, list[str]]:
    chosen = [c for c in CASES if c["set"] == name]
    tp = fp = fn = 0
    wrong = []
    for case in chosen:
        said, truth = predicted(case), bool(case["change"])
        tp += said and truth
        fp += said and not truth
        fn += truth and not said
        if said != truth:
            wrong.append(case["id"])
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), wrong


@pytest.mark.parametrize(("name", "floor"), [("design", 0.8), ("held_out", 0.7)])
def test_precision_and_recall(name: str, floor: float) -> None:
    precision, recall, wrong = scores(name)
    print(f"{name}: precision {precision:.2f} recall {recall:.2f} wrong {wrong}")
    assert precision >= floor, wrong
    assert recall >= floor, wrong


def test_sets_are_sizable_and_balanced() -> None:
    for name, least in (("design", 30), ("held_out", 20)):
        chosen = [c for c in CASES if c["set"] == name]
        assert len(chosen) >= least
        assert 0.35 <= sum(c["change"] for c in chosen) / len(chosen) <= 0.65
