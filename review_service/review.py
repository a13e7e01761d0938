"""The Review: the candidate list, the trained ledger and the flow between them (design §6).

Invariants:
- the store is the truth and is written first: a change is committed (one transaction)
  before the in-memory view is updated, its events published, or its caller answered, so
  a crash loses nothing a caller was told had succeeded;
- writes are serialized (one lock) and each runs to its end even when its caller goes away
  (the write is shielded from cancellation), so the view, the store and the events agree;
- a reply in the trained ledger is never a candidate again (sync skips it, the Scorer is
  told to exclude it, and the store refuses it);
- Send marks a reply trained only after the endpoint accepted its idempotency key;
- a request that fails validation changes nothing (validation precedes every write).

Plain asyncio, no gRPC: the servicer translates; adapters come in through `ports`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ftreview.core.activity_hub import Activity, ActivityHub, DuplicateActivity
from ftreview.core.wire import format_ns, to_timestamp
from ftreview.v1 import conversation_pb2, scorer_pb2

from . import conversation as conv_rules
from . import latest_scores, sync, training
from .config import ConfigFile, LearnConfig
from .errors import (
    AlreadyExists,
    EndpointError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ReviewError,
)
from .feed import CandidateEvent, CandidateFeed, EventKind
from .model import Candidate, LatestScore, ScoredReply, Status, TrainedEntry
from .ports import CandidateStore, FinetuneEndpoint, Scorer, StoreChange

log = logging.getLogger("review_service")

T = TypeVar("T")
Plan = tuple[StoreChange | None, list[CandidateEvent], T]


@dataclass(frozen=True)
class SendReport:
    accepted: list[int]
    # (timestamp_ns, reason); these stay approved.
    failed: list[tuple[int, str]]
    job_id: str
    activity_id: str


@dataclass(frozen=True)
class ExportResult:
    jsonl: str
    timestamps: list[int]


@dataclass(frozen=True)
class StatsView:
    conversations: list[scorer_pb2.FinetuneScoringStats]
    last: scorer_pb2.FinetuneScoringStats | None
    pending: int
    approved: int
    rejected: int
    trained: int
    threshold: float


class Review:
    def __init__(
        self,
        store: CandidateStore,
        scorer: Scorer,
        endpoint: FinetuneEndpoint,
        config_file: ConfigFile,
        hub: ActivityHub,
        *,
        scorer_ready_timeout: float = 3.0,
    ) -> None:
        self._store = store
        self._scorer = scorer
        self._endpoint = endpoint
        self.config_file = config_file
        self.hub = hub
        self._ready_timeout = scorer_ready_timeout
        # One thread owns the SQLite connection: commits run in order, off the event loop.
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="review-store")
        self._candidates = {c.timestamp_ns: c for c in store.load_candidates()}
        self._ledger = {e.timestamp_ns: e for e in store.load_ledger()}
        self._stats = {s.conversation_id: s for s in store.load_stats()}
        # Timestamps of rejected candidates, so the cap check costs O(rejected), not O(list).
        self._rejected = {ts for ts, c in self._candidates.items() if c.status == Status.REJECTED}
        self._last_config = config_file.load()
        self.feed = CandidateFeed()
        self._write_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._conversation_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- plumbing -----------------------------------------------------------------------

    async def _in_store_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_thread, fn, *args)

    async def _mutate(self, plan: Callable[[], Plan[T]]) -> T:
        """Run `plan` on the current state under the write lock, commit what it returns,
        then update the view and publish. Shielded: a caller that goes away mid-commit
        cannot leave the view behind the store."""

        async def run() -> T:
            async with self._write_lock:
                change, events, result = plan()
                if change is not None:
                    await self._in_store_thread(self._store.commit, change)
                    self._apply(change)
                for event in events:
                    self.feed.publish(event)
                return result

        return await asyncio.shield(asyncio.ensure_future(run()))

    def _apply(self, change: StoreChange) -> None:
        for entry in change.trained:
            self._ledger[entry.timestamp_ns] = entry
        for ts in change.delete:
            self._candidates.pop(ts, None)
            self._rejected.discard(ts)
        for candidate in change.upsert:
            if candidate.timestamp_ns not in self._ledger:
                self._candidates[candidate.timestamp_ns] = candidate
                if candidate.status == Status.REJECTED:
                    self._rejected.add(candidate.timestamp_ns)
                else:
                    self._rejected.discard(candidate.timestamp_ns)
        if change.stats is not None:
            self._stats[change.stats.conversation_id] = change.stats

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_activity(self, kind: str, label: str, request_id: str, total: int = 0) -> Activity:
        try:
            return self.hub.start(kind, label, total=total, activity_id=request_id)
        except DuplicateActivity as error:
            raise AlreadyExists(f"request id {request_id!r} was used already") from error

    def load_config(self) -> LearnConfig:
        self._last_config = self.config_file.load()
        return self._last_config

    async def close(self) -> None:
        self.feed.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        async with self._write_lock:
            await self._in_store_thread(self._store.close)
        self._store_thread.shutdown(wait=True)
        await self._scorer.close()
        await self._endpoint.close()

    # -- reading ------------------------------------------------------------------------

    def visible(self) -> list[Candidate]:
        return [c for c in self._candidates.values() if c.visible]

    def candidates(
        self, statuses: Iterable[Status] = (), order: str = "divergence", conversation_id: str = ""
    ) -> list[Candidate]:
        wanted = set(statuses) or {Status.PENDING, Status.APPROVED, Status.REJECTED}
        chosen = [
            c
            for c in self._candidates.values()
            if c.status in wanted and (not conversation_id or c.conversation_id == conversation_id)
        ]
        if order == "time":
            chosen.sort(key=lambda c: c.timestamp_ns, reverse=True)
        else:
            chosen.sort(key=lambda c: (-c.divergence, c.timestamp_ns))
        return chosen

    def trained(self) -> list[TrainedEntry]:
        return sorted(self._ledger.values(), key=lambda e: (e.trained_at_ns, e.timestamp_ns))

    def is_trained(self, timestamp_ns: int) -> bool:
        return timestamp_ns in self._ledger

    def stats(self, conversation_id: str = "") -> StatsView:
        with contextlib.suppress(ReviewError):
            self.load_config()
        every = sorted(self._stats.values(), key=lambda s: s.conversation_id)
        last = max(every, key=lambda s: (s.taken_at.seconds, s.taken_at.nanos), default=None)
        chosen = (
            [s for s in every if s.conversation_id == conversation_id] if conversation_id else every
        )
        counts = {status: 0 for status in Status}
        for candidate in self._candidates.values():
            counts[candidate.status] += 1
        return StatsView(
            conversations=chosen,
            last=last,
            pending=counts[Status.PENDING],
            approved=counts[Status.APPROVED],
            rejected=counts[Status.REJECTED],
            trained=len(self._ledger),
            threshold=self._last_config.threshold,
        )

    async def reply_scores(self, conversation_id: str) -> list[LatestScore]:
        """The latest score of every assistant reply of a stored conversation, in
        conversation order (see `latest_scores`); empty for an unknown conversation."""

        def read() -> tuple[bytes | None, list[LatestScore]]:
            return (
                self._store.conversation(conversation_id),
                self._store.latest_scores(conversation_id),
            )

        # Under the write lock, so the kept scores, the ledger and the candidates read
        # here come from the same moment (no pass is half applied).
        async with self._write_lock:
            body, kept = await self._in_store_thread(read)
            if body is None:
                return []
            conversation = conversation_pb2.Conversation.FromString(body)
            return latest_scores.in_conversation_order(
                conversation_id,
                conv_rules.flatten(conversation),
                kept,
                self._ledger,
                self._candidates,
            )

    def watch(self) -> AsyncIterator[CandidateEvent]:
        return self.feed.watch(self.visible)

    # -- config -------------------------------------------------------------------------

    async def set_threshold(
        self, value: float | None = None, steps: int | None = None
    ) -> LearnConfig:
        if value is not None:
            config = await asyncio.to_thread(self.config_file.set_threshold, value)
        elif steps is not None:
            config = await asyncio.to_thread(self.config_file.step_threshold, steps)
        else:
            raise InvalidArgument("change", "give a threshold value or a number of steps")
        self._last_config = config
        return config

    # -- decisions ----------------------------------------------------------------------

    def _decidable(self, ts: int) -> Candidate:
        entry = self._ledger.get(ts)
        if entry is not None:
            raise FailedPrecondition(
                format_ns(ts),
                f"reply {format_ns(ts)} was sent to fine-tuning already ({entry.destination}); "
                "a trained reply cannot be decided again",
                kind="ALREADY_TRAINED",
            )
        candidate = self._candidates.get(ts)
        if candidate is None or not candidate.visible:
            why = " (rejected and no longer kept)" if candidate is not None else ""
            raise NotFound("candidate", format_ns(ts), f"no candidate {format_ns(ts)}{why}")
        return candidate

    async def _decide(
        self, timestamps: list[int], rule: Callable[[Candidate, int], Candidate]
    ) -> list[Candidate]:
        if not timestamps:
            raise InvalidArgument("timestamps", "name at least one candidate")
        unique = list(dict.fromkeys(timestamps))

        def plan() -> Plan[list[Candidate]]:
            now = time.time_ns()
            targets = [self._decidable(ts) for ts in unique]  # all valid, or nothing changes
            changed = [new for old in targets if (new := rule(old, now)) != old]
            if not changed:
                return None, [], targets
            state = {ts: self._candidates[ts] for ts in self._rejected}
            state.update({c.timestamp_ns: c for c in targets})
            state.update({c.timestamp_ns: c for c in changed})
            forgotten = sync.rejected_overflow(state.values())
            events = [
                CandidateEvent(_change_kind(self._candidates[c.timestamp_ns], c), c)
                for c in changed
            ]
            events += [
                CandidateEvent(EventKind.REMOVED, dataclasses.replace(c, status=Status.REJECTED))
                for c in forgotten
            ]
            state.update({c.timestamp_ns: c for c in forgotten})
            result = [state[ts] for ts in unique]
            return StoreChange(upsert=changed + forgotten), events, result

        return await self._mutate(plan)

    async def approve(self, timestamps: list[int]) -> list[Candidate]:
        return await self._decide(timestamps, sync.approve)

    async def reject(self, timestamps: list[int], reason: str = "") -> list[Candidate]:
        return await self._decide(timestamps, lambda c, now: sync.reject(c, reason, now))

    async def clear_decision(self, timestamps: list[int]) -> list[Candidate]:
        return await self._decide(timestamps, lambda c, now: sync.clear_decision(c))

    # -- scoring ------------------------------------------------------------------------

    async def ingest(
        self, conversation: conversation_pb2.Conversation, request_id: str = ""
    ) -> tuple[str, str]:
        """Start scoring a conversation; returns (activity id, conversation id) at once."""
        conv_rules.validate(conversation)
        conversation = conv_rules.with_id(conversation)
        config = self.load_config()
        await self._scorer.ready(self._ready_timeout)
        activity = self._start_activity(
            "score", f"score {conversation.id}", request_id or uuid.uuid4().hex
        )
        self._spawn(self._score(conversation, activity, config, rescore_all=False))
        return activity.id, conversation.id

    async def sync_candidates(self, conversation_ids: list[str]) -> list[str]:
        """Rescore stored conversations with the current threshold; returns activity ids."""
        config = self.load_config()
        known = await self._in_store_thread(self._store.conversation_ids)
        ids = list(dict.fromkeys(conversation_ids)) or known
        for cid in ids:
            if cid not in known:
                raise NotFound("conversation", cid, f"no stored conversation {cid!r}")
        if not ids:
            return []
        await self._scorer.ready(self._ready_timeout)
        activity_ids = []
        for cid in ids:
            body = await self._in_store_thread(self._store.conversation, cid)
            assert body is not None
            conversation = conversation_pb2.Conversation.FromString(body)
            activity = self._start_activity("score", f"rescore {cid}", uuid.uuid4().hex)
            self._spawn(self._score(conversation, activity, config, rescore_all=True))
            activity_ids.append(activity.id)
        return activity_ids

    def _conversation_lock(self, cid: str) -> asyncio.Lock:
        return self._conversation_locks.setdefault(cid, asyncio.Lock())

    async def _score(
        self,
        conversation: conversation_pb2.Conversation,
        activity: Activity,
        config: LearnConfig,
        rescore_all: bool,
    ) -> None:
        cid = conversation.id
        relay: asyncio.Task[None] | None = None
        try:
            async with self._conversation_lock(cid):
                replies = conv_rules.replies(conversation)
                exclude = [ts for ts in replies if ts in self._ledger]
                only: list[int] = []
                if not rescore_all:
                    scored = await self._in_store_thread(self._store.scored_replies, cid)
                    seen_before = await self._in_store_thread(self._store.conversation, cid)
                    only = [ts for ts in replies if ts not in scored and ts not in self._ledger]
                    if not only and seen_before is not None:
                        activity.succeed("nothing new to score: every reply was scored before")
                        return
                relay = asyncio.ensure_future(self._relay_progress(activity))
                result = await self._scorer.score(
                    conversation, config.threshold, exclude, only, activity.id
                )
                relay.cancel()
                activity.progress(activity.message.done, detail="adding candidates")
                added = await self._sync(conversation, result.replies, result.stats)
            activity.succeed(
                f"{added} new candidate{'s' if added != 1 else ''}; "
                f"max divergence {result.max_divergence:.3g} (threshold {config.threshold:g})"
            )
        except asyncio.CancelledError:
            activity.cancel("the Review server is shutting down")
            raise
        except Exception as error:
            reason = error.message if isinstance(error, ReviewError) else repr(error)
            if not isinstance(error, ReviewError):
                log.exception("scoring %s failed", cid)
            await self._record_failure(cid, config.threshold, reason)
            activity.fail(reason)
        finally:
            if relay is not None:
                relay.cancel()

    async def _relay_progress(self, activity: Activity) -> None:
        with contextlib.suppress(Exception):
            async for progress in self._scorer.progress(activity.id):
                activity.progress(progress.done, progress.total, progress.detail)

    async def _sync(
        self,
        conversation: conversation_pb2.Conversation,
        replies: list[ScoredReply],
        stats: scorer_pb2.FinetuneScoringStats,
    ) -> int:
        cid = conversation.id
        contexts = conv_rules.reply_contexts(conversation)
        stats = _copy_stats(stats)
        stats.conversation_id = cid
        if not stats.HasField("taken_at"):
            stats.taken_at.CopyFrom(to_timestamp(time.time_ns()))

        def plan() -> Plan[int]:
            now = time.time_ns()
            outcome = sync.merge_scores(self._candidates, self._ledger, cid, replies, contexts, now)
            change = StoreChange(
                upsert=outcome.added + outcome.updated,
                scores=(cid, latest_scores.from_pass(cid, replies, now)),
                conversation=(cid, conversation.SerializeToString(deterministic=True)),
                stats=stats,
            )
            events = [CandidateEvent(EventKind.ADDED, c) for c in outcome.added]
            events += [CandidateEvent(EventKind.UPDATED, c) for c in outcome.updated if c.visible]
            events.append(CandidateEvent(EventKind.STATS, stats=stats))
            return change, events, len(outcome.added)

        return await self._mutate(plan)

    async def _record_failure(self, cid: str, threshold: float, reason: str) -> None:
        stats = scorer_pb2.FinetuneScoringStats(
            conversation_id=cid, threshold=threshold, error=reason
        )
        stats.taken_at.CopyFrom(to_timestamp(time.time_ns()))

        def plan() -> Plan[None]:
            return StoreChange(stats=stats), [CandidateEvent(EventKind.STATS, stats=stats)], None

        with contextlib.suppress(Exception):
            await self._mutate(plan)

    # -- alternates ---------------------------------------------------------------------

    async def generate_alternate(
        self, ts: int, regenerate: bool, request_id: str, timeout: float | None
    ) -> Candidate:
        candidate = self._decidable(ts)
        if candidate.alternate and not regenerate:
            return candidate
        body = await self._in_store_thread(self._store.conversation, candidate.conversation_id)
        if body is None:
            raise FailedPrecondition(
                candidate.conversation_id,
                f"conversation {candidate.conversation_id!r} is not stored; ingest it again",
            )
        conversation = conversation_pb2.Conversation.FromString(body)
        text = await self._scorer.alternate(conversation, ts, request_id, timeout)

        def plan() -> Plan[Candidate]:
            current = self._decidable(ts)
            fresh = dataclasses.replace(current, alternate=text)
            return StoreChange(upsert=[fresh]), [CandidateEvent(EventKind.UPDATED, fresh)], fresh

        return await self._mutate(plan)

    # -- send and export ----------------------------------------------------------------

    def _chosen(self, timestamps: list[int], statuses: set[Status], verb: str) -> list[Candidate]:
        if not timestamps:
            return sorted(
                (c for c in self._candidates.values() if c.status in statuses),
                key=lambda c: c.timestamp_ns,
            )
        chosen = []
        for ts in dict.fromkeys(timestamps):
            candidate = self._decidable(ts)
            if candidate.status not in statuses:
                raise FailedPrecondition(
                    format_ns(ts),
                    f"candidate {format_ns(ts)} is {candidate.status.value}; "
                    f"only {'/'.join(sorted(s.value for s in statuses))} ones can be {verb}",
                )
            chosen.append(candidate)
        return chosen

    async def _mark_trained(self, batch: list[Candidate], destination: str, job_id: str) -> None:
        def plan() -> Plan[None]:
            now = time.time_ns()
            entries = [
                TrainedEntry(c.timestamp_ns, c.conversation_id, now, destination, job_id)
                for c in batch
                if c.timestamp_ns not in self._ledger
            ]
            events = []
            for c in batch:
                current = self._candidates.get(c.timestamp_ns)
                if current is not None and current.visible:
                    sent = dataclasses.replace(current, status=Status.SENT)
                    events.append(CandidateEvent(EventKind.REMOVED, sent))
            change = StoreChange(trained=entries, delete=[c.timestamp_ns for c in batch])
            return change, events, None

        await self._mutate(plan)

    async def send(
        self, timestamps: list[int], request_id: str = "", deadline: float | None = None
    ) -> SendReport:
        """POST approved candidates to `learn.finetune_url`; `deadline` is monotonic time."""
        config = self.load_config()
        url = config.finetune_url
        if not url:
            raise FailedPrecondition(
                "learn.finetune_url",
                'no fine-tuning endpoint is set: add  finetune_url: "https://host/path"  to the '
                f"`learn` section of {self.config_file.path} (or use export to write JSONL)",
                kind="CONFIG",
            )
        async with self._send_lock:
            chosen = self._chosen(timestamps, {Status.APPROVED}, "sent")
            if not chosen:
                return SendReport([], [], "", "")
            activity = self._start_activity(
                "send", f"send {len(chosen)} to {url}", request_id or uuid.uuid4().hex, len(chosen)
            )
            accepted: list[int] = []
            failed: list[tuple[int, str]] = []
            job_ids: list[str] = []
            try:
                size = config.finetune_batch_size
                for start in range(0, len(chosen), size):
                    batch = chosen[start : start + size]
                    timeout = config.finetune_timeout
                    if deadline is not None:
                        timeout = min(timeout, deadline - time.monotonic())
                        if timeout <= 0:
                            failed += [
                                (c.timestamp_ns, "the call's deadline ran out") for c in batch
                            ]
                            continue
                    body = training.endpoint_request(batch, config.model)
                    try:
                        reply = await self._endpoint.post(
                            url, body, timeout, config.finetune_retries
                        )
                    except EndpointError as error:
                        failed += [(c.timestamp_ns, error.message) for c in batch]
                        continue
                    ok = [
                        c
                        for c in batch
                        if training.idempotency_key(c.timestamp_ns) in reply.accepted
                    ]
                    for c in batch:
                        key = training.idempotency_key(c.timestamp_ns)
                        if key not in reply.accepted:
                            why = reply.rejected.get(key, "the endpoint did not acknowledge it")
                            failed.append((c.timestamp_ns, why))
                    if ok:
                        await self._mark_trained(ok, url, reply.job_id)
                        accepted += [c.timestamp_ns for c in ok]
                    if reply.job_id and reply.job_id not in job_ids:
                        job_ids.append(reply.job_id)
                    activity.progress(start + len(batch))
            except BaseException:
                activity.cancel("send was interrupted; unsent candidates stay approved")
                raise
            summary = f"{len(accepted)} accepted, {len(failed)} not"
            if failed and not accepted:
                activity.fail(f"{summary}: {failed[0][1]}")
            else:
                activity.succeed(summary)
            return SendReport(accepted, failed, ",".join(job_ids), activity.id)

    async def export(
        self, fmt: str, statuses: Iterable[Status], timestamps: list[int], mark_trained: bool
    ) -> ExportResult:
        if fmt not in training.FORMATS:
            raise InvalidArgument("format", f"choose one of {', '.join(training.FORMATS)}")
        wanted = set(statuses) or {Status.APPROVED}
        async with self._send_lock:
            chosen = self._chosen(timestamps, wanted, "exported")
            text = training.jsonl(chosen, fmt)
            if mark_trained and chosen:
                await self._mark_trained(chosen, f"export:{fmt}", "")
        return ExportResult(text, [c.timestamp_ns for c in chosen])


def _change_kind(old: Candidate, new: Candidate) -> EventKind:
    return EventKind.STATUS_CHANGED if old.status != new.status else EventKind.UPDATED


def _copy_stats(stats: scorer_pb2.FinetuneScoringStats) -> scorer_pb2.FinetuneScoringStats:
    copy = scorer_pb2.FinetuneScoringStats()
    copy.CopyFrom(stats)
    return copy
