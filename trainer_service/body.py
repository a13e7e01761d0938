"""A request body from bytes to a checked `Request`, without holding up the event loop.

Invariants:
- a body over `max_bytes` is refused with 413 from its Content-Length, or as soon as that
  many bytes arrived, never read whole;
- JSON is parsed off the event loop: a small body on a thread; a large one in a child
  process (`python -m trainer_service.body`, the body on its stdin), because `json.loads`
  holds the GIL for the whole parse (measured: a thread parsing 34 MB of small objects
  stopped the loop for 1.1 s of its 1.2 s). The child also checks the body and the
  contract, so what comes back is a small `Refusal` or a `Request` within the contract's
  limits, never the parsed body of a refused one; one child runs at a time, and its memory
  goes when it exits;
- every refusal is a `Refusal(status, message)`: 413 for size, else 400 with the place
  and the reason (a JSON position, a field path). Nesting deeper than `MAX_DEPTH`, more
  than `MAX_ELEMENTS` values, a lone surrogate in a string or key, `NaN`/`Infinity`, and a
  number with more digits than Python converts are refused here.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .contract import ContractError, Request, parse_request, parse_retract

if TYPE_CHECKING:  # the child process that parses bodies needs no aiohttp
    from aiohttp import web

# The contract's own nesting is five levels (body, examples, example, messages, message);
# the rest is room for fields a sender adds and the contract ignores.
MAX_DEPTH = 16
# Values of every kind, containers included. A request of 256 examples, each with two
# chats of 300 messages, has about 600,000.
MAX_ELEMENTS = 1_000_000
# 32 examples with both chats at the model's full context are a few MB of JSON (six bytes
# per escaped non-ASCII character); this leaves room for large batches.
MAX_BODY_BYTES = 64 * 1024 * 1024
# A retraction (`contract.parse_retract`): 256 keys and reasons fit in about 1.1 MB of
# characters, 8 MiB leaves room for escapes.
MAX_RETRACT_BYTES = 8 * 1024 * 1024
# Bodies up to this size are parsed on a thread (a few ms of GIL at worst); larger ones in
# the child process.
THREAD_PARSE_BYTES = 512 * 1024

# A JSON escape of a UTF-16 surrogate: only bodies holding one need their strings checked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _no_constant(name: str) -> Any:
    raise _Refused(f"the body is not JSON: {name} is not a JSON number")


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise _Refused(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise _Refused(f"the body is not JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise _Refused(f"the body is not UTF-8 text: byte {error.start}: {error.reason}") from None
    except ValueError as error:
        if "integer string conversion" in str(error):
            raise _Refused("the body is not JSON we take: a number has over 4300 digits") from None
        raise _Refused(f"the body is not JSON: {error}") from None


def _lone_surrogate(text: str) -> str | None:
    found = _SURROGATE.search(text)
    return None if found is None else f"\\u{ord(found.group()):04x}"


def _check_tree(root: Any, strings: bool) -> None:
    """Depth, element count and (when `strings`) lone surrogates, naming the path at fault."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(root, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        count += 1
        if count > MAX_ELEMENTS:
            raise _Refused(f"the body holds more than {MAX_ELEMENTS} values")
        if depth > MAX_DEPTH:
            raise _Refused(f"{path or 'the body'}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                at = f"{path}.{key}" if path else str(key)
                if strings and (bad := _lone_surrogate(key)):
                    raise _Refused(f"{path or 'the body'}: a key holds a lone surrogate {bad}")
                stack.append((item, at, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif strings and isinstance(value, str) and (bad := _lone_surrogate(value)):
            raise _Refused(f"{path or 'the body'}: a lone surrogate {bad} is not text")


def decode(data: bytes) -> Request | Refusal:
    """The checked request in `data`, or why it is refused (blocking: run it off the loop)."""
    try:
        body = _loads(data)
        _check_tree(body, strings=_SURROGATE_ESCAPE.search(data) is not None)
        return parse_request(body)
    except _Refused as refused:
        return Refusal(400, refused.message)
    except ContractError as error:
        return Refusal(400, str(error))


def decode_retract(data: bytes) -> list[tuple[str, str]] | Refusal:
    """The checked retraction in `data` (`contract.parse_retract`), or why it is refused."""
    try:
        body = _loads(data)
        _check_tree(body, strings=_SURROGATE_ESCAPE.search(data) is not None)
        return parse_retract(body)
    except _Refused as refused:
        return Refusal(400, refused.message)
    except ContractError as error:
        return Refusal(400, str(error))


class BodyReader:
    """Reads and decodes request bodies (see the module)."""

    def __init__(self, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.max_bytes = max_bytes
        self._child = asyncio.Semaphore(1)

    async def read(self, request: web.Request) -> bytes | Refusal:
        too_large = Refusal(413, f"the body is over {self.max_bytes} bytes")
        if request.content_length is not None and request.content_length > self.max_bytes:
            return too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self.max_bytes:
                return too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def decode(self, data: bytes) -> Request | Refusal:
        if len(data) <= THREAD_PARSE_BYTES:
            return await asyncio.to_thread(decode, data)
        async with self._child:
            return await _decode_in_child(data)


async def _decode_in_child(data: bytes) -> Request | Refusal:
    # The package's folder on the path, so the child imports this very copy.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trainer_service.body",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        out, err = await child.communicate(data)
    finally:
        if child.returncode is None:  # cancelled: the caller went away
            child.kill()
            await child.wait()
    code = child.returncode
    if code != 0:
        why = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        if code is None or code < 0 or "MemoryError" in why[0]:
            return Refusal(413, "the body is too large to parse")
        raise RuntimeError(f"the body parser failed ({code}): {why[0]}")
    result = pickle.loads(out)
    assert isinstance(result, Request | Refusal)
    return result


def _child_main() -> None:
    """The child's side: a body on stdin, its pickled `decode` on stdout."""
    sys.stdout.buffer.write(pickle.dumps(decode(sys.stdin.buffer.read())))


if __name__ == "__main__":
    # Through the module's own name, so what is pickled names `trainer_service.body`.
    from trainer_service.body import _child_main as child_main

    child_main()
