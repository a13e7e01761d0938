"""The numbers every ftreview party agrees on, in one place.

Invariant: a port, a size limit, a threshold or a grace period is written here once and
imported everywhere else, so a server and the client that calls it can never disagree on
where to meet or how large a message may be.
"""

from __future__ import annotations

HOST = "127.0.0.1"
SCORER_PORT = 50051
REVIEW_PORT = 50052
TRAINER_PORT = 50053
SCORER_ADDRESS = f"{HOST}:{SCORER_PORT}"
REVIEW_ADDRESS = f"{HOST}:{REVIEW_PORT}"
TRAINER_ADDRESS = f"{HOST}:{TRAINER_PORT}"

# Both directions, on every server and client channel: a 1 MB conversation fits many times
# over, and a runaway message is refused by gRPC (RESOURCE_EXHAUSTED) before it is parsed.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# The divergence (nats/token) above which a reply becomes a candidate when none is configured.
DEFAULT_THRESHOLD = 1e-7

# Branches nested deeper than this are refused with INVALID_ARGUMENT naming the node. Each
# branch level costs two protobuf message levels (Node, Branch) and protobuf stops decoding
# at 100, so 32 leaves room below the decoder's own limit (which the status interceptor
# also turns into INVALID_ARGUMENT) and far above what any chat needs.
MAX_NESTING_DEPTH = 32
# How large a conversation any service takes; larger ones are refused at the call, before
# tokenization. Two million characters is about half a million tokens: more than any
# engine's context, and already minutes of tokenizing; the message count bounds the
# per-message bookkeeping.
MAX_CONTENT_CHARS = 2_000_000
MAX_MESSAGES = 20_000

# How long calls in flight may run on after SIGTERM before they are cancelled.
SCORER_GRACE_SECONDS = 30.0
REVIEW_GRACE_SECONDS = 5.0
TRAINER_GRACE_SECONDS = 30.0
