"""The trainer's settings: flags first, then `learn.*` in `<home>/config.json5`, then defaults.

Invariant: a guard limit comes from exactly one place, in that order, and a config file
that cannot be read or holds a wrong value stops the start with one line naming the file
and the key (never a silent default). The file is parsed by the reader the Review uses too
(`ftreview.core.defaults.read_config`); the defaults live beside it.
"""

from __future__ import annotations

import math
from pathlib import Path

from ftreview.core.defaults import CONFIG_NAME, ConfigFileError, read_config

# `learn.max_forgetting`, a floor on generic log-likelihood that earlier versions read (and
# the Review's template still writes), is not read: the guard measures drift instead.
GUARD_KEYS = ("target_divergence", "max_drift", "min_retention")


class TrainerConfigError(ValueError):
    pass


def guard_limits(home: Path) -> dict[str, float]:
    """`learn.target_divergence` / `max_drift` / `min_retention` from `<home>/config.json5`,
    those that are set."""
    path = home / CONFIG_NAME
    try:
        document = read_config(path)
        learn = document.values("learn") if document is not None else {}
    except ConfigFileError as error:
        raise TrainerConfigError(str(error)) from error
    except OSError as error:
        raise TrainerConfigError(f"cannot read {path}: {error.strerror or error}") from error
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
