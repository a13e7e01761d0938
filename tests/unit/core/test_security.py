"""The shared security settings without a network: token sources, the token check, the
TLS pair rule and the warning for plain text beyond loopback."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest
from ftreview.core.security import (
    SecurityConfigError,
    ServerSecurity,
    is_loopback,
    read_token_file,
    resolve_token,
    token_matches,
)


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.0.0.2:0", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.1.2.3:50051", False),
        ("scorer.internal:50051", False),
    ],
)
def test_is_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_a_token_file_is_read_without_its_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("abc123\n")
    assert read_token_file(path) == "abc123"


@pytest.mark.parametrize(("text", "reason"), [("\n", "is empty"), ("a b", "whitespace")])
def test_a_token_file_that_cannot_be_a_token_is_refused(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "token"
    path.write_text(text)
    with pytest.raises(SecurityConfigError, match=reason):
        read_token_file(path)


def test_a_missing_token_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match=r"cannot read the token file .*nope"):
        read_token_file(tmp_path / "nope")


def test_the_file_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTREVIEW_TOKEN", "from-env")
    assert resolve_token(None) == "from-env"
    path = tmp_path / "token"
    path.write_text("from-file")
    assert resolve_token(path) == "from-file"
    monkeypatch.setenv("FTREVIEW_TOKEN", "  ")
    assert resolve_token(None) is None


@pytest.mark.parametrize(
    ("metadata", "verdict"),
    [
        ((("authorization", "Bearer t0k"),), True),
        ((("authorization", "bearer t0k"),), True),
        ((("authorization", "Bearer t0kx"),), False),
        ((("authorization", "Bearer "),), False),
        ((("authorization", "Basic t0k"),), False),
        ((("x-other", "Bearer t0k"),), None),
        ((), None),
        (None, None),
    ],
)
def test_token_matches(metadata: object, verdict: bool | None) -> None:
    assert token_matches(metadata, "t0k") is verdict


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match="go together"):
        ServerSecurity(tls_cert=str(tmp_path / "cert.pem"))
    with pytest.raises(SecurityConfigError, match="go together"):
        ServerSecurity(tls_key=str(tmp_path / "key.pem"))


def test_pem_files_are_read_at_once(tmp_path: Path) -> None:
    not_pem = tmp_path / "cert.pem"
    not_pem.write_text("hello")
    with pytest.raises(SecurityConfigError, match="not PEM"):
        ServerSecurity(tls_cert=str(not_pem), tls_key=str(not_pem))
    with pytest.raises(SecurityConfigError, match="cannot read the TLS key"):
        ServerSecurity(tls_cert=str(not_pem), tls_key=str(tmp_path / "none.pem"))


@pytest.mark.parametrize(("listen", "warned"), [("0.0.0.0:0", True), ("127.0.0.1:0", False)])
async def test_plain_text_beyond_loopback_is_logged(
    caplog: pytest.LogCaptureFixture, listen: str, warned: bool
) -> None:
    log = logging.getLogger("test_auth")
    server = grpc.aio.server()
    try:
        with caplog.at_level(logging.WARNING, logger="test_auth"):
            assert ServerSecurity(token="t").bind(server, listen, log) > 0
    finally:
        await server.stop(None)
    messages = [r.getMessage() for r in caplog.records if r.name == "test_auth"]
    if warned:
        assert messages and "without TLS" in messages[0] and "bearer token" in messages[0]
    else:
        assert messages == []
