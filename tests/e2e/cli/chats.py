"""Conversation files for the CLI's tests, written the way an agent writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Facts only the memories state, each with the question whose answer needs it.
FACTS = (
    ("The user's cat is named Biscuit.", "What is my cat called?", "Your cat is named Biscuit."),
    ("The user's sister is called Marisol.", "What is my sister called?",
     "Your sister is called Marisol."),
    ("The user lives in Tromsø.", "Where do I live?", "You live in Tromsø."),
    ("The user's dentist is Dr. Okafor.", "Who is my dentist?", "Your dentist is Dr. Okafor."),
    ("The user drives a green Volvo.", "What car do I drive?", "You drive a green Volvo."),
    ("The user's project is codenamed Heron.", "What is my project's codename?",
     "Your project is codenamed Heron."),
)  # fmt: skip


def chat(
    conversation_id: str, base_ns: int, facts: Sequence[tuple[str, str, str]] = FACTS
) -> dict[str, Any]:
    """One memory node per fact, then one question and its memory-dependent reply per fact
    (reply i has timestamp `base_ns + 10 * i + 12`)."""
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant.", "timestamp": base_ns},
        *(
            {"role": "system", "content": f"Memory: {fact}", "memory": True,
             "timestamp": base_ns + 1}
            for fact, _, _ in facts
        ),
    ]  # fmt: skip
    for i, (_, question, answer) in enumerate(facts):
        nodes.append({"role": "user", "content": question, "timestamp": base_ns + 10 * i + 11})
        nodes.append({"role": "assistant", "content": answer, "timestamp": base_ns + 10 * i + 12})
    return {"id": conversation_id, "nodes": nodes}


def write_chat(path: Path, conversation: dict[str, Any]) -> Path:
    path.write_text(json.dumps(conversation, ensure_ascii=False), encoding="utf-8")
    return path
