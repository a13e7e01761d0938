"""The `ftreview` command.

Invariants:
- a user sees one line on stderr and a non-zero exit for any failure, never a traceback
  (`main` catches the typed client errors at one place; `FTREVIEW_DEBUG=1` re-raises). Exit
  codes: 1 the request failed, 2 bad usage or a bad input file, 3 a service is not running
  (the message names it and the command that starts it), 130 interrupted;
- `--json` output is built in `ftreview.report` only and is documented in the README;
- progress comes from the activity stream (`WatchActivities`), subscribed to before the
  call that starts the work, never from polling;
- TLS and the bearer token are resolved once per command (`--tls-ca`/`$FTREVIEW_TLS_CA`,
  `--token-file`/`$FTREVIEW_TOKEN`) and given to every client it makes, the review screen's
  too; a refused token is one line that says which service refused and what to set;
- this module does not import Textual: `review` and `demo` import the review screen inside
  the command, so scripts and servers never pay for (or depend on) the UI library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import grpc

from ftreview.auth import (
    TLS_CA_ENV,
    TOKEN_ENV,
    TOKEN_HINT,
    SecurityConfigError,
    resolve_channel_credentials,
    resolve_token,
)
from ftreview.client import (
    AsyncReviewClient,
    CandidateStatus,
    ReviewClient,
    activity_state_name,
    new_request_id,
    resolve_review_address,
    resolve_scorer_address,
    status_name,
)
from ftreview.core.values import format_ns
from ftreview.core.wire import timestamp_ns
from ftreview.errors import FtreviewError, NotFound, Unauthenticated, Unavailable
from ftreview.local_services import LocalServices, ServiceOptions, ServiceStartError
from ftreview.report import (
    activity_json,
    assistant_replies,
    candidate_json,
    candidate_table,
    config_json,
    overall_stats_json,
    progress_line,
    reply_row_json,
    reply_rows,
    reply_table,
    send_json,
    stats_json,
    stats_text,
    table,
    trained_json,
)
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

HOME_ENV = "FTREVIEW_HOME"
_STATUSES = ("pending", "approved", "rejected", "sent")
_ENDED = (
    activity_pb2.ACTIVITY_STATE_SUCCEEDED,
    activity_pb2.ACTIVITY_STATE_FAILED,
    activity_pb2.ACTIVITY_STATE_CANCELLED,
)


class UsageError(Exception):
    """Bad arguments or input: exit 2 with the message."""


# ---- output --------------------------------------------------------------------------------


def _print_json(value: Any, out: TextIO | None = None) -> None:
    json.dump(value, out or sys.stdout, indent=2, ensure_ascii=False)
    (out or sys.stdout).write("\n")


def _say(text: str) -> None:
    """A note for the person at the terminal (stderr: stdout stays data)."""
    print(text, file=sys.stderr)


class ProgressBar:
    """One status line on stderr, redrawn in place on a terminal; elsewhere, only starts
    and ends are written (a log file should not get a line per progress event)."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._live = enabled and stream.isatty()
        self._shown = False

    def update(self, activity: activity_pb2.Activity) -> None:
        if self._live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._stream.write("\r\x1b[2K" + progress_line(activity)[:width])
            self._stream.flush()
            self._shown = True

    def started(self, activity: activity_pb2.Activity) -> None:
        if self._enabled and not self._live:
            self._stream.write(f"started: {activity.label or activity.id}\n")
        self.update(activity)

    def ended(self, activity: activity_pb2.Activity) -> None:
        if not self._enabled:
            return
        self.clear()
        state = activity_state_name(activity.state)
        error = f": {activity.error}" if activity.error else ""
        self._stream.write(f"{state}: {activity.label or activity.id}{error}\n")
        self._stream.flush()

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._shown = False


# ---- scoring ---------------------------------------------------------------------------


