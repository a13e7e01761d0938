"""Transport security as a client sees it: which CA to trust and which token to send.

Invariant: a client trusts the CA it is given, else `$FTREVIEW_TLS_CA`, else speaks plain
text; the token comes from a file or `$FTREVIEW_TOKEN`, never from a command-line value.
The rules shared with the servers (reading tokens and PEM files) live in
`ftreview.core.security`; the names a client needs are re-exported here.
"""

from __future__ import annotations

import os

import grpc

from ftreview.core.security import (
    TLS_CA_ENV,
    TOKEN_ENV,
    TOKEN_HINT,
    SecurityConfigError,
    channel_credentials,
    read_token_file,
    resolve_token,
)

__all__ = [
    "TLS_CA_ENV",
    "TOKEN_ENV",
    "TOKEN_HINT",
    "SecurityConfigError",
    "channel_credentials",
    "read_token_file",
    "resolve_channel_credentials",
    "resolve_token",
]


def resolve_channel_credentials(
    ca_path: str | os.PathLike[str] | None,
) -> grpc.ChannelCredentials | None:
    """`channel_credentials` of `ca_path`, else of `$FTREVIEW_TLS_CA`, else None."""
    return channel_credentials(ca_path or os.environ.get(TLS_CA_ENV) or None)
