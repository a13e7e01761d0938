"""Following conversation files as an agent writes them (`ftreview follow`).

Invariants:
- a conversation is sent to the Review only when its content changed since it was last
  sent (compared by a digest of its serialized message), so an agent that rewrites a whole
  file after every turn costs one ingest per conversation that actually grew;
- a file that does not parse is assumed half-written and tried again when it changes or
  after a short wait; it is reported as refused only once it has stayed unparseable and
  unchanged for `settle` seconds, and then only once;
- a Review that is down loses nothing: what could not be sent stays queued and is sent, in
  order, once the Review answers again;
- `run` returns when `stop` is set (Ctrl-C), between two files, never mid-ingest.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles

from ftreview.conversations import ConversationFileError, load_conversations
from ftreview.errors import FtreviewError, Unavailable
from ftreview.v1 import conversation_pb2 as pb

SUFFIXES = (".json", ".jsonl")


class Event(enum.Enum):
    INGESTED = "ingested"  # detail: the activity id
    WAITING = "waiting"  # a file does not parse yet; detail: why
    REFUSED = "refused"  # a file or conversation that stays bad; detail: why
    REVIEW_DOWN = "review_down"  # detail: the Review's error
    REVIEW_BACK = "review_back"


@dataclasses.dataclass(frozen=True)
class FollowEvent:
    event: Event
    path: Path | None = None
    conversation_id: str = ""
    detail: str = ""


Ingest = Callable[[pb.Conversation], str]
Report = Callable[[FollowEvent], None]


@dataclasses.dataclass
class _Unparsed:
    first_seen: float
    mtime_ns: int
    reported: bool = False


def conversation_files(paths: Iterable[Path]) -> list[Path]:
    """The conversation files under `paths` (files as given, folders searched), sorted."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.suffix in SUFFIXES or path.is_file():
            found.add(path)
    return sorted(found)


class Follower:
    """Sends every changed conversation under `paths` to `ingest`, as files change."""

    def __init__(
        self,
        paths: Iterable[Path],
        ingest: Ingest,
        report: Report,
        *,
        settle: float = 10.0,
        retry_every: float = 1.0,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self._ingest = ingest
        self._report = report
        self._settle = settle
        self._retry_every = retry_every
        self._sent: dict[tuple[Path, str], bytes] = {}
        self._queue: dict[tuple[Path, str], pb.Conversation] = {}
        self._unparsed: dict[Path, _Unparsed] = {}
        self._review_down = False

    def run(self, stop: threading.Event) -> None:
        for path in self.paths:
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such file or folder")
        self.scan(conversation_files(self.paths))
        timeout_ms = int(self._retry_every * 1000)
        # A file written between the first scan and the watcher's start raises no event:
        # the first round after the watcher is up scans everything once more.
        rescan = True
        for changes in watchfiles.watch(
            *self.paths,
            stop_event=stop,
            watch_filter=lambda _change, name: name.endswith(SUFFIXES),
            rust_timeout=timeout_ms,
            yield_on_timeout=True,
            debounce=200,
        ):
            changed = sorted({Path(name) for _kind, name in changes})
            if rescan:
                changed, rescan = conversation_files(self.paths), False
            retry = [p for p in self._unparsed if p not in changed]
            self.scan([p for p in changed if p.is_file()] + retry)

    def scan(self, files: Iterable[Path]) -> None:
        """Read `files` and send what changed; then retry what is queued."""
        for path in files:
            self._read(path)
        self._flush()

    def _read(self, path: Path) -> None:
        try:
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            self._unparsed.pop(path, None)
            return
        try:
            conversations = load_conversations(path)
        except (ConversationFileError, OSError, UnicodeDecodeError) as error:
            self._not_parsed(path, mtime_ns, str(error))
            return
        self._unparsed.pop(path, None)
        for conversation in conversations:
            key = (path, conversation.id)
            digest = hashlib.sha256(conversation.SerializeToString(deterministic=True)).digest()
            if self._sent.get(key) != digest:
                self._queue[key] = conversation

    def _not_parsed(self, path: Path, mtime_ns: int, why: str) -> None:
        now = time.monotonic()
        seen = self._unparsed.get(path)
        if seen is None or seen.mtime_ns != mtime_ns:
            self._unparsed[path] = _Unparsed(first_seen=now, mtime_ns=mtime_ns)
            self._report(FollowEvent(Event.WAITING, path, detail=why))
            return
        if not seen.reported and now - seen.first_seen >= self._settle:
            seen.reported = True
            self._report(FollowEvent(Event.REFUSED, path, detail=why))

    def _flush(self) -> None:
        for key in list(self._queue):
            path, conversation_id = key
            conversation = self._queue[key]
            try:
                activity_id = self._ingest(conversation)
            except Unavailable as error:
                if not self._review_down:
                    self._review_down = True
                    self._report(FollowEvent(Event.REVIEW_DOWN, detail=str(error)))
                return  # keep the queue, in order, for the next round
            except FtreviewError as error:
                # The Review refused this conversation: it stays refused until it changes.
                self._report(FollowEvent(Event.REFUSED, path, conversation_id, str(error)))
                activity_id = ""
            else:
                if self._review_down:
                    self._review_down = False
                    self._report(FollowEvent(Event.REVIEW_BACK))
                self._report(FollowEvent(Event.INGESTED, path, conversation_id, activity_id))
            self._sent[key] = hashlib.sha256(
                conversation.SerializeToString(deterministic=True)
            ).digest()
            del self._queue[key]