@dataclass
class ScoringRun:
    """One conversation ingested by `score`, and how its scoring ended."""

    file: str
    conversation: conversation_pb2.Conversation
    request_id: str
    activity_id: str = ""
    conversation_id: str = ""
    activity: activity_pb2.Activity | None = None

    @property
    def state(self) -> str:
        if not self.activity_id:
            return "nothing_to_score"
        return activity_state_name(self.activity.state) if self.activity else "running"


def _load_files(paths: Sequence[str]) -> list[tuple[str, conversation_pb2.Conversation]]:
    from ftreview.conversations import ConversationFileError, load_conversations

    loaded: list[tuple[str, conversation_pb2.Conversation]] = []
    for path in paths:
        try:
            loaded.extend((path, c) for c in load_conversations(path))
        except ConversationFileError as error:
            raise UsageError(str(error)) from error
        except OSError as error:
            raise UsageError(f"{path}: {error.strerror or error}") from error
    return loaded


async def _ingest_and_watch(
    client: AsyncReviewClient,
    runs: list[ScoringRun],
    wait: bool,
    bar: ProgressBar,
    timeout_s: float,
) -> None:
    """Ingests every conversation and, with `wait`, follows its scoring to the end.

    The activity stream is open (its snapshot ended) before the first Ingest, and each
    Ingest names its activity, so not even a scoring run that ends at once can be missed.
    The activity followed is the Review service's: it ends once the result is stored, so
    the table read afterwards is complete.
    """
    if not wait:
        for run in runs:
            reply = await client.ingest(run.conversation, request_id=run.request_id)
            run.activity_id, run.conversation_id = reply.activity_id, reply.conversation_id
        return

    by_id: dict[str, ScoringRun] = {}
    early: dict[str, activity_pb2.Activity] = {}  # events that beat their Ingest reply
    subscribed = asyncio.Event()
    all_ended = asyncio.Event()

    def settle() -> None:
        if all(r.activity is not None and r.activity.state in _ENDED for r in by_id.values()):
            all_ended.set()

    def record(run: ScoringRun, activity: activity_pb2.Activity, kind: int) -> None:
        run.activity = activity
        if activity.state in _ENDED:
            bar.ended(activity)
            settle()
        elif kind == activity_pb2.ACTIVITY_EVENT_KIND_STARTED:
            bar.started(activity)
        else:
            bar.update(activity)

    async def follow() -> None:
        async for event in client.watch_activities():
            if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                subscribed.set()
                continue
            run = by_id.get(event.activity.id)
            if run is not None:
                record(run, event.activity, event.kind)
            elif event.activity.id in requested:
                early[event.activity.id] = event.activity

    requested = {run.request_id for run in runs}
    watcher = asyncio.create_task(follow())
    try:
        await _until(subscribed, watcher, timeout_s)
        for run in runs:
            reply = await client.ingest(run.conversation, request_id=run.request_id)
            run.activity_id, run.conversation_id = reply.activity_id, reply.conversation_id
            if run.activity_id:
                requested.add(run.activity_id)
                by_id[run.activity_id] = run
                if run.activity_id in early:
                    activity = early.pop(run.activity_id)
                    bar.started(activity)
                    record(run, activity, activity_pb2.ACTIVITY_EVENT_KIND_PROGRESS)
        if not by_id:
            return
        settle()
        await _until(all_ended, watcher, timeout_s)
    finally:
        bar.clear()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _until(event: asyncio.Event, watcher: asyncio.Task[None], timeout_s: float) -> None:
    """Waits for `event`; the watcher failing (its server went away) or the deadline ends
    the wait with that error."""
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait(
        {waiter, watcher}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
    )
    if waiter not in done:
        waiter.cancel()
        if watcher in done:
            watcher.result()  # raises the stream's error
            raise FtreviewError("the activity stream ended before scoring did")
        raise FtreviewError(f"scoring did not end within {timeout_s:g} s (--timeout)")


