"""The trainer's settings: flags first, then `learn.*` in `<home>/config.json5`, then defaults.

Invariant: a guard limit comes from exactly one place, in that order, and a config file
that cannot be read or holds a wrong value stops the start with one line naming the file
and the key (never a silent default).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import json5

HOME_ENV = "FTREVIEW_HOME"
CONFIG_NAME = "config.json5"
# `learn.max_forgetting`, a floor on generic log-likelihood that earlier versions read (and
# the Review's template still writes), is not read: the guard measures drift instead.
GUARD_KEYS = ("target_divergence", "max_drift", "min_retention")


class TrainerConfigError(ValueError):
    pass


def default_home() -> Path:
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".consciousness"


def guard_limits(home: Path) -> dict[str, float]:
    """`learn.target_divergence` / `learn.max_drift` from `<home>/config.json5`, if set."""
    path = home / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise TrainerConfigError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        document: Any = json5.loads(text)
    except Exception as error:  # json5 raises its own decode error with the position
        raise TrainerConfigError(f"{path} is not valid JSON5: {error}") from error
    learn = document.get("learn") if isinstance(document, dict) else None
    if not isinstance(learn, dict):
        return {}
    limits: dict[str, float] = {}
    for key in GUARD_KEYS:
        if key not in learn:
            continue
        value = learn[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise TrainerConfigError(f"{path}: learn.{key} must be a number, got {value!r}")
        if value < 0 or (key == "target_divergence" and value == 0):
            raise TrainerConfigError(f"{path}: learn.{key} must be above 0, got {value!r}")
        limits[key] = float(value)
    return limits
