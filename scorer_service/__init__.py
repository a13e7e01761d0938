"""The Scorer service: renders conversations to token ids, asks a serving engine for the
log-probabilities of the assistant replies with and without memories, and reports each
reply's divergence. See docs/design.md §3–§5."""