def _score_report(
    client: ReviewClient, runs: list[ScoringRun]
) -> tuple[list[tuple[ScoringRun, list[Any]]], dict[str, review_pb2.GetStatsResponse]]:
    """Each run's rows, from the latest score of every reply the Review service keeps
    (`GetStats(conversation_id).replies`) and the candidates it lists."""
    results: list[tuple[ScoringRun, list[Any]]] = []
    stats: dict[str, review_pb2.GetStatsResponse] = {}
    for run in runs:
        conversation_id = run.conversation_id or run.conversation.id
        stats[conversation_id] = client.get_stats(conversation_id)
        candidates = client.list_candidates(
            ["pending", "approved", "rejected"], conversation_id=conversation_id
        )
        failed = run.activity is not None and run.activity.state in (
            activity_pb2.ACTIVITY_STATE_FAILED,
            activity_pb2.ACTIVITY_STATE_CANCELLED,
        )
        rows = reply_rows(
            conversation_id,
            assistant_replies(run.conversation),
            stats[conversation_id].replies,
            candidates,
            failed,
        )
        results.append((run, rows))
    return results, stats


def _run_stats(reply: review_pb2.GetStatsResponse, conversation_id: str) -> Any:
    for stats in reply.conversations:
        if stats.conversation_id == conversation_id:
            return stats
    return reply.last if reply.last.conversation_id == conversation_id else None


def _score(args: argparse.Namespace, *, bar_enabled: bool = True) -> list[ScoringRun]:
    loaded = _load_files(args.files)
    if not loaded:
        raise UsageError("no conversations in " + ", ".join(args.files))
    runs = [ScoringRun(file, conv, new_request_id()) for file, conv in loaded]
    bar = ProgressBar(enabled=bar_enabled and not args.quiet)

    async def go() -> None:
        async with _async_review_client(args) as client:
            await _ingest_and_watch(client, runs, not args.no_wait, bar, args.timeout)

    asyncio.run(go())
    return runs


def cmd_score(args: argparse.Namespace) -> int:
    runs = _score(args, bar_enabled=not args.json)
    if args.no_wait:
        if args.json:
            _print_json(
                {
                    "runs": [
                        {
                            "file": r.file,
                            "conversation_id": r.conversation_id,
                            "activity_id": r.activity_id,
                            "state": r.state,
                        }
                        for r in runs
                    ]
                }
            )
        else:
            for r in runs:
                print(f"{r.file}: {r.conversation_id} ingested, scoring as {r.activity_id}")
        return 0
    with _review_client(args) as client:
        results, stats = _score_report(client, runs)
    failed = [r for r in runs if r.state in ("failed", "cancelled")]
    if args.json:
        _print_json(
            {
                "replies": [reply_row_json(row, run.file) for run, rows in results for row in rows],
                "runs": [
                    {
                        "file": run.file,
                        "conversation_id": run.conversation_id,
                        "activity_id": run.activity_id,
                        "state": run.state,
                        "error": run.activity.error if run.activity else "",
                        "stats": _stats_or_none(stats, run),
                    }
                    for run, _ in results
                ],
            }
        )
    else:
        for run, rows in results:
            print(f"{run.file}: conversation {run.conversation_id} ({run.state})")
            print(reply_table(rows) if rows else "  no assistant replies")
            run_stats = _run_stats(stats[run.conversation_id], run.conversation_id)
            if run_stats is not None:
                above = run_stats.responses_above_threshold
                print(
                    f"  {run_stats.responses_seen} seen, {run_stats.responses_scored} scored,"
                    f" {above} above threshold {run_stats.threshold:g};"
                    f" max divergence {run_stats.max_divergence:.4g}"
                )
            print()
    for run in failed:
        error = run.activity.error if run.activity else ""
        _say(f"ftreview: scoring {run.file} ({run.conversation_id}) {run.state}: {error}")
    return EXIT_FAILED if failed else 0


def _stats_or_none(
    stats: dict[str, review_pb2.GetStatsResponse], run: ScoringRun
) -> dict[str, Any] | None:
    found = _run_stats(stats[run.conversation_id], run.conversation_id)
    return stats_json(found) if found is not None else None


# ---- data commands -------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """How every client of one command connects: TLS credentials and the bearer token."""

    credentials: grpc.ChannelCredentials | None
    token: str | None


