"""Checks bench/learning/facts.json and trainer_service/general_questions.json.

Run from anywhere: `python bench/learning/check_facts.py`. Standard library only. On the first
problem it prints one line saying where and what, and exits 1; otherwise it prints the counts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "bench" / "learning" / "facts.json"
GENERAL = ROOT / "trainer_service" / "general_questions.json"

SPLITS = ("tune", "held_out")
FACT_KEYS = {"id", "reply", "memories", "answer", "question", "paraphrases"}
GENERAL_COUNT = 200

# As trainer_service.facts.words: runs of letters and digits, each CJK character a word, a
# number one word however grouped or padded.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_WORD = re.compile(rf"\d+(?:,\d{{3}}(?!\d))+|[{_CJK}]|[^\W_{_CJK}]+")
_NOT_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
# Full stops that do not end a sentence (for counting sentences): abbreviations, and German
# ordinals such as "4. September".
_ABBREVIATIONS = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|St|\d{1,2})\.(?=\s)")
_SENTENCE_END = re.compile(r"[.!?]+[\"”’)]?(?=\s|$)|[。！？]")


class Problem(Exception):
    pass


def normalise(text: str) -> str:
    """Lowercase, punctuation stripped, whitespace collapsed (as trainer_service.measures)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACES.sub(" ", _NOT_WORD.sub("", text)).strip()


def words(text: str) -> list[str]:
    found = (w.replace(",", "") for w in _WORD.findall(unicodedata.normalize("NFKC", text)))
    return [w.lstrip("0") or "0" if w.isdigit() else w.lower() for w in found]


def says(text: str, answers: list[str]) -> bool:
    """Whether `text` holds one of `answers` as whole words (as general.Question.right)."""
    said = f" {' '.join(words(text))} "
    return any(f" {' '.join(words(a))} " in said for a in answers)


def sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(_ABBREVIATIONS.sub("_", text)))


def nanos(stamp: Any, where: str) -> int:
    if not isinstance(stamp, str):
        raise Problem(f"{where}: missing timestamp")
    m = _STAMP.match(stamp)
    if not m:
        raise Problem(f"{where}: timestamp {stamp!r} is not RFC 3339")
    head, frac, zone = m.groups()
    try:
        when = dt.datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
    except ValueError as e:
        raise Problem(f"{where}: timestamp {stamp!r}: {e}") from None
    return int(when.timestamp()) * 10**9 + int((frac or "").ljust(9, "0"))


