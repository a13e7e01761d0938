"""A self-signed certificate for 127.0.0.1 and localhost, made with `openssl` for a test."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificate:
    cert: Path  # also the CA a client trusts: it signed itself
    key: Path


def self_signed(folder: Path, name: str = "server") -> Certificate:
    # .ci/run's machine has openssl; a missing one is a broken environment, not a pass.
    assert shutil.which("openssl"), "openssl is not installed (apt-get install -y openssl)"
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Certificate(cert, key)
