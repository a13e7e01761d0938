"""The Review's use cases: ingest and re-score, decide, send, follow jobs, promote; the
in-memory view, the group-commit writer and the activity stream they report on.

It sees the outside only through `domain.ports`; it never imports an adapter or the API.
"""
