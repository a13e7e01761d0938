"""The `learn` section of `~/.consciousness/config.json5`.

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

The edit works on the character span of the value as json-five's model reports it, then
re-parses the result to check that exactly the intended value changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import json5
from ftreview.core.defaults import DEFAULT_THRESHOLD
from json5 import model as jm
from json5.loader import ModelLoader

from review_service.domain.errors import ConfigUnreadable, InvalidArgument

CONFIG_NAME = "config.json5"
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
    target_divergence: float = 0.1
    # ... and never promote an epoch whose drift on general questions (mean KL(base ||
    # tuned) per token, nats) is above this (`max_forgetting`, a floor on generic
    # log-likelihood that earlier versions wrote here, is no longer read).
    max_drift: float = 0.1
    # Quick reasons the review screen offers when rejecting (keys 1-9).
    reject_reasons: tuple[str, ...] = (
        "not a fact about the user",
        "wrong or outdated",
        "too private to train",
        "generic reply",
    )


_TEMPLATE = """\
// ftreview settings. JSON5: comments and trailing commas are fine; ftreview keeps them
// when it changes a value.
{
  learn: {
    // A reply is a fine-tuning candidate when its divergence with and without memories,
    // in nats per token, is above this. `ftreview threshold +` / `-` scales it by 10.
    threshold: 1e-7,
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
    target_divergence: 0.1,
    max_drift: 0.1,
    // Quick reasons offered when rejecting on the review screen (keys 1-9).
    reject_reasons: [
      "not a fact about the user",
      "wrong or outdated",
      "too private to train",
      "generic reply",
    ],
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


def _key_name(key: jm.Key) -> str:
    if isinstance(key, jm.Identifier):
        return str(key.name)
    if isinstance(key, jm.String):
        return str(key.characters)
    raise TypeError(f"unexpected key node {key!r}")


def _span(node: jm.Node) -> tuple[int, int]:
    start_tok = node._tok
    end_tok = node._end_tok or node._tok
    assert start_tok is not None and end_tok is not None
    return start_tok.index, end_tok.end


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


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
        text = self._read()
        if text is None:
            return self.defaults
        _, learn = self._parse(text)
        if learn is None:
            return self.defaults
        values: dict[str, Any] = {}
        known = {f.name: f for f in fields(LearnConfig)}
        for pair in learn.key_value_pairs:
            name = _key_name(pair.key)
            if name not in known:
                continue  # other tools may keep their own keys here
            start, end = _span(pair.value)
            raw = json5.loads(text[start:end])
            values[name] = self._checked(name, raw, text, start)
        if not values.get("finetune_url"):
            values.pop("finetune_url", None)
        return dataclasses.replace(self.defaults, **values)

    def _checked(self, name: str, raw: Any, text: str, index: int) -> Any:
        def bad(what: str) -> ConfigUnreadable:
            line, column = _position(text, index)
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

    def _read(self) -> str | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line, column = _position(data[: error.start].decode("utf-8", "replace"), error.start)
            raise ConfigUnreadable(str(self.path), line, column, "not UTF-8 text") from error

    def _parse(self, text: str) -> tuple[jm.JSONObject, jm.JSONObject | None]:
        try:
            document = json5.loads(text, loader=ModelLoader())
        except json5.JSON5DecodeError as error:
            line, column, reason = self._where(text, error)
            raise ConfigUnreadable(str(self.path), line, column, reason) from error
        root = document.value
        if not isinstance(root, jm.JSONObject):
            raise ConfigUnreadable(str(self.path), 1, 1, "the top level must be an object {...}")
        for pair in root.key_value_pairs:
            if _key_name(pair.key) == SECTION:
                if not isinstance(pair.value, jm.JSONObject):
                    start, _ = _span(pair.value)
                    line, column = _position(text, start)
                    raise ConfigUnreadable(
                        str(self.path), line, column, f"`{SECTION}` must be an object {{...}}"
                    )
                return root, pair.value
        return root, None

    @staticmethod
    def _where(text: str, error: json5.JSON5DecodeError) -> tuple[int, int, str]:
        message = error.msg
        primary = re.search(r"The primary error was: \s*(.+)", message)
        if primary:
            message = primary.group(1)
        message = re.sub(r"\s+at: line \d+ column \d+ \(char \d+\)", "", message).strip()
        token = getattr(error, "token", None)
        if token is not None and getattr(token, "doc", None) is not None:
            return token.lineno, token.colno + 1, message
        found = re.search(r"line (\d+) column (\d+)", error.msg)
        if found:
            return int(found.group(1)), int(found.group(2)), message
        line, column = _position(text, len(text))
        return line, column, message

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
        text = self._read()
        original = text
        if text is None:
            text = _TEMPLATE
        root, learn = self._parse(text)
        if learn is None:
            section = f"{{\n{self._indent_of(text, root)}  {key}: {_literal(value, None)},\n"
            section += f"{self._indent_of(text, root)}}}"
            text = _insert_pair(text, root, SECTION, section)
        else:
            pair = next((p for p in learn.key_value_pairs if _key_name(p.key) == key), None)
            if pair is None:
                text = _insert_pair(text, learn, key, _literal(value, None))
            else:
                start, end = _span(pair.value)
                text = text[:start] + _literal(value, pair.value) + text[end:]
        if json5.loads(text).get(SECTION, {}).get(key) != value:
            raise RuntimeError(f"editing {self.path} did not set {SECTION}.{key}; left unchanged")
        if text != original:
            _write_atomic(self.path, text)
        return self.load()

    @staticmethod
    def _indent_of(text: str, obj: jm.JSONObject) -> str:
        start, _ = _span(obj)
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


def _insert_pair(text: str, obj: jm.JSONObject, key: str, value_text: str) -> str:
    """Add `key: value` as the last pair of `obj`, in the style of its neighbours."""
    _, end = _span(obj)
    close = end - 1  # the `}`
    pairs = obj.key_value_pairs
    has_trailing_comma = obj.trailing_comma is not None
    line_start = text.rfind("\n", 0, close) + 1
    closing_indent = text[line_start:close]
    if closing_indent.strip() == "":
        if pairs:
            key_start, _ = _span(pairs[0].key)
            key_line = text.rfind("\n", 0, key_start) + 1
            indent = text[key_line:key_start]
            if indent.strip() != "":
                indent = closing_indent + "  "
        else:
            indent = closing_indent + "  "
        insertion = f"{indent}{key}: {value_text},\n"
        text = text[:line_start] + insertion + text[line_start:]
        if pairs and not has_trailing_comma:
            _, last_end = _span(pairs[-1].value)
            text = text[:last_end] + "," + text[last_end:]
        return text
    if pairs and not has_trailing_comma:
        _, last_end = _span(pairs[-1].value)
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
