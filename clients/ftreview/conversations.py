"""Reading conversation files into `Conversation` messages (docs/design.md §2).

Invariants:
- importing is deterministic: the same file always gives the same messages and the same
  derived ids, so re-importing a file can never make a trained reply look new;
- timestamps keep all nine fractional digits (they are reply identities), and a missing
  timestamp is the epoch, "unset";
- bad input is refused whole, with a message that says where (file, line, node path) and
  what, never half-imported.

Accepted shapes, in `.json` (one conversation) or `.jsonl` (one per line):
  {"id": ..., "nodes": [...]}  or a bare list of nodes;
  leaf:   {"role", "content", "timestamp"?, "memory"?}
  branch: {"branch": label, "children": [...], "timestamp"?, "memory"?}
and the protobuf JSON mapping of `Conversation` ({"leaf": {...}} / {"branch": {...}} nodes).
"""

from __future__ import annotations

import calendar
import datetime
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftreview.core.conversation import derived_id
from ftreview.core.values import NS_PER_SECOND
from ftreview.core.wire import to_timestamp
from ftreview.v1 import conversation_pb2 as pb

ROLES: dict[str, pb.Role] = {
    "system": pb.ROLE_SYSTEM,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}
_PROTO_ROLES = {f"ROLE_{name.upper()}": value for name, value in ROLES.items()}

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


class ConversationFileError(ValueError):
    """A conversation file (or object) that cannot be imported; str() says where and what."""


def parse_timestamp_ns(value: object, where: str) -> int:
    """RFC 3339 (up to 9 fractional digits) or integer nanoseconds; None means unset (0)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ConversationFileError(f"{where}: timestamp must be RFC 3339 text or integer ns")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"-?\d+", value):
            return int(value)
        match = _RFC3339.match(value)
        if match:
            year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
            fraction = match.group(7) or ""
            try:
                datetime.datetime(year, month, day, hour, minute, second)
            except ValueError as exc:
                raise ConversationFileError(f"{where}: timestamp {value!r}: {exc}") from None
            seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
            if match.group(9):
                offset = (int(match.group(10)) * 60 + int(match.group(11))) * 60
                seconds -= offset if match.group(9) == "+" else -offset
            return seconds * NS_PER_SECOND + int(fraction.ljust(9, "0") or 0)
    raise ConversationFileError(
        f"{where}: timestamp {value!r} is neither RFC 3339 (e.g. 2026-03-01T09:00:00.5Z) "
        "nor integer nanoseconds"
    )


def parse_conversation(data: object, where: str = "") -> pb.Conversation:
    """One conversation from decoded JSON (an object with nodes, or a bare node list)."""
    prefix = f"{where}: " if where else ""
    if isinstance(data, list):
        conversation_id, nodes = "", data
    elif isinstance(data, dict):
        unknown = set(data) - {"id", "nodes"}
        if "nodes" not in data or unknown:
            raise ConversationFileError(
                f"{prefix}a conversation is an object with 'id' and 'nodes', or a list of nodes"
                + (f" (unexpected keys: {', '.join(sorted(unknown))})" if unknown else "")
            )
        conversation_id, nodes = data.get("id") or "", data["nodes"]
        if not isinstance(conversation_id, str):
            raise ConversationFileError(f"{prefix}id must be a string")
        if not isinstance(nodes, list):
            raise ConversationFileError(f"{prefix}nodes must be a list")
    else:
        raise ConversationFileError(f"{prefix}expected a conversation object or a list of nodes")
    conversation = pb.Conversation(id=conversation_id)
    for index, node in enumerate(nodes):
        conversation.nodes.append(_parse_node(node, f"{prefix}nodes[{index}]"))
    if not conversation.nodes:
        raise ConversationFileError(f"{prefix}the conversation has no nodes")
    if not conversation.id:
        conversation.id = derived_id(conversation)
    return conversation


def _parse_node(node: Any, path: str) -> pb.Node:
    if not isinstance(node, dict):
        raise ConversationFileError(f"{path}: a node must be an object")
    result = pb.Node()
    result.timestamp.CopyFrom(to_timestamp(parse_timestamp_ns(node.get("timestamp"), path)))
    memory = node.get("memory", False)
    if not isinstance(memory, bool):
        raise ConversationFileError(f"{path}: memory must be true or false")
    result.memory = memory
    if "leaf" in node or ("branch" in node and isinstance(node["branch"], dict)):
        return _parse_proto_json_node(node, result, path)
    if "branch" in node:
        label, children = node["branch"], node.get("children")
        if not isinstance(label, str):
            raise ConversationFileError(f"{path}: branch label must be a string")
        _check_keys(node, {"branch", "children", "timestamp", "memory"}, path)
        _fill_branch(result, label, children, path)
        return result
    _check_keys(node, {"role", "content", "timestamp", "memory"}, path)
    _fill_leaf(result, node.get("role"), node.get("content"), path, ROLES)
    return result


def _parse_proto_json_node(node: dict[str, Any], result: pb.Node, path: str) -> pb.Node:
    _check_keys(node, {"leaf", "branch", "timestamp", "memory"}, path)
    if "leaf" in node:
        leaf = node["leaf"]
        if not isinstance(leaf, dict):
            raise ConversationFileError(f"{path}.leaf: must be an object")
        _fill_leaf(result, leaf.get("role"), leaf.get("content"), f"{path}.leaf", _PROTO_ROLES)
    else:
        branch = node["branch"]
        _fill_branch(result, branch.get("label", ""), branch.get("children"), f"{path}.branch")
    return result


def _fill_leaf(
    result: pb.Node,
    role: object,
    content: object,
    path: str,
    roles: dict[str, pb.Role],
) -> None:
    if role not in roles:
        raise ConversationFileError(
            f"{path}: unknown role {role!r} (expected one of: {', '.join(roles)})"
        )
    if not isinstance(content, str):
        raise ConversationFileError(f"{path}: content must be a string")
    assert isinstance(role, str)
    result.leaf.role = roles[role]
    result.leaf.content = content


def _fill_branch(result: pb.Node, label: object, children: object, path: str) -> None:
    if not isinstance(children, list) or not children:
        raise ConversationFileError(f"{path}: a branch needs a non-empty list of children")
    result.branch.label = str(label)
    for index, child in enumerate(children):
        result.branch.children.append(_parse_node(child, f"{path}.children[{index}]"))


def _check_keys(node: dict[str, Any], allowed: set[str], path: str) -> None:
    unknown = set(node) - allowed
    if unknown:
        raise ConversationFileError(f"{path}: unknown keys: {', '.join(sorted(unknown))}")


def load_conversations(path: str | Path) -> list[pb.Conversation]:
    """Every conversation in a `.json` or `.jsonl` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversationFileError(f"{path}: cannot read: {exc}") from None
    if path.suffix == ".jsonl":
        return list(_load_lines(path, text.splitlines()))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversationFileError(
            f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}"
        ) from None
    return [parse_conversation(data, str(path))]


def _load_lines(path: Path, lines: Iterable[str]) -> Iterable[pb.Conversation]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConversationFileError(
                f"{path}:{number}:{exc.colno}: malformed JSON: {exc.msg}"
            ) from None
        yield parse_conversation(data, f"{path}:{number}")
