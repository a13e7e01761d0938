"""Every Python package in the tree is one the project installs (a forgotten subpackage
works in the editable checkout and breaks in a real install)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    roots = {"ftreview": REPO / "clients" / "ftreview"}
    roots |= {name: REPO / name for name in ("scorer_service", "review_service", "trainer_service")}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((name, *relative)))
    assert found == listed
