"""The layers of design.md §8 and conventions.md, checked on the source: the services never
import each other (they talk through the generated stubs), the clients import neither
service, and the Scorer's domain modules import no gRPC."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "scorer_service": REPO / "scorer_service",
    "review_service": REPO / "review_service",
    "ftreview": REPO / "clients" / "ftreview",
}
FORBIDDEN = {
    "scorer_service": {"review_service"},
    "review_service": {"scorer_service"},
    "ftreview": {"scorer_service", "review_service"},
}
# Plain Python: tokenization, divergence, the conversation model and the backend port.
SCORER_DOMAIN = ["conversation", "tokenization", "scoring", "alternate", "errors", "backends/base"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", list(PACKAGES))
def test_packages_import_only_what_their_layer_allows(package: str) -> None:
    offenders = []
    for path in sorted(PACKAGES[package].rglob("*.py")):
        if "v1" in path.relative_to(PACKAGES[package]).parts:
            continue
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders


@pytest.mark.parametrize("module", SCORER_DOMAIN)
def test_scorer_domain_imports_no_grpc(module: str) -> None:
    names = _imports(PACKAGES["scorer_service"] / f"{module}.py")
    assert not {n for n in names if n.split(".")[0] in {"grpc", "grpc_status", "grpc_health"}}
