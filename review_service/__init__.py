"""The Review service: candidates, the trained ledger and the `learn` config (design.md §6).

Layers, outermost first: `servicer` (gRPC in/out, status codes) -> `review` and the domain
modules (`model`, `conversation`, `sync`, `training`, `config`, `feed`; no grpc imports) ->
`ports` (store, scorer, fine-tuning endpoint interfaces) -> adapters (`store_sqlite`,
`scorer_grpc`, `finetune_http`). `server` wires them together.
"""

from __future__ import annotations
