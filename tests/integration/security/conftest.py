"""A Scorer on the session's embedded model that serves TLS and requires a bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scorer_service.backends.local import LocalBackend
from scorer_service.server import ScorerConfig, ScorerServer, create_server
from tests.support.certificates import Certificate, self_signed

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
async def locked_scorer(
    embedded_backend: LocalBackend, certificate: Certificate
) -> AsyncIterator[ScorerServer]:
    config = ScorerConfig(
        listen="127.0.0.1:0",
        tls_cert=str(certificate.cert),
        tls_key=str(certificate.key),
        token=TOKEN,
    )
    running, _ = await create_server(
        config, backend=embedded_backend, tokenizer=embedded_backend.tokenizer
    )
    await running.start()
    yield running
    await running.stop(None)


@pytest.fixture(scope="module")
def locked_scorer_address(locked_scorer: ScorerServer) -> str:
    return f"127.0.0.1:{locked_scorer.port}"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path
