"""Scoring runs: ingest a conversation, rescore stored ones, merge what the Scorer says into
the candidate list; fetch alternates; ask the model a question without memories (Ask).

Invariants:
- a timestamp names one reply of one conversation: an ingest whose replies share a
  timestamp, or claim one that another conversation holds, is refused (saying which
  conversation holds it) before anything is stored; accepted claims are stored at once and
  never move;
- a reply in the trained ledger is never a candidate again: the Scorer is told to exclude
  it and the merge skips it;
- ingest scores only the replies not scored before (the next turn costs the new reply); a
  conversation's passes run one at a time, so two passes never interleave their merges;
- a pass whose conversation's memories say otherwise about a live trained fact of an
  earlier conversation retracts that fact in the transaction that stores the pass
  (`knowledge.memory_retracted`; the next Send tells the endpoint), unless one of the
  pass's undecided candidates would replace it: then that candidate's decision does;
- a pass that fails records its reason in the stats and marks nothing as scored;
- the Scorer's progress reaches clients through the Review only: each pass and each
  alternate is a Review activity that relays the Scorer's activity of the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from ftreview.core.activity_hub import Activity
from ftreview.core.values import format_ns

from review_service.app.config import LearnConfig
from review_service.app.feed import CandidateEvent, EventKind
from review_service.app.tasks import Background
from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain import knowledge, latest_scores, replies, sync
from review_service.domain.errors import FailedPrecondition, InvalidArgument, NotFound, ReviewError
from review_service.domain.model import (
    Candidate,
    Conversation,
    MemoryAttribution,
    ScoredReply,
    ScoringStats,
)
from review_service.domain.ports import Answer, ConversationCodec, Scorer, StoreChange

log = logging.getLogger("review_service")


class Scoring:
    def __init__(
        self,
        writer: Writer,
        scorer: Scorer,
        codec: ConversationCodec,
        background: Background,
        load_config: Callable[[], LearnConfig],
        ready_timeout: float,
    ) -> None:
        self._writer = writer
        self._scorer = scorer
        self._codec = codec
        self._background = background
        self._load_config = load_config
        self._ready_timeout = ready_timeout
        self._conversation_locks: dict[str, asyncio.Lock] = {}

    async def ingest(self, conversation: Conversation, request_id: str = "") -> tuple[str, str]:
        """Start scoring a conversation; returns (activity id, conversation id) at once."""
        clash = replies.shared_timestamp(conversation)
        if clash is not None:
            ts, first, second = clash
            raise InvalidArgument(
                f"conversation.{second}.timestamp",
                f"{format_ns(ts)} is also the timestamp of the different reply at {first}; "
                "a timestamp names one reply",
            )
        _check_owners(self._writer.view, conversation)  # refuse before waiting on the Scorer
        config = self._load_config()
        await self._scorer.ready(self._ready_timeout)
        claims = replies.reply_paths(conversation)

        def claim(view: View) -> tuple[StoreChange | None, list[CandidateEvent], None]:
            _check_owners(view, conversation)
            new = {ts: conversation.id for ts in claims if ts not in view.owners}
            return (StoreChange(owners=new) if new else None), [], None

        await self._writer.mutate(claim)
        activity = self._background.start_activity(
            "score",
            f"score {conversation.id}",
            request_id or uuid.uuid4().hex,
            conversation_id=conversation.id,
        )
        self._background.spawn(self._score(conversation, activity, config, rescore_all=False))
        return activity.id, conversation.id

    async def sync_candidates(self, conversation_ids: list[str]) -> list[str]:
        """Rescore stored conversations with the current threshold; returns activity ids."""
        config = self._load_config()
        known = await self._writer.in_store_thread(self._writer.store.conversation_ids)
        ids = list(dict.fromkeys(conversation_ids)) or known
        for cid in ids:
            if cid not in known:
                raise NotFound("conversation", cid, f"no stored conversation {cid!r}")
        if not ids:
            return []
        await self._scorer.ready(self._ready_timeout)
        activity_ids = []
        for cid in ids:
            conversation = await self.stored(cid)
            activity = self._background.start_activity(
                "score", f"rescore {cid}", uuid.uuid4().hex, conversation_id=cid
            )
            self._background.spawn(self._score(conversation, activity, config, rescore_all=True))
            activity_ids.append(activity.id)
        return activity_ids

    async def stored(self, conversation_id: str) -> Conversation:
        """The stored conversation, or NotFound."""
        body = await self._writer.in_store_thread(
            self._writer.store.conversation_body, conversation_id
        )
        if body is None:
            raise NotFound(
                "conversation", conversation_id, f"no stored conversation {conversation_id!r}"
            )
        return self._codec.decode(body)

    async def _score(
        self, conversation: Conversation, activity: Activity, config: LearnConfig,
        rescore_all: bool,
    ) -> None:  # fmt: skip
        cid = conversation.id
        relay: asyncio.Task[None] | None = None
        store = self._writer.store
        try:
            async with self._conversation_locks.setdefault(cid, asyncio.Lock()):
                trained = self._writer.view.ledger
                wanted = replies.replies(conversation)
                exclude = [ts for ts in wanted if ts in trained]
                only: list[int] = []
                if not rescore_all:
                    scored = await self._writer.in_store_thread(store.scored_replies, cid)
                    seen_before = await self._writer.in_store_thread(store.conversation_body, cid)
                    only = [ts for ts in wanted if ts not in scored and ts not in trained]
                    if not only and seen_before is not None:
                        activity.succeed(
                            "nothing new to score: every reply was scored before",
                            new_candidates=0,
                        )
                        return
                relay = asyncio.ensure_future(self._relay_progress(activity))
                result = await self._scorer.score(
                    conversation, config.threshold, exclude, only, activity.id
                )
                relay.cancel()
                activity.progress(activity.message.done, detail="adding candidates")
                added = await self._merge(conversation, result.replies, result.stats)
            activity.succeed(
                f"{added} new candidate{'s' if added != 1 else ''}; "
                f"max divergence {result.max_divergence:.3g} (threshold {config.threshold:g})",
                new_candidates=added,
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

    async def _merge(
        self, conversation: Conversation, scored: list[ScoredReply], stats: ScoringStats
    ) -> int:
        cid = conversation.id
        given = replies.given(conversation)
        # Its memories, for the facts of earlier conversations they may change.
        memories = [
            MemoryAttribution(m.node_path, m.content, 0.0)
            for m in conversation.messages
            if m.memory and m.content.strip()
        ]
        newest = max((m.timestamp_ns for m in conversation.messages if m.is_reply), default=0)

        def plan(view: View) -> tuple[StoreChange | None, list[CandidateEvent], int]:
            now = time.time_ns()
            outcome = sync.merge_scores(view.candidates, view.ledger, cid, scored, given, now)
            change = StoreChange(
                upsert=outcome.added + outcome.updated,
                scores=(cid, latest_scores.from_pass(cid, scored, now)),
                conversation=conversation,
                stats=stats,
                ledger_updates=knowledge.memory_retracted(
                    view.ledger, cid, memories, newest, outcome.added + outcome.updated
                ),
            )
            events = [CandidateEvent(EventKind.ADDED, c) for c in outcome.added]
            events += [CandidateEvent(EventKind.UPDATED, c) for c in outcome.updated if c.visible]
            events.append(CandidateEvent(EventKind.STATS, stats=stats))
            return change, events, len(outcome.added)

        return await self._writer.mutate(plan)

    async def _record_failure(self, cid: str, threshold: float, reason: str) -> None:
        stats = self._codec.failed_stats(cid, threshold, reason, time.time_ns())

        def plan(view: View) -> tuple[StoreChange | None, list[CandidateEvent], None]:
            return StoreChange(stats=stats), [CandidateEvent(EventKind.STATS, stats=stats)], None

        with contextlib.suppress(Exception):
            await self._writer.mutate(plan)

    async def generate_alternate(
        self, ts: int, regenerate: bool, request_id: str, timeout: float | None
    ) -> Candidate:
        """The candidate with its alternate; a new one is generated under a Review activity
        (kind "alternate", id `request_id`) that relays the Scorer's progress."""
        candidate = self._writer.view.listed(ts)  # a reply in training may be looked at
        if candidate.alternate and not regenerate:
            return candidate
        try:
            conversation = await self.stored(candidate.conversation_id)
        except NotFound as error:
            raise FailedPrecondition(
                candidate.conversation_id,
                f"conversation {candidate.conversation_id!r} is not stored; ingest it again",
            ) from error
        activity = self._background.start_activity(
            "alternate", f"alternate for {format_ns(ts)}", request_id or uuid.uuid4().hex, 1
        )
        relay = asyncio.ensure_future(self._relay_progress(activity))
        try:
            text = await self._scorer.alternate(conversation, ts, activity.id, timeout)
        except asyncio.CancelledError:
            activity.cancel("the caller went away or its deadline passed")
            raise
        except ReviewError as error:
            activity.fail(error.message)
            raise
        finally:
            relay.cancel()

        def plan(view: View) -> tuple[StoreChange | None, list[CandidateEvent], Candidate]:
            fresh = dataclasses.replace(view.listed(ts), alternate=text)
            return StoreChange(upsert=[fresh]), [CandidateEvent(EventKind.UPDATED, fresh)], fresh

        try:
            done = await self._writer.mutate(plan)
        except ReviewError as error:  # learnt or forgotten while the alternate was generated
            activity.fail(error.message)
            raise
        activity.succeed(f"{len(text)} characters")
        return done

    async def ask(self, question: str, conversation_id: str, max_new_tokens: int) -> Answer:
        """The model's greedy answer to `question` without memories, alone or after the
        stored conversation `conversation_id` (its memories removed by the Scorer)."""
        if not question.strip():
            raise InvalidArgument("question", "required: the question to ask the model")
        base = await self.stored(conversation_id) if conversation_id else None
        return await self._scorer.answer(self._codec.asking(base, question), max_new_tokens)


def _check_owners(view: View, conversation: Conversation) -> None:
    for message in conversation.messages:
        if not replies.is_trackable(message):
            continue
        owner = view.owners.get(message.timestamp_ns)
        if owner is not None and owner != conversation.id:
            raise InvalidArgument(
                f"conversation.{message.node_path}.timestamp",
                f"{format_ns(message.timestamp_ns)} is the timestamp of a reply of conversation "
                f"{owner!r}; a timestamp names one reply of one conversation (to continue that "
                f"conversation, give this one the id {owner!r})",
            )
