"""Versioned adapters under `<home>/adapters/`, and the pointer to the one in use.

Invariants:
- a job writes only into its staging folder (`.staging-<job>`); a version folder `vN` is
  created by renaming a complete staging folder, so `vN` is never half-written;
- `current.json` (`{"name": "vN", "path": "/abs/adapters/vN"}`) is replaced atomically
  (temporary file, fsync, rename, fsync of the folder): a reader sees the old pointer or the
  new one, never a torn file, and a crash before the rename promotes nothing;
- version numbers only grow, so a job re-run after a crash never overwrites a version;
- staging folders left by a killed job are removed at start;
- after a promotion only the newest `keep` versions stay (0 keeps all), and never is the one
  `current.json` names removed: a learn job continues from the served version and a
  consolidation rebuilds from the base model, so an older version serves only to go back
  to it, and each is ~20 MB (LoRA r16 on all linear modules of the 135M model) that a
  trainer running for months would otherwise pile up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
_VERSION = re.compile(r"^v(\d+)$")
STAGING_PREFIX = ".staging-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Versions kept after a promotion unless the trainer is told otherwise (--keep-adapters).
KEEP_DEFAULT = 5


class AdapterVersions:
    def __init__(self, home: Path, keep: int = KEEP_DEFAULT) -> None:
        self.keep = keep
        self.root = (home / "adapters").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.pointer = self.root / "current.json"

    def remove_leftovers(self) -> list[str]:
        removed = []
        for path in self.root.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        return removed

    def staging(self, job_id: str) -> Path:
        path = self.root / f"{STAGING_PREFIX}{job_id}"
        shutil.rmtree(path, ignore_errors=True)
        return path

    def _numbers(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := _VERSION.match(p.name)))

    def _next_name(self) -> str:
        return f"v{max(self._numbers(), default=0) + 1}"

    def prune(self) -> list[str]:
        """Remove the versions older than the newest `keep`, except the current one."""
        if self.keep <= 0:
            return []
        current = (self.current() or {}).get("name")
        removed = []
        for number in self._numbers()[: -self.keep]:
            name = f"v{number}"
            if name != current:
                shutil.rmtree(self.root / name, ignore_errors=True)
                removed.append(name)
        if removed:
            log.info("removed adapter versions %s (keeping the newest %d)", removed, self.keep)
        return removed

    def promote(self, staging: Path) -> tuple[str, Path]:
        """Make the complete `staging` folder the next version and point `current.json` at it."""
        name = self._next_name()
        target = self.root / name
        staging.rename(target)
        _fsync_dir(self.root)
        body = json.dumps({"name": name, "path": str(target)}).encode()
        fd, temporary = tempfile.mkstemp(prefix=".current.", dir=self.root)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.pointer)
        _fsync_dir(self.root)
        self.prune()
        return name, target

    def current(self) -> dict[str, str] | None:
        try:
            data = json.loads(self.pointer.read_text())
        except FileNotFoundError:
            return None
        return {"name": str(data["name"]), "path": str(data["path"])}
