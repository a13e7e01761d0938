"""Telling the Scorer about a promoted adapter: `Scorer.LoadAdapter` through the client
library's blocking `ScorerClient`.

Invariant: the trainer talks to the Scorer only through the client library (its channel,
TLS and bearer token are the library's), and a Scorer that cannot be reached never fails a
job: the caller gets a one-line reason instead, which the job's detail shows (the adapter
stays promoted; the Scorer can load it later).
"""

from __future__ import annotations

import grpc
from ftreview.client import ScorerClient
from ftreview.errors import FtreviewError


class ScorerLink:
    """The Scorer at `address`, told of each promotion on a channel of its own that lives
    for that one call (promotions are minutes apart); `timeout` bounds the call."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._token = token
        self._credentials = credentials

    def __call__(self, path: str, name: str) -> str:
        """ "" once the Scorer has loaded the adapter, else why it was not told."""
        try:
            with ScorerClient(
                self.address,
                long_timeout=self.timeout,
                credentials=self._credentials,
                token=self._token,
            ) as scorer:
                scorer.load_adapter(path, name=name)
        except FtreviewError as error:
            status = error.code.name if error.code else "error"
            details = error.message or str(error.__cause__ or error)
            return f"LoadAdapter at {self.address} failed ({status}): {details}"
        return ""
