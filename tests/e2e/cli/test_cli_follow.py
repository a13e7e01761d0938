"""`ftreview follow` as a user runs it, against a real Review (a process that the test stops
and starts again on the same port) and the module's real Scorer: files written into a
folder are ingested and scored, an appended turn costs only its new reply, a half-written
file waits, a Review restart loses nothing, and Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ftreview.client import ReviewClient

from tests.e2e.cli.chats import FACTS, chat, write_chat
from tests.e2e.cli.conftest import FTREVIEW, Lines, Stack
from tests.support.services import ReviewProcess

pytestmark = pytest.mark.model

BASE = 1_782_000_000_000_000_000
EVENT_TIMEOUT_S = 180.0


class Follow:
    """`ftreview follow --json FOLDER` as a child process, read one event at a time."""

    def __init__(self, review: ReviewProcess, folder: Path) -> None:
        self.process = subprocess.Popen(
            [*FTREVIEW, "follow", "--json", "--settle", "60", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "FTREVIEW_REVIEW_ADDR": review.address},
        )  # fmt: skip
        self.out, self.err = Lines(self.process.stdout), Lines(self.process.stderr)
        self.seen: list[dict[str, Any]] = []
        line = self.err.next(time.monotonic() + EVENT_TIMEOUT_S)
        assert line and line.startswith("following "), line

    def until(self, event: str, **fields: Any) -> dict[str, Any]:
        """The next event of that kind with those fields (earlier ones are kept in `seen`)."""
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            line = self.out.next(deadline)
            assert line, f"no {event} {fields} event; seen: {self.seen}"
            shown = json.loads(line)
            self.seen.append(shown)
            if shown["event"] == event and all(shown.get(k) == v for k, v in fields.items()):
                return shown


def _seen(following: Follow) -> str:
    """Every event read so far, whole: a failure shows the sequence that led to it."""
    return "\n".join(json.dumps(event) for event in following.seen)


@pytest.fixture
def review(stack: Stack, tmp_path: Path) -> Iterator[ReviewProcess]:
    process = ReviewProcess(home=tmp_path / "home", scorer_address=stack.scorer)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def follow(review: ReviewProcess, tmp_path: Path) -> Iterator[tuple[Follow, Path]]:
    folder = tmp_path / "chats"
    folder.mkdir()
    following = Follow(review, folder)
    yield following, folder
    if following.process.poll() is None:
        following.process.kill()
        following.process.wait(timeout=30)


def test_a_file_written_is_scored_and_an_appended_turn_costs_only_its_reply(
    follow: tuple[Follow, Path], review: ReviewProcess
) -> None:
    following, folder = follow
    path = write_chat(folder / "a.json", chat("follow-a", BASE, FACTS[:2]))
    ingested = following.until("ingested", conversation_id="follow-a")
    assert ingested["path"] == str(path) and ingested["activity_id"]
    scored = following.until("scored", conversation_id="follow-a")
    assert (scored["state"], scored["new_candidates"]) == ("succeeded", 2)
    with ReviewClient(review.address) as client:
        listed = client.list_candidates(conversation_id="follow-a")
        assert sorted(c.content for c in listed) == sorted(reply for _, _, reply in FACTS[:2])

    write_chat(path, chat("follow-a", BASE, FACTS[:3]))  # the agent appended a turn
    following.until("ingested", conversation_id="follow-a")
    scored = following.until("scored", conversation_id="follow-a")
    assert scored["new_candidates"] == 1
    with ReviewClient(review.address) as client:
        (last_run,) = client.get_stats("follow-a").conversations
        assert (last_run.responses_seen, last_run.responses_scored) == (3, 1)

    following.process.send_signal(signal.SIGINT)
    assert following.process.wait(timeout=60) == 0
    assert following.until("stopped")


def test_a_half_written_file_waits_and_a_review_restart_loses_nothing(
    follow: tuple[Follow, Path], review: ReviewProcess
) -> None:
    following, folder = follow
    text = json.dumps(chat("follow-b", BASE + 1_000_000, FACTS[3:5]))
    half = folder / "b.json"
    half.write_text(text[: len(text) // 2])
    waiting = following.until("waiting")
    assert waiting["path"] == str(half)
    half.write_text(text)  # the agent finished writing it
    following.until("ingested", conversation_id="follow-b")
    scored = following.until("scored", conversation_id="follow-b")
    assert (scored["state"], scored["new_candidates"]) == ("succeeded", 2), _seen(following)
    assert not [e for e in following.seen if e["event"] == "refused"]

    review.stop()
    following.until("review_down")
    # Written while the Review is down: queued, and sent once it is back.
    write_chat(folder / "c.json", chat("follow-c", BASE + 2_000_000, FACTS[5:]))
    review.start()
    following.until("review_back")
    following.until("ingested", conversation_id="follow-c")
    scored = following.until("scored", conversation_id="follow-c")
    assert (scored["state"], scored["new_candidates"]) == ("succeeded", 1), _seen(following)
    with ReviewClient(review.address) as client:
        conversations = {c.conversation_id for c in client.list_candidates()}
    assert conversations == {"follow-b", "follow-c"}
    assert following.process.poll() is None  # still following

    following.process.send_signal(signal.SIGINT)
    assert following.process.wait(timeout=60) == 0
