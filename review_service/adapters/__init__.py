"""The Review's ports made real: the SQLite store, the Scorer over gRPC, the fine-tuning
endpoint and its jobs route over HTTP, and the wire reading of conversations.

Adapters implement `domain.ports`; they never import the use cases (`app`) or the API.
"""
