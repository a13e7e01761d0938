"""A candidate's grounding on the wire: computed from the domain candidate each time it is
sent (nothing stored), verdict and spans."""

from __future__ import annotations

from ftreview.v1 import review_pb2

from review_service.api.convert import candidate_to_wire
from review_service.domain.model import Candidate, MemoryAttribution, TokenValue


def test_candidate_to_wire_carries_the_verdict_and_its_spans() -> None:
    content = "It's on 12 March with Dr. Haller."
    values = {"12": 3.0, " March": 3.0, " Hall": 6.0}
    pieces = ["It", "'s", " on", " ", "12", " March", " with", " Dr", ".", " Hall", "er", "."]
    tokens = tuple(TokenValue(0, p, 0.0, 0.0, values.get(p, 0.1)) for p in pieces)
    memory = MemoryAttribution("nodes[1]", "Dentist on 18 March with Dr. Haller.", 1.2)
    candidate = Candidate(7, "c", content, (), 1.0, 6.0, tokens, memories=(memory,))
    wire = candidate_to_wire(candidate)
    assert wire.grounding == review_pb2.GROUNDING_CONTRADICTS_MEMORY
    spans = [(content[s.start : s.end], s.kind, s.node_path, s.value) for s in wire.grounding_spans]
    assert spans == [
        ("12 March", review_pb2.GROUNDING_CONTRADICTS_MEMORY, "nodes[1]", "18 March"),
        ("Haller", review_pb2.GROUNDING_SUPPORTED, "nodes[1]", "Haller"),
    ]


def test_a_candidate_without_per_token_values_is_supported_with_no_spans() -> None:
    wire = candidate_to_wire(Candidate(7, "c", "Biscuit.", (), 1.0, 1.0))
    assert (wire.grounding, list(wire.grounding_spans)) == (review_pb2.GROUNDING_SUPPORTED, [])
