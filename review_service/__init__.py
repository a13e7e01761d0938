"""The Review service: candidates, the trained ledger and the `learn` config (docs/design.md §6).

Layers, outermost first, one folder each (docs/design.md §8): `api` (gRPC in and out, the server
that wires everything) -> `app` (the use cases) and `adapters` (SQLite, the Scorer, the
fine-tuning endpoint), independent of each other -> `domain` (values, rules and ports; no
gRPC, protobuf, HTTP or SQL). An import-linter `layers` contract keeps the directions.
"""

from __future__ import annotations
