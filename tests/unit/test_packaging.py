"""What `pip install` gives: every package folder of the tree in the wheel (found, not
listed by hand, so a new subpackage cannot be forgotten), and extras that keep torch,
transformers and Textual out of the plain install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "transformers", "gguf", "accelerate", "trl", "peft", "datasets", "textual"}


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for stop in "[<>=!~ ":
            name = name.split(stop)[0]
        names.add(name.strip().lower())
    return names


def test_the_plain_install_needs_nothing_heavy() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    plain = _requirement_names(project["dependencies"])
    assert not plain & HEAVY, plain & HEAVY
    extras = project["optional-dependencies"]
    assert {"torch", "transformers"} <= _requirement_names(extras["scorer"])
    assert "textual" in _requirement_names(extras["tui"])
    assert {"trl", "peft"} <= _requirement_names(extras["trainer"])


def test_every_package_folder_is_in_the_wheel(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("ftreview-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n.rsplit("/", 1)[0] for n in archive.namelist() if n.endswith("__init__.py")}
    roots = {"ftreview": REPO / "clients" / "ftreview"}
    roots |= {p.name: p for p in REPO.glob("*_service") if (p / "__init__.py").is_file()}
    found = {
        "/".join((name, *init.parent.relative_to(root).parts))
        for name, root in roots.items()
        for init in root.rglob("__init__.py")
    }
    assert found == shipped
