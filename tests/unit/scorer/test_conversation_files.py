"""Conversation files: every documented shape, exact timestamps, errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftreview.conversations import (
    ConversationFileError,
    load_conversations,
    parse_conversation,
    parse_timestamp_ns,
)
from ftreview.core.wire import timestamp_ns
from ftreview.v1 import conversation_pb2 as pb
from google.protobuf import json_format


def test_fixtures_load_with_nanosecond_timestamps(fixtures_dir: Path) -> None:
    (biscuit,) = load_conversations(fixtures_dir / "biscuit.json")
    assert biscuit.id == "biscuit"
    reply = biscuit.nodes[-1]
    assert reply.leaf.role == pb.ROLE_ASSISTANT
    assert timestamp_ns(reply.timestamp) == 1772355611_000000007
    memory_branch = biscuit.nodes[1]
    assert memory_branch.memory and memory_branch.branch.label == "recalled memories"
    assert timestamp_ns(memory_branch.branch.children[0].timestamp) == 1772355600_000000101


def test_bare_node_list_gets_a_stable_derived_id(fixtures_dir: Path) -> None:
    path = fixtures_dir / "old-log-unset-timestamps.json"
    first = load_conversations(path)[0]
    again = load_conversations(path)[0]
    assert first.id.startswith("c-") and first.id == again.id
    assert timestamp_ns(first.nodes[0].timestamp) == 0  # missing means unset
    changed = json.loads(path.read_text())
    changed[0]["content"] = "You are a terse assistant."
    assert parse_conversation(changed).id != first.id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T09:00:00Z", 1772355600_000000000),
        ("2026-03-01T09:00:00.5Z", 1772355600_500000000),
        ("2026-03-01T09:00:00.123456789Z", 1772355600_123456789),
        ("2026-03-01T10:00:00.000000001+01:00", 1772355600_000000001),
        (1772355600_000000042, 1772355600_000000042),
        ("1772355600000000042", 1772355600_000000042),
        (None, 0),
    ],
)
def test_timestamps_parse_exactly(text: object, expected: int) -> None:
    assert parse_timestamp_ns(text, "here") == expected


def test_jsonl_and_protobuf_json_mapping(tmp_path: Path, fixtures_dir: Path) -> None:
    (biscuit,) = load_conversations(fixtures_dir / "biscuit.json")
    proto_json = json_format.MessageToJson(biscuit, indent=None)
    lines = [proto_json, json.dumps(json.loads((fixtures_dir / "no-memories.json").read_text()))]
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(lines) + "\n")
    first, second = load_conversations(path)
    assert first == biscuit
    assert second.id == "no-memories"


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        ('{"id": "x", "nodes": [', "bad.json:1:", "malformed JSON"),
        (
            '{"id": "x", "nodes": [{"role": "robot", "content": "hi"}]}',
            "bad.json: nodes[0]",
            "unknown role 'robot'",
        ),
        (
            '{"id": "x", "nodes": [{"role": "user", "content": "hi"}, '
            '{"branch": "m", "memory": true, "children": []}]}',
            "bad.json: nodes[1]",
            "a branch needs a non-empty list of children",
        ),
        (
            '[{"branch": "m", "children": [{"role": "user", "content": "a", '
            '"timestamp": "yesterday"}]}]',
            "bad.json: nodes[0].children[0]",
            "timestamp 'yesterday'",
        ),
        (
            '[{"role": "user", "content": "a", "timestamp": "2026-02-30T00:00:00Z"}]',
            "bad.json: nodes[0]",
            "day is out of range",
        ),
    ],
)
def test_bad_input_says_where_and_what(tmp_path: Path, content: str, where: str, what: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConversationFileError) as caught:
        load_conversations(path)
    message = str(caught.value)
    assert (
        message.startswith(str(tmp_path / where.split(":")[0])) and where.split(" ")[-1] in message
    )
    assert what in message


def test_jsonl_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text('[{"role": "user", "content": "a"}]\n\n[{"role": "bot", "content": "b"}]\n')
    with pytest.raises(ConversationFileError, match=r"many\.jsonl:3: nodes\[0\]: unknown role"):
        load_conversations(path)
