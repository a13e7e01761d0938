"""`ftreview follow`'s rules, with a recording ingest in place of the Review: only changed
conversations are sent, half-written files wait, a Review that is down loses nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from ftreview.errors import InvalidArgument, Unavailable
from ftreview.follow import Event, Follower, FollowEvent
from ftreview.v1 import conversation_pb2 as pb


def _chat(turns: int) -> dict[str, object]:
    nodes: list[dict[str, object]] = [
        {"role": "system", "content": "Memory: the cat is Biscuit.", "memory": True}
    ]
    for i in range(turns):
        nodes.append({"role": "user", "content": f"question {i}", "timestamp": 1_000 + 2 * i})
        nodes.append({"role": "assistant", "content": f"answer {i}", "timestamp": 1_001 + 2 * i})
    return {"id": "chat", "nodes": nodes}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[pb.Conversation] = []
        self.events: list[FollowEvent] = []
        self.fail_with: Exception | None = None
        self.changed = threading.Event()

    def ingest(self, conversation: pb.Conversation) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(conversation)
        self.changed.set()
        return f"act-{len(self.sent)}"

    def report(self, event: FollowEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[Event]:
        return [e.event for e in self.events]


def test_only_changed_conversations_are_sent(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps(_chat(1)))
    recorder = Recorder()
    follower = Follower([tmp_path], recorder.ingest, recorder.report)
    follower.scan([chat])
    follower.scan([chat])  # rewritten with the same content: nothing to send
    assert len(recorder.sent) == 1
    chat.write_text(json.dumps(_chat(2)))
    follower.scan([chat])
    assert len(recorder.sent) == 2
    assert len(recorder.sent[1].nodes) == 5


def test_a_half_written_file_waits_then_is_sent(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    whole = json.dumps(_chat(1))
    chat.write_text(whole[: len(whole) // 2])
    recorder = Recorder()
    follower = Follower([tmp_path], recorder.ingest, recorder.report, settle=60)
    follower.scan([chat])
    assert recorder.kinds() == [Event.WAITING]
    assert recorder.sent == []
    chat.write_text(whole)
    follower.scan([chat])
    assert len(recorder.sent) == 1 and recorder.kinds()[-1] == Event.INGESTED


def test_a_file_that_stays_bad_is_refused_once(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text('{"id": "x", "nodes": [{"role": "robot", "content": "hi"}]}')
    recorder = Recorder()
    follower = Follower([tmp_path], recorder.ingest, recorder.report, settle=0)
    for _ in range(3):
        follower.scan([chat])
    assert recorder.kinds() == [Event.WAITING, Event.REFUSED]
    assert "unknown role" in recorder.events[-1].detail


def test_a_review_that_is_down_loses_nothing(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps(_chat(1)))
    recorder = Recorder()
    recorder.fail_with = Unavailable("the Review service is not running")
    follower = Follower([tmp_path], recorder.ingest, recorder.report)
    follower.scan([chat])
    follower.scan([])
    assert recorder.kinds() == [Event.REVIEW_DOWN]
    recorder.fail_with = None
    follower.scan([])
    assert recorder.kinds() == [Event.REVIEW_DOWN, Event.REVIEW_BACK, Event.INGESTED]
    assert len(recorder.sent) == 1


def test_a_refused_conversation_is_not_sent_again_until_it_changes(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps(_chat(1)))
    recorder = Recorder()
    recorder.fail_with = InvalidArgument("timestamp 1001 belongs to conversation other")
    follower = Follower([tmp_path], recorder.ingest, recorder.report)
    follower.scan([chat])
    recorder.fail_with = None
    follower.scan([chat])
    assert recorder.kinds() == [Event.REFUSED]
    chat.write_text(json.dumps(_chat(2)))
    follower.scan([chat])
    assert len(recorder.sent) == 1


def test_run_follows_a_folder_until_stopped(tmp_path: Path) -> None:
    recorder = Recorder()
    follower = Follower([tmp_path], recorder.ingest, recorder.report)
    stop = threading.Event()
    thread = threading.Thread(target=follower.run, args=(stop,))
    thread.start()
    try:
        (tmp_path / "new.jsonl").write_text(json.dumps(_chat(1)) + "\n")
        assert recorder.changed.wait(timeout=20), "the new file was never ingested"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert recorder.sent[0].id == "chat"


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    follower = Follower([tmp_path / "nope"], Recorder().ingest, Recorder().report)
    with pytest.raises(FileNotFoundError, match="nope"):
        follower.run(threading.Event())
