"""Conversations for the review-screen tests, and the waits they need.

Each test gets its own Review service (`tests.support.services.ReviewProcess`, started by
conftest: a subprocess on 127.0.0.1, port chosen by the OS, a fresh home with its own
SQLite store and config file) in front of the session's Scorer (`scorer_address`, from
`tests/conftest.py`, the real embedded model). The Review can be stopped and started again
on the same port, which is how the reconnect test restarts it.

Nothing here sleeps and hopes: a process is ready when it logs where it serves, and a
screen is ready when a condition on it holds, each within a deadline that names what was
awaited when it fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ftreview.client import AsyncReviewClient
from ftreview.conversations import parse_conversation
from ftreview.v1 import conversation_pb2
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.support.services import ReviewProcess

# Scoring a short conversation takes a second or two; generating an alternate on a CPU
# can take much longer on a busy machine.
SCORING_TIMEOUT_S = 120.0
ALTERNATE_TIMEOUT_S = 240.0

# Three replies that state what only the memories say: each should diverge well above the
# default threshold. The base time is what makes each test's replies distinct identities.
MEMORY_FACTS = (
    "The user's cat is named Biscuit. "
    "The user's sister is called Marisol. "
    "The user lives in Tromsø."
)


def memory_conversation(base_ns: int, conversation_id: str = "tui-memories") -> Any:
    """A conversation whose three replies lean on the memories."""
    turns = [
        ("What is my cat called?", "Your cat is named Biscuit."),
        ("And what is my sister called?", "Your sister is called Marisol."),
        ("Where do I live?", "You live in Tromsø."),
    ]
    nodes: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": f"Memories about the user: {MEMORY_FACTS}",
            "memory": True,
            "timestamp": base_ns,
        }
    ]
    for index, (question, answer) in enumerate(turns):
        nodes.append({"role": "user", "content": question, "timestamp": base_ns + 10 * index + 1})
        nodes.append(
            {"role": "assistant", "content": answer, "timestamp": base_ns + 10 * index + 2}
        )
    return parse_conversation({"id": conversation_id, "nodes": nodes})


def plain_conversation(base_ns: int, conversation_id: str = "tui-plain") -> Any:
    """No memories, so no divergence: two timed replies and one without a timestamp."""
    nodes = [
        {"role": "user", "content": "Say hello.", "timestamp": base_ns + 1},
        {"role": "assistant", "content": "Hello!", "timestamp": base_ns + 2},
        {"role": "user", "content": "Count to three.", "timestamp": base_ns + 3},
        {"role": "assistant", "content": "One, two, three.", "timestamp": base_ns + 4},
        {"role": "user", "content": "Thanks."},
        {"role": "assistant", "content": "You're welcome."},
    ]
    return parse_conversation({"id": conversation_id, "nodes": nodes})


async def ingest(review: ReviewProcess, conversation: conversation_pb2.Conversation) -> None:
    async with AsyncReviewClient(review.address) as client:
        await client.ingest(conversation)


async def ingest_and_wait(
    review: ReviewProcess, conversation: conversation_pb2.Conversation, candidates: int
) -> None:
    """Ingest, then wait until the Review holds `candidates` candidates (scoring is async)."""
    async with AsyncReviewClient(review.address) as client:
        await client.ingest(conversation)
        deadline = time.monotonic() + SCORING_TIMEOUT_S
        while len(await client.list_candidates()) < candidates:
            if time.monotonic() > deadline:
                raise AssertionError(f"{candidates} candidates not scored in time")
            await asyncio.sleep(0.1)


async def wait_for(
    pilot: Pilot[Any],
    condition: Callable[[], bool],
    what: str,
    timeout: float = 30.0,
) -> None:
    """Let the app run until `condition()` holds; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


def text_of(pilot: Pilot[Any], selector: str) -> str:
    """The plain text a Static widget shows."""
    return str(pilot.app.query_one(selector, Static).content)


def table_rows(pilot: Pilot[Any]) -> list[list[str]]:
    table = pilot.app.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


PET_NAMES = (
    "Biscuit", "Waffles", "Pumpernickel", "Zorro", "Clementine", "Bartholomew",
    "Quince", "Mochi", "Fennimore", "Tapioca", "Gingersnap", "Marzipan",
)  # fmt: skip


