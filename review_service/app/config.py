"""The `learn` section of `<home>/config.json5` (`~/.consciousness` unless set).

Invariants:
- the file is the user's: a write changes the characters of one value (or adds one key)
  and nothing else, so comments, key order, quoting, trailing commas and other sections
  stay byte-identical;
- a write is atomic (temporary file in the same folder, fsync, rename, fsync of the
  folder): a crash leaves the old file or the new one, never half of each; the temporary
  files a killed write left behind are removed when the service starts;
- a config file that is a symbolic link stays one: writes go to the file it points to;
- a file that does not parse is never overwritten; the error names its line and column;
- `threshold` is always a finite positive number.

The file is parsed by the one reader of the config, `ftreview.core.defaults.read_config`,
whose errors become `ConfigUnreadable` here. The edit works on the character span of the
value as json-five's model reports it, then re-parses the result to check that exactly the
intended value changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import string
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from ftreview.core.defaults import (
    DEFAULT_MAX_DRIFT,
    DEFAULT_REJECT_REASONS,
    DEFAULT_TARGET_DIVERGENCE,
    DEFAULT_THRESHOLD,
    ConfigDocument,
    ConfigFileError,
    key_name,
    parse_config,
    read_config,
    span,
)
from json5 import model as jm

from review_service.domain.errors import ConfigUnreadable, InvalidArgument

SECTION = "learn"


@dataclass(frozen=True)
class LearnConfig:
    # A reply is a candidate when its divergence (nats per token) is above this.
    threshold: float = DEFAULT_THRESHOLD
    # Where Send POSTs training examples; empty means not set (Export still works).
    finetune_url: str = ""
    # Seconds to wait for one request to the endpoint.
    finetune_timeout: float = 30.0
    # Further tries after a connection error, timeout or 5xx (same idempotency keys).
    finetune_retries: int = 2
    # Examples per request.
    finetune_batch_size: int = 32
    # Base model name passed to the endpoint; empty leaves the choice to it.
    model: str = ""
    # The trainer's forgetting guard (ftreview-trainer reads these from the same file): stop
    # once the trained replies' divergence is below `target_divergence` (nats/token) ...
    target_divergence: float = DEFAULT_TARGET_DIVERGENCE
    # ... and never promote an epoch whose drift on general questions (mean KL(base ||
    # tuned) per token, nats) is above this (`max_forgetting`, a floor on generic
    # log-likelihood that earlier versions wrote here, is no longer read).
    max_drift: float = DEFAULT_MAX_DRIFT
    # Quick reasons the review screen offers when rejecting (keys 1-9).
    reject_reasons: tuple[str, ...] = DEFAULT_REJECT_REASONS


# The file a first write creates, filled with the defaults of `ftreview.core.defaults`.
_TEMPLATE_TEXT = """\
// ftreview settings. JSON5: comments and trailing commas are fine; ftreview keeps them
// when it changes a value.
{
  learn: {
    // A reply is a fine-tuning candidate when its divergence with and without memories,
    // in nats per token, is above this. `ftreview threshold +` / `-` scales it by 10.
    threshold: $threshold,
    // Where `ftreview send` POSTs approved training examples ("" = not set; use export).
    finetune_url: "",
    // Seconds to wait for the fine-tuning endpoint, per request.
    finetune_timeout: 30,
    // Further tries after a timeout, connection error or 5xx (idempotency keys make
    // them safe).
    finetune_retries: 2,
    // Training examples per request.
    finetune_batch_size: 32,
    // Base model name passed to the endpoint ("" = the endpoint's choice).
    model: "",
    // The trainer's forgetting guard: train until the replies' divergence is below this
    // (nats/token), never drifting further than max_drift from the base model on general
    // questions (mean KL per token, nats).
    target_divergence: $target_divergence,
    max_drift: $max_drift,
    // Quick reasons offered when rejecting on the review screen (keys 1-9).
    reject_reasons: [
$reject_reasons    ],
  },
}
"""


def check_threshold(value: float, field: str = "threshold") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(field, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(field, f"must be a finite positive number, got {value!r}")
    return value


# A float spans about 10**-324 .. 10**308: beyond 700 steps every threshold leaves it.
MAX_STEPS = 700


def scale_threshold(value: float, steps: int) -> float:
    """`value` times 10**steps, in decimal so that 1e-7 up one step is exactly 1e-6."""
    if not -MAX_STEPS <= steps <= MAX_STEPS:
        raise InvalidArgument(
            "steps", f"must be between -{MAX_STEPS} and {MAX_STEPS} (each step is 10x), got {steps}"
        )
    scaled = float(Decimal(repr(value)).scaleb(steps))
    return check_threshold(scaled, "steps")


class ConfigFile:
    """Reads and edits one config file. Safe to use from several threads.

    `defaults` fill what the file leaves out; an empty `finetune_url` in the file also takes
    the default's (`ftreview serve` points it at the trainer it starts; a user's URL wins)."""

    def __init__(self, path: Path, defaults: LearnConfig = LearnConfig()) -> None:
        self.path = path
        self.defaults = defaults
        self._lock = threading.Lock()

    def remove_stale_temporaries(self) -> list[Path]:
        """Remove the temporary files of writes that were killed before their rename (call
        at start, when no write of this service can be in progress); returns them."""
        target = _target(self.path)
        removed = []
        for stale in target.parent.glob(f".{target.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
        return removed

    # -- reading ------------------------------------------------------------------------

    def load(self) -> LearnConfig:
        document = self._read()
        if document is None:
            return self.defaults
        values: dict[str, Any] = {}
        known = {f.name for f in fields(LearnConfig)}
        with self._unreadable():
            entries = document.entries(SECTION)
        for entry in entries:
            if entry.key not in known:
                continue  # other tools may keep their own keys here
            values[entry.key] = self._checked(entry.key, entry.value, document, entry.start)
        if not values.get("finetune_url"):
            values.pop("finetune_url", None)
        return dataclasses.replace(self.defaults, **values)

    def _checked(self, name: str, raw: Any, document: ConfigDocument, index: int) -> Any:
        def bad(what: str) -> ConfigUnreadable:
            line, column = document.where(index)
            return ConfigUnreadable(str(self.path), line, column, f"{SECTION}.{name} {what}")

        is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
        if name == "threshold":
            if not is_number or not math.isfinite(raw) or raw <= 0:
                raise bad(f"must be a finite positive number, got {raw!r}")
            return float(raw)
        if name in ("finetune_url", "model"):
            if not isinstance(raw, str):
                raise bad(f"must be a string, got {raw!r}")
            return raw
        if name == "finetune_timeout":
            if not is_number or not math.isfinite(raw) or raw <= 0:
                raise bad(f"must be a positive number of seconds, got {raw!r}")
            return float(raw)
        if name in ("target_divergence", "max_drift"):
            if not is_number or not math.isfinite(raw) or raw <= 0:
                raise bad(f"must be a finite positive number, got {raw!r}")
            return float(raw)
        if name == "reject_reasons":
            if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
                raise bad(f"must be a list of strings, got {raw!r}")
            return tuple(raw[:9])
        if name in ("finetune_retries", "finetune_batch_size"):
            low = 0 if name == "finetune_retries" else 1
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < low:
                raise bad(f"must be an integer >= {low}, got {raw!r}")
            return raw
        return raw

    @contextlib.contextmanager
    def _unreadable(self) -> Iterator[None]:
        """The config reader's errors, as the Review's `ConfigUnreadable`."""
        try:
            yield
        except ConfigFileError as error:
            raise ConfigUnreadable(error.path, error.line, error.column, error.reason) from error

    def _read(self) -> ConfigDocument | None:
        with self._unreadable():
            return read_config(self.path)

    def _parse(self, text: str) -> ConfigDocument:
        with self._unreadable():
            return parse_config(text, self.path)

    # -- writing ------------------------------------------------------------------------

    def set_threshold(self, value: float) -> LearnConfig:
        return self.set_value("threshold", check_threshold(value))

    def step_threshold(self, steps: int) -> LearnConfig:
        if steps == 0:
            raise InvalidArgument("steps", "must not be 0 (+1 multiplies by 10, -1 divides)")
        with self._lock:
            current = self.load().threshold
            return self._set_locked("threshold", scale_threshold(current, steps))

    def set_value(self, key: str, value: Any) -> LearnConfig:
        if key not in {f.name for f in fields(LearnConfig)}:
            raise InvalidArgument("key", f"unknown setting {SECTION}.{key}")
        with self._lock:
            return self._set_locked(key, value)

    def _set_locked(self, key: str, value: Any) -> LearnConfig:
        document = self._read()
        original = document.text if document is not None else None
        if document is None:
            document = self._parse(_TEMPLATE)
        text, root = document.text, document.root
        with self._unreadable():
            learn = document.section(SECTION)
        if learn is None:
            section = f"{{\n{self._indent_of(text, root)}  {key}: {_literal(value, None)},\n"
            section += f"{self._indent_of(text, root)}}}"
            text = _insert_pair(text, root, SECTION, section)
        else:
            pair = next((p for p in learn.key_value_pairs if key_name(p.key) == key), None)
            if pair is None:
                text = _insert_pair(text, learn, key, _literal(value, None))
            else:
                start, end = span(pair.value)
                text = text[:start] + _literal(value, pair.value) + text[end:]
        if self._parse(text).values(SECTION).get(key) != value:
            raise RuntimeError(f"editing {self.path} did not set {SECTION}.{key}; left unchanged")
        if text != original:
            _write_atomic(self.path, text)
        return self.load()

    @staticmethod
    def _indent_of(text: str, obj: jm.JSONObject) -> str:
        start, _ = span(obj)
        line_start = text.rfind("\n", 0, start) + 1
        prefix = text[line_start:start]
        return prefix if prefix.strip() == "" else ""


def _literal(value: Any, old: jm.Node | None) -> str:
    if isinstance(value, str):
        if isinstance(old, jm.SingleQuotedString):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        # repr round-trips exactly; JSON5 readers prefer 1e-6 to 1e-06.
        return re.sub(r"e([+-])0+(\d)", r"e\1\2", repr(value))
    raise TypeError(f"cannot write {value!r}")


def _render_template() -> str:
    defaults = LearnConfig()
    reasons = "".join(f"      {_literal(r, None)},\n" for r in defaults.reject_reasons)
    return string.Template(_TEMPLATE_TEXT).substitute(
        threshold=_literal(defaults.threshold, None),
        target_divergence=_literal(defaults.target_divergence, None),
        max_drift=_literal(defaults.max_drift, None),
        reject_reasons=reasons,
    )


_TEMPLATE = _render_template()


def _insert_pair(text: str, obj: jm.JSONObject, key: str, value_text: str) -> str:
    """Add `key: value` as the last pair of `obj`, in the style of its neighbours."""
    _, end = span(obj)
    close = end - 1  # the `}`
    pairs = obj.key_value_pairs
    has_trailing_comma = obj.trailing_comma is not None
    line_start = text.rfind("\n", 0, close) + 1
    closing_indent = text[line_start:close]
    if closing_indent.strip() == "":
        if pairs:
            key_start, _ = span(pairs[0].key)
            key_line = text.rfind("\n", 0, key_start) + 1
            indent = text[key_line:key_start]
            if indent.strip() != "":
                indent = closing_indent + "  "
        else:
            indent = closing_indent + "  "
        insertion = f"{indent}{key}: {value_text},\n"
        text = text[:line_start] + insertion + text[line_start:]
        if pairs and not has_trailing_comma:
            _, last_end = span(pairs[-1].value)
            text = text[:last_end] + "," + text[last_end:]
        return text
    if pairs and not has_trailing_comma:
        _, last_end = span(pairs[-1].value)
        return text[:last_end] + f", {key}: {value_text}" + text[last_end:]
    return text[:close] + f" {key}: {value_text} " + text[close:]


def _target(path: Path) -> Path:
    """The file a write must replace: `path`, or where its symbolic links lead."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _write_atomic(link: Path, text: str) -> None:
    path = _target(link)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
