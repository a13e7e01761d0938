"""What the Review decides, in plain Python: candidates and their decisions, the trained
ledger, training jobs, the rules of additive sync, and the ports the rest plugs into.

No gRPC, no protobuf, no I/O (import-linter keeps it so). Results the Review only relays
from the Scorer or the trainer are held here as opaque bytes of their wire message.
"""
