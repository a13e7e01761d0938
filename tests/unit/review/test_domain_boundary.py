"""The Review's domain speaks plain Python: no module of it imports protobuf, gRPC or the
generated stubs (checked on the source, and by importing it in a fresh interpreter); the
conversion at the boundary refuses what the domain cannot hold, naming the field."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from ftreview.core.errors import InvalidInput
from ftreview.v1 import conversation_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from review_service.adapters.scorer_wire import conversation_from_wire
from review_service.api.convert import timestamp_from_wire
from review_service.domain.errors import InvalidArgument

PACKAGE = Path(__file__).resolve().parents[3] / "review_service"
# Every module of the domain and the use cases: the layers that never see the wire.
DOMAIN = sorted(
    str(path.relative_to(PACKAGE).with_suffix(""))
    for layer in ("domain", "app")
    for path in (PACKAGE / layer).glob("*.py")
)
WIRE = ("grpc", "google.protobuf", "google.rpc", "ftreview.v1", "ftreview.core.wire", "httpx")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(("." * node.level) + node.module)
    return names


@pytest.mark.parametrize("module", DOMAIN)
def test_a_domain_module_imports_no_wire_code(module: str) -> None:
    names = _imports(PACKAGE / f"{module}.py")
    wire = {n for n in names if n.startswith(WIRE) or n.endswith(("_pb2", "_pb2_grpc"))}
    outer = {n for n in names if n.startswith(("review_service.api", "review_service.adapters"))}
    assert not wire | outer


def test_importing_the_use_cases_loads_no_review_or_scorer_messages() -> None:
    code = (
        "import sys; import review_service.app.review; "
        "print(sorted(m for m in sys.modules if m.startswith('ftreview.v1.') and "
        "m.split('.')[-1] in ('review_pb2', 'scorer_pb2', 'conversation_pb2', 'review_pb2_grpc')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("seconds", "nanos", "why"),
    [
        (253_402_300_800, 0, "not a valid timestamp"),  # year 10000
        (-62_135_596_801, 0, "not a valid timestamp"),  # before year 1
        (5, -1, "not a valid timestamp"),
        (5, 1_000_000_000, "not a valid timestamp"),
        (9_300_000_000, 0, "int64"),  # a valid Timestamp (year 2264), beyond int64 ns
        (-9_300_000_000, 0, "int64"),
    ],
)
def test_a_timestamp_the_domain_cannot_hold_is_refused_naming_the_field(
    seconds: int, nanos: int, why: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        timestamp_from_wire(Timestamp(seconds=seconds, nanos=nanos), "timestamps[2]")
    assert caught.value.field == "timestamps[2]" and why in caught.value.description


def test_edges_of_the_range_are_kept_exactly() -> None:
    assert (
        timestamp_from_wire(Timestamp(seconds=9_223_372_036, nanos=854_775_807), "t") == 2**63 - 1
    )
    assert timestamp_from_wire(Timestamp(seconds=-9_223_372_037, nanos=145_224_192), "t") == -(
        2**63
    )


def test_a_conversation_with_an_out_of_range_reply_is_refused_at_its_node() -> None:
    far = pb.Node(leaf=pb.Leaf(role=pb.ROLE_ASSISTANT, content="hi"))
    far.timestamp.seconds = 9_300_000_000
    conv = pb.Conversation(
        id="c", nodes=[pb.Node(leaf=pb.Leaf(role=pb.ROLE_USER, content="q")), far]
    )
    # The shared model's validator refuses it (the same rule the Scorer applies).
    with pytest.raises(InvalidInput) as caught:
        conversation_from_wire(conv)
    assert caught.value.field == "conversation.nodes[1].timestamp"