def load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Problem(f"{path.relative_to(ROOT)}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Problem(f"{path.relative_to(ROOT)}: malformed JSON: {e}") from None


def need(cond: object, message: str) -> None:
    if not cond:
        raise Problem(message)


def nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def check_facts() -> tuple[dict[str, dict[str, int]], int, int, set[str]]:
    name = "bench/learning/facts.json"
    data = load(FACTS)
    need(isinstance(data, dict), f"{name}: expected an object")
    need(nonempty_str(data.get("about")), f"{name}: 'about' missing or empty")
    convs = data.get("conversations")
    need(isinstance(convs, list) and convs, f"{name}: 'conversations' missing or empty")

    stamps: dict[int, str] = {}
    conv_ids: set[str] = set()
    fact_ids: set[str] = set()
    user_turns: set[str] = set()
    per_split = {
        s: {"conversations": 0, "facts": 0, "two_memory": 0, "long": 0, "generic": 0}
        for s in SPLITS
    }
    languages: dict[str, set[str]] = {}
    node_count = 0

    for ci, conv in enumerate(convs):
        where = f"{name}: conversations[{ci}]"
        need(isinstance(conv, dict), f"{where}: expected an object")
        cid = conv.get("id")
        need(nonempty_str(cid), f"{where}: 'id' missing")
        where = f"{name}: {cid}"
        need(cid not in conv_ids, f"{where}: duplicate conversation id")
        conv_ids.add(cid)
        split = conv.get("split")
        need(split in SPLITS, f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        language = conv.get("language")
        need(nonempty_str(language), f"{where}: 'language' missing")
        languages.setdefault(language, set()).add(split)

        nodes = conv.get("nodes")
        need(isinstance(nodes, list) and len(nodes) >= 4, f"{where}: 'nodes' missing or too short")
        first = nodes[0]
        need(
            isinstance(first, dict)
            and first.get("role") == "system"
            and nonempty_str(first.get("content")),
            f"{where}: nodes[0] is not a system prompt",
        )
        branch = nodes[1]
        need(
            isinstance(branch, dict) and "branch" in branch and branch.get("memory") is True,
            f"{where}: nodes[1] is not a memory branch",
        )
        children = branch.get("children")
        need(isinstance(children, list) and children, f"{where}: the memory branch has no children")

        # Document order: system, branch, its children, then the turns.
        ordered: list[tuple[str, dict[str, Any]]] = [("nodes[0]", first), ("nodes[1]", branch)]
        memories: list[str] = []
        for k, child in enumerate(children):
            cw = f"nodes[1].children[{k}]"
            need(
                isinstance(child, dict) and child.get("role") == "system",
                f"{where}: {cw} is not a system message",
            )
            content = child.get("content")
            need(
                nonempty_str(content) and content.startswith("Memory: "),
                f"{where}: {cw} does not begin with 'Memory: '",
            )
            need(content not in memories, f"{where}: {cw} repeats a memory")
            memories.append(content)
            ordered.append((cw, child))

        assistant_replies: list[str] = []
        expected = "user"
        for k in range(2, len(nodes)):
            node = nodes[k]
            nw = f"nodes[{k}]"
            need(
                isinstance(node, dict) and "branch" not in node and "children" not in node,
                f"{where}: {nw}: only one memory branch is allowed, after the system prompt",
            )
            need(not node.get("memory"), f"{where}: {nw}: a memory outside the memory branch")
            role = node.get("role")
            need(role == expected, f"{where}: {nw}: expected a {expected} turn, found {role!r}")
            need(nonempty_str(node.get("content")), f"{where}: {nw}: empty content")
            if role == "assistant":
                assistant_replies.append(node["content"])
            else:
                user_turns.add(normalise(node["content"]))
            expected = "assistant" if role == "user" else "user"
            ordered.append((nw, node))
        need(expected == "user", f"{where}: the conversation does not end with an assistant reply")

        previous = None
        for nw, node in ordered:
            ns = nanos(node.get("timestamp"), f"{where}: {nw}")
            need(
                ns not in stamps,
                f"{where}: {nw}: timestamp {node['timestamp']} also used by {stamps.get(ns)}",
            )
            stamps[ns] = f"{cid} {nw}"
            need(previous is None or ns > previous, f"{where}: {nw}: timestamp does not increase")
            previous = ns
        node_count += len(ordered)

        facts = conv.get("facts")
        need(isinstance(facts, list) and facts, f"{where}: 'facts' missing or empty")
        used_memories: set[str] = set()
        fact_replies: set[str] = set()
        for fi, fact in enumerate(facts):
            fw = f"{where}: facts[{fi}]"
            need(isinstance(fact, dict), f"{fw}: expected an object")
            need(set(fact) == FACT_KEYS, f"{fw}: keys {sorted(fact)} are not {sorted(FACT_KEYS)}")
            fid = fact["id"]
            need(nonempty_str(fid), f"{fw}: 'id' missing")
            fw = f"{where}: fact {fid}"
            need(fid not in fact_ids, f"{fw}: duplicate fact id")
            fact_ids.add(fid)
            reply = fact["reply"]
            need(
                isinstance(reply, str) and reply in assistant_replies,
                f"{fw}: reply is not the content of an assistant node of the conversation",
            )
            need(reply not in fact_replies, f"{fw}: another fact has the same reply")
            fact_replies.add(reply)
            mems = fact["memories"]
            need(isinstance(mems, list) and mems, f"{fw}: 'memories' missing or empty")
            for m in mems:
                need(m in memories, f"{fw}: memory {m!r} is not a memory of the conversation")
            need(len(set(mems)) == len(mems), f"{fw}: a memory is listed twice")
            used_memories.update(mems)
            answers = fact["answer"]
            need(
                isinstance(answers, list)
                and bool(answers)
                and all(nonempty_str(a) and words(a) for a in answers),
                f"{fw}: 'answer' must be a non-empty list of non-empty strings",
            )
            need(
                says(reply, answers),
                f"{fw}: no answer appears in the reply as whole words",
            )
            question = fact["question"]
            need(
                nonempty_str(question) and question.rstrip().endswith(("?", "？")),
                f"{fw}: 'question' must be a question",
            )
            paraphrases = fact["paraphrases"]
            need(
                isinstance(paraphrases, list) and len(paraphrases) == 3,
                f"{fw}: needs exactly 3 paraphrases",
            )
            for p in paraphrases:
                need(
                    nonempty_str(p) and p.rstrip().endswith(("?", "？")),
                    f"{fw}: paraphrase {p!r} is not a question",
                )
            for q in [question, *paraphrases]:
                need(not says(q, answers), f"{fw}: {q!r} gives the answer away")
            wordings = {normalise(q) for q in [question, *paraphrases]}
            need(len(wordings) == 4, f"{fw}: question and paraphrases are not all different")
            split_counts = per_split[split]
            split_counts["facts"] += 1
            split_counts["two_memory"] += len(mems) >= 2
            split_counts["long"] += sentences(reply) >= 3

        distractors = [m for m in memories if m not in used_memories]
        need(
            1 <= len(distractors) <= 2,
            f"{where}: {len(distractors)} memories unused by any fact (expected 1 or 2)",
        )
        generic = [r for r in assistant_replies if r not in fact_replies]
        need(len(generic) >= 2, f"{where}: fewer than 2 generic assistant replies")
        per_split[split]["conversations"] += 1
        per_split[split]["generic"] += len(generic)

    total_facts = sum(c["facts"] for c in per_split.values())
    tune, held = per_split["tune"], per_split["held_out"]
    need(len(convs) >= 16, f"{name}: {len(convs)} conversations, expected at least 16")
    need(total_facts >= 64, f"{name}: {total_facts} facts, expected at least 64")
    need(
        tune["conversations"] == held["conversations"],
        f"{name}: the splits differ in size "
        f"({tune['conversations']} tune, {held['conversations']} held_out)",
    )
    for split, counts in per_split.items():
        need(counts["two_memory"] >= 1, f"{name}: no two-memory reply in split {split}")
        need(counts["long"] >= 1, f"{name}: no reply of 3+ sentences in split {split}")
    for lang in ("de", "zh"):
        need(lang in languages, f"{name}: no conversation in language {lang!r}")
    need(
        languages["de"].isdisjoint(languages["zh"]) and len(languages["de"] | languages["zh"]) == 2,
        f"{name}: German and Chinese conversations must sit in different splits",
    )
    return per_split, total_facts, node_count, user_turns


def check_general(user_turns: set[str]) -> int:
    name = "trainer_service/general_questions.json"
    data = load(GENERAL)
    need(isinstance(data, dict), f"{name}: expected an object")
    need(nonempty_str(data.get("about")), f"{name}: 'about' missing or empty")
    items = data.get("items")
    need(isinstance(items, list), f"{name}: 'items' missing")
    need(len(items) == GENERAL_COUNT, f"{name}: {len(items)} items, expected {GENERAL_COUNT}")
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{name}: items[{i}]"
        need(
            isinstance(item, dict) and set(item) == {"question", "answers"},
            f"{where}: expected an object with 'question' and 'answers'",
        )
        question = item["question"]
        need(
            nonempty_str(question) and question.endswith("?"),
            f"{where}: 'question' must be a question",
        )
        key = normalise(question)
        need(key not in seen, f"{where}: duplicate question {question!r}")
        seen.add(key)
        need(
            key not in user_turns,
            f"{where}: {question!r} is also a user turn in bench/learning/facts.json",
        )
        answers = item["answers"]
        need(
            isinstance(answers, list)
            and bool(answers)
            and all(nonempty_str(a) and words(a) for a in answers),
            f"{where}: 'answers' must be a non-empty list of non-empty strings",
        )
        need(not says(question, answers), f"{where}: {question!r} holds its own answer")
    return len(items)


def main() -> int:
    try:
        per_split, total_facts, node_count, user_turns = check_facts()
        general = check_general(user_turns)
    except Problem as problem:
        print(problem)
        return 1
    for split in SPLITS:
        c = per_split[split]
        print(
            f"{split}: {c['conversations']} conversations, {c['facts']} facts "
            f"({c['two_memory']} two-memory, {c['long']} long), {c['generic']} generic replies"
        )
    print(
        f"facts.json: {sum(c['conversations'] for c in per_split.values())} conversations, "
        f"{total_facts} facts, {node_count} nodes with unique timestamps"
    )
    print(f"general_questions.json: {general} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