def _connection(args: argparse.Namespace) -> Connection:
    found: Connection | None = getattr(args, "connection", None)
    if found is None:
        found = Connection(resolve_channel_credentials(args.tls_ca), resolve_token(args.token_file))
        args.connection = found
    return found


def _review_client(args: argparse.Namespace) -> ReviewClient:
    c = _connection(args)
    return ReviewClient(
        args.review, scorer_address=args.scorer, credentials=c.credentials, token=c.token
    )


def _async_review_client(args: argparse.Namespace) -> AsyncReviewClient:
    c = _connection(args)
    return AsyncReviewClient(
        args.review, scorer_address=args.scorer, credentials=c.credentials, token=c.token
    )


def _parse_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a candidate id (the integer in the ID column of "
            "`ftreview candidates`)"
        ) from None
    if value <= 0:
        raise UsageError(f"{text!r} is not a candidate id (ids are positive)")
    return value


def cmd_candidates(args: argparse.Namespace) -> int:
    statuses: list[CandidateStatus] = list(args.status or [])
    with _review_client(args) as client:
        candidates = client.list_candidates(statuses, order=args.order)
    if args.json:
        _print_json({"candidates": [candidate_json(c) for c in candidates]})
    elif candidates:
        print(candidate_table(candidates))
    else:
        with _review_client(args) as client:
            stats = client.get_stats()
        print("no candidates\n" + stats_text(stats))
    return 0


def _decision(
    args: argparse.Namespace, verb: str, call: Callable[[ReviewClient, list[int]], list[Any]]
) -> int:
    ids = [_parse_id(i) for i in args.ids]
    with _review_client(args) as client:
        changed = call(client, ids)
    if args.json:
        _print_json({"candidates": [candidate_json(c) for c in changed]})
    else:
        for c in changed:
            print(f"{timestamp_ns(c.timestamp)}  {verb}  ({status_name(c.status)})")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decision(args, "approved", lambda c, ids: c.approve(ids))


def cmd_reject(args: argparse.Namespace) -> int:
    return _decision(args, "rejected", lambda c, ids: c.reject(ids, reason=args.reason))


def cmd_undo(args: argparse.Namespace) -> int:
    return _decision(args, "back to pending", lambda c, ids: c.clear_decision(ids))


