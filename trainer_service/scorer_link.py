"""Telling the Scorer about a promoted adapter: `Scorer.LoadAdapter` over gRPC.

Invariant: the trainer talks to the Scorer only through the generated stubs, and a Scorer
that cannot be reached never fails a job: the caller gets a one-line reason instead, which
the job's detail shows (the adapter stays promoted; the Scorer can load it later).
"""

from __future__ import annotations

import grpc
from ftreview.v1 import scorer_pb2, scorer_pb2_grpc


class ScorerLink:
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
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._credentials = credentials

    def __call__(self, path: str, name: str) -> str:
        """ "" once the Scorer has loaded the adapter, else why it was not told."""
        channel = (
            grpc.secure_channel(self.address, self._credentials)
            if self._credentials is not None
            else grpc.insecure_channel(self.address)
        )
        try:
            stub = scorer_pb2_grpc.ScorerStub(channel)
            stub.LoadAdapter(
                scorer_pb2.LoadAdapterRequest(path=path, name=name),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            status = code.name if code else "error"
            return f"LoadAdapter at {self.address} failed ({status}): {details}"
        finally:
            channel.close()
        return ""
