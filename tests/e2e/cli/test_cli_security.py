"""`ftreview` against services that serve TLS and require a bearer token, as a user runs it:
`ftreview serve --tls-cert --tls-key --token-file` starts both (passing the settings on, the
Review trusting the Scorer's certificate), and the other commands connect with `--tls-ca`
and `--token-file` or the environment. A missing or wrong token, or no CA, is one line on
stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.certificates import Certificate, self_signed
from tests.support.services import FREE_PORT, ServiceProcess, without_variables

pytestmark = pytest.mark.model

FTREVIEW = [sys.executable, "-m", "ftreview"]
TOKEN = "e2e-token-for-tests"
STARTUP_S = 300
# What a user's shell may set that the tests must not inherit: each test passes its own.
LOCAL_SETTINGS = ("FTREVIEW_TOKEN", "FTREVIEW_TLS_CA")


@dataclass
class LockedServices:
    scorer: str
    review: str
    certificate: Certificate
    token_file: Path
    home: Path
    finetune_url: str


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_SETTINGS}
    return {**env, **extra}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedServices]:
    folder = tmp_path_factory.mktemp("locked")
    certificate = self_signed(folder)
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    home = folder / "home"
    command = [
        *FTREVIEW, "--home", str(home), "--token-file", str(token_file), "serve", "--quiet",
        "--scorer-listen", FREE_PORT, "--review-listen", FREE_PORT,
        "--tls-cert", str(certificate.cert), "--tls-key", str(certificate.key),
    ]  # fmt: skip
    # The lines come once every service answers SERVING; the settings reach them from the
    # flags alone, not from a token or CA this process's environment may hold.
    serve = ServiceProcess(
        without_variables(command, *LOCAL_SETTINGS),
        serves=("scorer", "review", "trainer"),
        name="ftreview serve",
    ).start(STARTUP_S)
    try:
        addresses = serve.addresses
        yield LockedServices(
            addresses["scorer"], addresses["review"], certificate, token_file, home,
            addresses["trainer"],
        )  # fmt: skip
    finally:
        serve.stop(timeout_s=60)


def run(
    services: LockedServices, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = clean_env(FTREVIEW_REVIEW_ADDR=services.review)
    return subprocess.run(
        [*FTREVIEW, *args], capture_output=True, text=True, env={**base, **(env or {})},
        timeout=600,
    )  # fmt: skip


def secure(services: LockedServices) -> list[str]:
    return ["--tls-ca", str(services.certificate.cert), "--token-file", str(services.token_file)]


def test_candidates_with_the_ca_and_the_token_file(services: LockedServices) -> None:
    result = run(services, *secure(services), "candidates", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"candidates": []}


def test_the_environment_works_as_well_as_the_flags(services: LockedServices) -> None:
    result = run(
        services, "candidates", "--json",
        env={"FTREVIEW_TLS_CA": str(services.certificate.cert), "FTREVIEW_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"candidates": []}


def test_score_goes_through_the_review_to_the_scorer(
    services: LockedServices, fixtures_dir: Path
) -> None:
    # Ingest, the Review's activity stream, and the Review's own call to the
    # Scorer (made with the CA and token `serve` gave it) all carry TLS and the token.
    result = run(services, *secure(services), "score", str(fixtures_dir / "no-memories.json"),
                 "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (scored,) = json.loads(result.stdout)["runs"]
    assert scored["state"] == "succeeded", scored


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_a_wrong_or_missing_token_is_one_line_and_a_failure(
    services: LockedServices, tmp_path: Path, token: str | None
) -> None:
    args = ["--tls-ca", str(services.certificate.cert)]
    if token is not None:
        wrong = tmp_path / "wrong"
        wrong.write_text(token)
        args += ["--token-file", str(wrong)]
    result = run(services, *args, "candidates", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"ftreview: review at {services.review} refused the call: missing or wrong bearer "
        "token (set FTREVIEW_TOKEN or --token-file)"
    ]


def test_without_the_ca_it_says_to_pass_one(services: LockedServices) -> None:
    result = run(services, "--token-file", str(services.token_file), "candidates")
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert services.review in line and "--tls-ca" in line


def test_an_unreadable_token_file_is_a_usage_error(
    services: LockedServices, tmp_path: Path
) -> None:
    result = run(services, "--token-file", str(tmp_path / "missing"), "candidates")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("ftreview: cannot read the token file")


def test_the_trainer_serve_started_requires_the_token(services: LockedServices) -> None:
    # The Review's side (its Send and job following carry the token to this trainer) is
    # tested against a real locked trainer in tests/integration/trainer/test_trainer_token.py.
    jobs = f"{services.finetune_url}/jobs"
    refused = httpx.get(jobs, timeout=10)
    assert refused.status_code == 401 and "missing bearer token" in refused.json()["error"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(jobs, headers=bearer, timeout=10).json() == {"jobs": []}