def pets_conversation(base_ns: int, count: int, conversation_id: str = "tui-pets") -> Any:
    """`count` replies, each stating a pet's name that only its memory gives."""
    nodes: list[dict[str, Any]] = []
    for index in range(count):
        nodes.append(
            {
                "role": "system",
                "content": f"Memory: the user's pet number {index + 1} is named "
                f"{PET_NAMES[index]}.",
                "memory": True,
            }
        )
    for index in range(count):
        nodes.append(
            {
                "role": "user",
                "content": f"What is my pet number {index + 1} called?",
                "timestamp": base_ns + 10 * index + 1,
            }
        )
        nodes.append(
            {
                "role": "assistant",
                "content": f"Your pet number {index + 1} is called {PET_NAMES[index]}.",
                "timestamp": base_ns + 10 * index + 2,
            }
        )
    return parse_conversation({"id": conversation_id, "nodes": nodes})


def repeated_conversation(base_ns: int, copies: int, conversation_id: str = "tui-same") -> Any:
    """The same memory-dependent reply `copies` times (a group of identical replies)."""
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "Memory: the user's cat is named Biscuit.", "memory": True}
    ]
    for index in range(copies):
        nodes.append(
            {
                "role": "user",
                "content": "What is my cat called?",
                "timestamp": base_ns + 10 * index + 1,
            }
        )
        nodes.append(
            {
                "role": "assistant",
                "content": "Your cat is named Biscuit.",
                "timestamp": base_ns + 10 * index + 2,
            }
        )
    return parse_conversation({"id": conversation_id, "nodes": nodes})


UNICODE_REPLY = "你的猫叫小饼干 🐱🍪, café naïve e\u0301, 👩\u200d👩\u200d👧!"
"""CJK, emoji (one a ZWJ family), precomposed and combining accents: what garbled before."""


def unicode_conversation(base_ns: int, conversation_id: str = "tui-unicode") -> Any:
    nodes: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": "Memory: 用户的猫叫小饼干 (the cat is Biscuit).",
            "memory": True,
        },
        {"role": "user", "content": "我的猫叫什么?", "timestamp": base_ns + 1},
        {"role": "assistant", "content": UNICODE_REPLY, "timestamp": base_ns + 2},
    ]
    return parse_conversation({"id": conversation_id, "nodes": nodes})


def two_memories_conversation(base_ns: int, conversation_id: str = "tui-two-memories") -> Any:
    """Two memories and two replies, each leaning on one of them."""
    nodes: list[dict[str, Any]] = [
        {"role": "system", "content": "Memory: the user's cat is named Biscuit.", "memory": True},
        {
            "role": "system",
            "content": "Memory: the user's sister is called Marisol.",
            "memory": True,
        },
        {"role": "user", "content": "What is my cat called?", "timestamp": base_ns + 1},
        {"role": "assistant", "content": "Your cat is named Biscuit.", "timestamp": base_ns + 2},
        {"role": "user", "content": "And my sister?", "timestamp": base_ns + 3},
        {
            "role": "assistant",
            "content": "Your sister is called Marisol.",
            "timestamp": base_ns + 4,
        },
    ]
    return parse_conversation({"id": conversation_id, "nodes": nodes})


class Notes:
    """Every notification the app raises, in order (wraps `App.notify` of one app)."""

    def __init__(self, app: Any) -> None:
        self.messages: list[str] = []
        original = app.notify

        def notify(message: str, *args: Any, **kwargs: Any) -> None:
            self.messages.append(str(message))
            original(message, *args, **kwargs)

        app.notify = notify

    def containing(self, text: str) -> list[str]:
        return [m for m in self.messages if text in m]


def body_text(pilot: Pilot[Any], selector: str) -> str:
    """The plain text of a Static that may hold rich Text."""
    content = pilot.app.query_one(selector, Static).content
    return content.plain if hasattr(content, "plain") else str(content)


def screen_text(pilot: Pilot[Any], selector: str) -> str:
    """The plain text of a Static on the screen in front (a prompt, the legend)."""
    content = pilot.app.screen.query_one(selector, Static).content
    return content.plain if hasattr(content, "plain") else str(content)