def cmd_alternate(args: argparse.Namespace) -> int:
    timestamp = _parse_id(args.id)
    with _review_client(args) as client:
        candidate = client.generate_alternate(timestamp, regenerate=args.regenerate)
    if args.json:
        _print_json({"candidate": candidate_json(candidate)})
    else:
        print(f"reply:     {candidate.content}")
        print(f"alternate: {candidate.alternate}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    ids = [_parse_id(i) for i in args.ids]
    with _review_client(args) as client:
        reply = client.send(ids)
    if args.json:
        _print_json(send_json(reply))
    else:
        print(f"sent {len(reply.accepted)} (job {reply.job_id or '-'})")
        for failure in reply.failed:
            print(f"  not sent {timestamp_ns(failure.timestamp)}: {failure.reason}")
    return EXIT_FAILED if reply.failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    ids = [_parse_id(i) for i in args.ids]
    statuses: list[CandidateStatus] = list(args.status or [])
    with _review_client(args) as client:
        reply = client.export(
            args.format, statuses=statuses, timestamps_ns=ids, mark_trained=args.mark_trained
        )
    if args.output and args.output != "-":
        Path(args.output).write_text(reply.jsonl, encoding="utf-8")
    summary = {
        "count": reply.count,
        "format": args.format,
        "timestamps_ns": [timestamp_ns(t) for t in reply.timestamps],
        "marked_trained": args.mark_trained,
        "output": args.output if args.output and args.output != "-" else None,
    }
    if args.json:
        if summary["output"] is None:
            summary["jsonl"] = reply.jsonl
        _print_json(summary)
    elif summary["output"] is None:
        sys.stdout.write(reply.jsonl)
    else:
        trained = " and marked them trained" if args.mark_trained else ""
        print(f"wrote {reply.count} {args.format} examples to {args.output}{trained}")
    return 0


def cmd_threshold(args: argparse.Namespace) -> int:
    with _review_client(args) as client:
        if args.value is None:
            config = client.get_config()
        elif args.value in ("up", "down"):
            config = client.set_threshold(steps=args.steps if args.value == "up" else -args.steps)
        else:
            try:
                value = float(args.value)
            except ValueError:
                raise UsageError(
                    f"threshold {args.value!r}: give a positive number, up or down"
                ) from None
            config = client.set_threshold(value)
    if args.json:
        _print_json(config_json(config))
    else:
        print(f"threshold {config.threshold:g}  ({config.config_path})")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _review_client(args) as client:
        stats = client.get_stats(args.conversation or "")
    if args.json:
        _print_json(overall_stats_json(stats))
    else:
        print(stats_text(stats))
    return 0


def cmd_trained(args: argparse.Namespace) -> int:
    with _review_client(args) as client:
        entries = client.list_trained()
    if args.json:
        _print_json({"trained": [trained_json(e) for e in entries]})
    elif entries:
        print(
            table(
                ["ID", "TRAINED AT", "JOB", "DESTINATION"],
                [
                    [
                        str(timestamp_ns(e.timestamp)),
                        format_ns(timestamp_ns(e.trained_at)),
                        e.job_id or "-",
                        e.destination,
                    ]
                    for e in entries
                ],
            )
        )
    else:
        print("nothing trained yet")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Activities and candidate changes as they happen, one line (or JSON object) each."""
    candidate_kinds = {
        review_pb2.CANDIDATE_EVENT_KIND_ADDED: "added",
        review_pb2.CANDIDATE_EVENT_KIND_UPDATED: "updated",
        review_pb2.CANDIDATE_EVENT_KIND_STATUS_CHANGED: "status_changed",
        review_pb2.CANDIDATE_EVENT_KIND_REMOVED: "removed",
        review_pb2.CANDIDATE_EVENT_KIND_STATS: "stats",
    }
    activity_kinds = {
        activity_pb2.ACTIVITY_EVENT_KIND_STARTED: "started",
        activity_pb2.ACTIVITY_EVENT_KIND_PROGRESS: "progress",
        activity_pb2.ACTIVITY_EVENT_KIND_ENDED: "ended",
    }

    def emit(shape: dict[str, Any], text: str) -> None:
        if args.json:
            print(json.dumps(shape, ensure_ascii=False), flush=True)
        else:
            print(text, flush=True)

    async def candidates(client: AsyncReviewClient, ready: asyncio.Event) -> None:
        async for event in client.watch_candidates():
            if event.kind == review_pb2.CANDIDATE_EVENT_KIND_SNAPSHOT_END:
                ready.set()
            kind = candidate_kinds.get(event.kind)
            if kind is None:
                continue
            if kind == "stats":
                s = event.stats
                emit(
                    {"type": "stats", "stats": stats_json(s)},
                    f"stats      {s.conversation_id}: {s.responses_seen} seen,"
                    f" {s.responses_above_threshold} above {s.threshold:g},"
                    f" max {s.max_divergence:.4g}" + (f", error: {s.error}" if s.error else ""),
                )
            else:
                c = event.candidate
                emit(
                    {"type": "candidate", "event": kind, "candidate": candidate_json(c)},
                    f"candidate  {kind:<14} {timestamp_ns(c.timestamp)} "
                    f"{status_name(c.status):<8} {c.divergence:.4g}",
                )

    async def activities(client: AsyncReviewClient, ready: asyncio.Event) -> None:
        async for event in client.watch_activities():
            if event.kind == activity_pb2.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                ready.set()
            kind = activity_kinds.get(event.kind)
            if kind is None:
                continue
            a = event.activity
            emit(
                {"type": "activity", "event": kind, "activity": activity_json(a)},
                f"activity   {kind:<14} {a.kind:<9} {progress_line(a)}"
                + (f" error: {a.error}" if a.error else ""),
            )

    async def go() -> None:
        async with _async_review_client(args) as client:
            ready = [asyncio.Event(), asyncio.Event()]
            tasks = [
                asyncio.create_task(candidates(client, ready[0])),
                asyncio.create_task(activities(client, ready[1])),
            ]
            both_ready = asyncio.create_task(_both(ready))
            await asyncio.wait([both_ready, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if both_ready.done():
                _say("watching; Ctrl-C stops")
            else:
                both_ready.cancel()
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    return 0


async def _both(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


def _show_review_plainly(args: argparse.Namespace) -> None:
    with _review_client(args) as client:
        candidates = client.list_candidates()
        stats = client.get_stats()
    if candidates:
        print(candidate_table(candidates))
        print()
    else:
        print("no candidates")
    print(stats_text(stats))


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_review(args: argparse.Namespace) -> int:
    if not _interactive():
        _show_review_plainly(args)
        return 0
    with _review_client(args) as client:
        client.get_config()  # fail here, in one line, if the service is not running
    from ftreview.tui.app import run_review  # the UI library loads only here

    c = _connection(args)
    return run_review(
        resolve_review_address(args.review),
        resolve_scorer_address(args.scorer),
        args.home,
        credentials=c.credentials,
        token=c.token,
    )


# ---- serve and demo ------------------------------------------------------------------------


class _Stop(Exception):
    """SIGTERM arrived (Ctrl-C arrives as KeyboardInterrupt)."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop()


def _service_options(args: argparse.Namespace, echo: bool) -> ServiceOptions:
    def echo_line(name: str, line: str) -> None:
        print(f"[{name}] {line}", file=sys.stderr, flush=True)

    return ServiceOptions(
        scorer_listen=args.scorer_listen,
        review_listen=args.review_listen,
        home=args.home,
        backend=args.backend,
        backend_urls=args.backend_url or (),
        model=args.model,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca or os.environ.get(TLS_CA_ENV) or None,
        token_file=args.token_file,
        startup_timeout_s=args.startup_timeout,
        echo=echo_line if echo else None,
    )


def _check_tls_pair(args: argparse.Namespace) -> None:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError(
            "--tls-cert and --tls-key go together: give both (TLS) or neither (plain text)"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    _check_tls_pair(args)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    services = LocalServices(_service_options(args, echo=not args.quiet))
    try:
        services.start()
        ca = services.trusted_ca
        tls = f" {TLS_CA_ENV}={os.path.abspath(ca)}" if args.tls_cert and ca else ""
        print(
            f"scorer serving on {services.scorer_address}\n"
            f"review serving on {services.review_address}\n"
            f"export FTREVIEW_SCORER_ADDR={services.scorer_address} "
            f"FTREVIEW_REVIEW_ADDR={services.review_address}{tls}",
            flush=True,
        )
        _say("Ctrl-C stops both")
        gone = services.wait()
        code = gone.process.returncode if gone.process else None
        raise FtreviewError(f"the {gone.name} exited (status {code}); stopping the other")
    except (_Stop, KeyboardInterrupt):
        _say("stopping")
        return 0
    finally:
        services.stop()
        signal.signal(signal.SIGTERM, previous)


def _bundled_examples() -> list[str]:
    examples = Path(__file__).resolve().parents[2] / "examples"
    return sorted(str(p) for p in examples.glob("*.json*"))


def cmd_demo(args: argparse.Namespace) -> int:
    files = args.files or _bundled_examples()
    if not files:
        raise UsageError("no example conversations found; give a file: ftreview demo FILE")
    _check_tls_pair(args)
    if args.tls_cert:  # the demo's own clients trust the services' certificate
        args.tls_ca = args.tls_ca or os.environ.get(TLS_CA_ENV) or args.tls_cert
    temporary = None
    if not args.home:
        temporary = tempfile.mkdtemp(prefix="ftreview-demo-")
        args.home = temporary
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    services = LocalServices(_service_options(args, echo=args.verbose))
    try:
        _say(f"starting the Scorer and the Review service (home {args.home}) ...")
        services.start()
        args.scorer, args.review = services.scorer_address, services.review_address
        _say(f"scorer on {args.scorer}, review on {args.review}; scoring {', '.join(files)}")
        args.files, args.no_wait = files, False
        runs = _score(args)
        for run in runs:
            if run.state in ("failed", "cancelled"):
                error = run.activity.error if run.activity else ""
                _say(f"scoring {run.file} {run.state}: {error}")
        if _interactive() and not args.no_review:
            from ftreview.tui.app import run_review  # the UI library loads only here

            c = _connection(args)
            return run_review(
                args.review, args.scorer, args.home, credentials=c.credentials, token=c.token
            )
        _show_review_plainly(args)
        return 0
    except (_Stop, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    finally:
        services.stop()
        signal.signal(signal.SIGTERM, previous)
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


# ---- parser and main -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftreview",
        description="Find the replies an agent leaned on memories for, review them, "
        "and send them to fine-tuning.",
    )
    parser.add_argument(
        "--scorer", metavar="ADDR", help="Scorer address (env FTREVIEW_SCORER_ADDR, "
        "default 127.0.0.1:50051)"
    )  # fmt: skip
    parser.add_argument(
        "--review", metavar="ADDR", help="Review service address (env FTREVIEW_REVIEW_ADDR, "
        "default 127.0.0.1:50052)"
    )  # fmt: skip
    parser.add_argument(
        "--home",
        metavar="DIR",
        default=os.environ.get(HOME_ENV) or None,
        help="where the Review service keeps its config and database "
        "(env FTREVIEW_HOME, default ~/.consciousness)",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="PATH",
        help="connect over TLS, trusting this PEM CA or self-signed certificate "
        f"(env {TLS_CA_ENV}; default: plain text)",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"send the bearer token in this file with every call (env {TOKEN_ENV} holds "
        "the token itself); with `serve` or `demo`, both services require it",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help: str, json: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        if json:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    def service_flags(p: argparse.ArgumentParser, listen_default: tuple[str, str]) -> None:
        p.add_argument("--scorer-listen", default=listen_default[0], metavar="HOST:PORT")
        p.add_argument("--review-listen", default=listen_default[1], metavar="HOST:PORT")
        p.add_argument(
            "--backend",
            choices=["local", "vllm", "vllm-score"],
            help="scoring engine (default local)",
        )
        p.add_argument(
            "--backend-url", action="append", metavar="URL", help="engine URL (repeatable)"
        )
        p.add_argument(
            "--model", metavar="PATH", help="model directory or GGUF file (default: embedded)"
        )
        p.add_argument(
            "--tls-cert", metavar="PATH", help="both services serve TLS with this PEM certificate"
        )
        p.add_argument("--tls-key", metavar="PATH", help="the PEM private key of --tls-cert")
        p.add_argument("--startup-timeout", type=float, default=300.0, metavar="S")

    p = add("serve", cmd_serve, "run the Scorer and the Review service until Ctrl-C", json=False)
    service_flags(p, ("127.0.0.1:50051", "127.0.0.1:50052"))
    p.add_argument("--quiet", action="store_true", help="do not echo the services' logs")

    p = add(
        "demo", cmd_demo, "start both services, score the bundled example, review it", json=False
    )
    service_flags(p, ("127.0.0.1:0", "127.0.0.1:0"))
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="conversation files (default: examples/)"
    )
    p.add_argument(
        "--no-review",
        action="store_true",
        help="print candidates and stats instead of opening the screen",
    )
    p.add_argument("--verbose", action="store_true", help="echo the services' logs")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("score", cmd_score, "ingest conversation files and show how each reply scored")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--no-wait", action="store_true", help="return after ingest")
    p.add_argument(
        "--timeout", type=float, default=1800.0, metavar="S", help="how long to wait for scoring"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("candidates", cmd_candidates, "list the candidates, highest divergence first")
    p.add_argument("--status", action="append", choices=_STATUSES, help="only these (repeatable)")
    p.add_argument("--order", choices=["divergence", "time"], default="divergence")

    p = add("approve", cmd_approve, "approve candidates for fine-tuning")
    p.add_argument("ids", nargs="+", metavar="ID")
    p = add("reject", cmd_reject, "reject candidates")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--reason", default="")
    p = add("undo", cmd_undo, "put decided candidates back to pending")
    p.add_argument("ids", nargs="+", metavar="ID")

    p = add("alternate", cmd_alternate, "show what the model says without its memories")
    p.add_argument("id", metavar="ID")
    p.add_argument("--regenerate", action="store_true")

    p = add("send", cmd_send, "send the approved candidates to the fine-tuning endpoint")
    p.add_argument("ids", nargs="*", metavar="ID", help="only these (default: every approved)")

    p = add("export", cmd_export, "write training examples as JSONL")
    p.add_argument("--format", choices=["openai", "trl"], default="openai")
    p.add_argument("-o", "--output", metavar="FILE", help="default: stdout")
    p.add_argument("--status", action="append", choices=_STATUSES, help="default: approved")
    p.add_argument("--mark-trained", action="store_true", help="record them in the trained ledger")
    p.add_argument("ids", nargs="*", metavar="ID")

    p = add("threshold", cmd_threshold, "show or change the candidate threshold")
    p.add_argument("value", nargs="?", metavar="VALUE|up|down")
    p.add_argument("--steps", type=int, default=1, help="with up/down: how many x10 steps")

    p = add("stats", cmd_stats, "what the last scoring run found, and why")
    p.add_argument("--conversation", metavar="ID")
    add("trained", cmd_trained, "list the trained ledger")
    add("watch", cmd_watch, "print activities and candidate changes as they happen")
    add("review", cmd_review, "open the review screen", json=False)
    return parser


def _not_running_hint(error: Unavailable) -> str:
    what = f"the {error.service} service" if error.service == "Review" else f"the {error.service}"
    where = f" at {error.address}" if error.address else ""
    text = error.message.lower()
    # A server is there, but the two ends disagree about TLS: say so, not "not running".
    if "handshake" in text or "ssl" in text:
        return (
            f"TLS with {what}{where} failed; if it serves plain text drop --tls-ca/"
            f"{TLS_CA_ENV}, else check that the CA signed a certificate for this address "
            f"({error.message})"
        )
    if "socket closed" in text:
        return (
            f"{what}{where} closed the connection; if it serves TLS, pass --tls-ca or set "
            f"{TLS_CA_ENV}"
        )
    return f"{what} is not running{where}; start it with `ftreview serve`"


def _refused_line(error: Unauthenticated) -> str:
    who = error.service.lower() or "the service"
    where = f" at {error.address}" if error.address else ""
    return f"{who}{where} refused the call: missing or wrong bearer token ({TOKEN_HINT})"


def _error_line(error: FtreviewError) -> str:
    who = f"{error.service}: " if error.service else ""
    if isinstance(error, NotFound):
        return f"not found: {error}"
    return f"{who}{error}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("FTREVIEW_DEBUG") == "1"
    try:
        code: int = args.handler(args)
        return code
    except (UsageError, SecurityConfigError) as error:
        print(f"ftreview: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Unauthenticated as error:
        if debug:
            raise
        print(f"ftreview: {_refused_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    except Unavailable as error:
        if debug:
            raise
        line = _not_running_hint(error) if error.unreachable else _error_line(error)
        print(f"ftreview: {line}", file=sys.stderr)
        return EXIT_NOT_RUNNING if error.unreachable else EXIT_FAILED
    except FtreviewError as error:
        if debug:
            raise
        print(f"ftreview: {_error_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (`| head`) left: not an error of ours. Point stdout at /dev/null so
        # the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if debug:
            raise
        if isinstance(error, ServiceStartError):
            print(f"ftreview: {error}", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"ftreview: unexpected error: {error!r} (FTREVIEW_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
