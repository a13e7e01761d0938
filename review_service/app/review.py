"""The Review: the candidate list, the trained ledger and the flow between them (docs/design.md §6),
and the closed loop after a send (docs/design.md §9), assembled from its parts: `writer` (group
commit and the view), `decisions`, `scoring` (also alternates and Ask), `shipping`,
`job_tracking` (training jobs followed, trained replies re-scored); this module adds the
reads and the config.

Invariants:
- the store is the truth and is written first: a change is committed before the view is
  replaced, its events published, or its caller answered, so a crash loses nothing a
  caller was told had succeeded (`writer`);
- a reply in the trained ledger is never a candidate again (sync skips it, the Scorer is
  told to exclude it, and the store refuses it), and it is there only once an adapter that
  learnt it is served, or where nobody could ever say (`promotion`);
- a request that fails validation changes nothing (validation precedes every write);
- reads answer from the last committed view, never from a change still being written.

Plain asyncio and plain values, no gRPC or protobuf: the servicer converts; adapters come
in through `ports`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from ftreview.core.activity_hub import ActivityHub

from review_service.app.changes_view import CandidateChanges, ChangesView
from review_service.app.config import ConfigFile, LearnConfig
from review_service.app.decisions import Decisions
from review_service.app.feed import CandidateEvent, CandidateFeed
from review_service.app.job_tracking import JobTracking
from review_service.app.knowledge import Knowledge
from review_service.app.scoring import Scoring
from review_service.app.shipping import ExportResult, SendReport, Shipping, in_flight_reason
from review_service.app.tasks import Background
from review_service.app.view import View
from review_service.app.writer import Writer
from review_service.domain import latest_scores
from review_service.domain.errors import InvalidArgument, ReviewError
from review_service.domain.jobs import TrainingJob
from review_service.domain.model import (
    VISIBLE,
    Candidate,
    Conversation,
    LatestScore,
    ScoringStats,
    SendInFlight,
    Status,
    TrainedEntry,
)
from review_service.domain.ports import (
    CandidateStore,
    ConversationCodec,
    FinetuneEndpoint,
    JobSource,
    Scorer,
)

__all__ = ["CandidateFilter", "ExportResult", "Review", "SendReport", "StatsView"]


@dataclass(frozen=True)
class StatsView:
    conversations: list[ScoringStats]
    last: ScoringStats | None
    pending: int
    approved: int
    rejected: int
    # In a training job (SENT).
    training: int
    trained: int
    threshold: float


@dataclass(frozen=True)
class CandidateFilter:
    """Which candidates ListCandidates returns; every field empty means all listed ones
    (pending, approved, rejected and in training)."""

    statuses: tuple[Status, ...] = ()
    conversation_id: str = ""
    # Case-insensitive substring of the reply.
    search: str = ""
    # Divergence in [min_divergence, max_divergence).
    min_divergence: float | None = None
    max_divergence: float | None = None

    def check(self) -> None:
        for name in ("min_divergence", "max_divergence"):
            value = getattr(self, name)
            if value is not None and math.isnan(value):
                raise InvalidArgument(name, "must be a number, got NaN")

    def admits(self, c: Candidate) -> bool:
        wanted = self.statuses or VISIBLE
        return (
            c.status in wanted
            and (not self.conversation_id or c.conversation_id == self.conversation_id)
            and (not self.search or self.search.casefold() in c.content.casefold())
            and (self.min_divergence is None or c.divergence >= self.min_divergence)
            and (self.max_divergence is None or c.divergence < self.max_divergence)
        )


class Review:
    def __init__(
        self,
        store: CandidateStore,
        scorer: Scorer,
        endpoint: FinetuneEndpoint,
        config_file: ConfigFile,
        hub: ActivityHub,
        *,
        codec: ConversationCodec,
        jobs: JobSource,
        scorer_ready_timeout: float = 3.0,
    ) -> None:
        config_file.remove_stale_temporaries()  # left by a write that was killed
        self.config_file = config_file
        self.hub = hub
        self.feed = CandidateFeed()
        sends = store.load_sends_in_flight()
        view = View(
            _held_back(store.load_candidates(), {s.timestamp_ns: s for s in sends}),
            store.load_ledger(),
            store.load_stats(),
            store.load_owners(),
            sends,
            store.load_jobs(),
        )
        self._writer = Writer(store, view, self.feed)
        self._codec = codec
        self._scorer = scorer
        self._endpoint = endpoint
        self._jobs = jobs
        self._background = Background(hub)
        self._closed = False
        self._last_config = config_file.load()
        self._changes = ChangesView()
        self._decisions = Decisions(self._writer)
        self._scoring = Scoring(
            self._writer, scorer, codec, self._background, self.load_config, scorer_ready_timeout
        )
        self._tracking = JobTracking(
            self._writer, self._jobs, scorer, self._scoring.stored, self._background,
            self.load_config,
        )  # fmt: skip
        self._knowledge = Knowledge(
            self._writer, endpoint, self._background, self.load_config, self._tracking.follow
        )
        self._shipping = Shipping(
            self._writer, endpoint, self._background, config_file, self.load_config, codec,
            self._tracking.follow, before_send=self._knowledge.deliver,
        )  # fmt: skip
        self.approve = self._decisions.approve
        self.reject = self._decisions.reject
        self.clear_decision = self._decisions.clear_decision
        self.decisions = self._decisions.history
        self.ingest = self._scoring.ingest
        self.sync_candidates = self._scoring.sync_candidates
        self.generate_alternate = self._scoring.generate_alternate
        self.ask = self._scoring.ask
        self.send = self._shipping.send
        self.export = self._shipping.export
        self.forget = self._knowledge.forget

    def resume(self) -> None:
        """Pick up what the last process left (from a running event loop, once): follow
        the training jobs not ended, re-score the trained replies not measured yet, tell
        the endpoint the retractions not delivered yet."""
        self._tracking.resume()
        self._knowledge.resume()

    @property
    def writer(self) -> Writer:
        return self._writer

    def load_config(self) -> LearnConfig:
        self._last_config = self.config_file.load()
        return self._last_config

    async def close(self) -> None:
        """Stop background work, finish queued writes, close the store (once)."""
        if self._closed:
            return
        self._closed = True
        self.feed.close()
        await self._background.close()
        await self._writer.close()
        await self._scorer.close()
        await self._endpoint.close()
        await self._jobs.close()

    # -- reading ------------------------------------------------------------------------

    def changes(self, candidate: Candidate) -> CandidateChanges:
        """The live fact `candidate` supersedes and the undecided candidates it conflicts
        with, in the current view (`changes_view`)."""
        return self._changes.of(self._writer.view, candidate)

    def visible(self) -> list[Candidate]:
        return [c for c in self._writer.view.candidates.values() if c.visible]

    def candidates(
        self, which: CandidateFilter = CandidateFilter(), order: str = "divergence"
    ) -> list[Candidate]:
        which.check()
        chosen = [c for c in self._writer.view.candidates.values() if which.admits(c)]
        if order == "time":
            chosen.sort(key=lambda c: c.timestamp_ns, reverse=True)
        else:
            chosen.sort(key=lambda c: (-c.divergence, c.timestamp_ns))
        return chosen

    def trained(self) -> list[TrainedEntry]:
        entries = self._writer.view.ledger.values()
        return sorted(entries, key=lambda e: (e.trained_at_ns, e.timestamp_ns))

    def jobs(self) -> list[TrainingJob]:
        """Every training job the endpoint accepted, newest first."""
        return sorted(
            self._writer.view.jobs.values(), key=lambda j: (j.created_at_ns, j.id), reverse=True
        )

    def is_trained(self, timestamp_ns: int) -> bool:
        return timestamp_ns in self._writer.view.ledger

    def stats(self, conversation_id: str = "") -> StatsView:
        with contextlib.suppress(ReviewError):
            self.load_config()
        view = self._writer.view
        every = sorted(view.stats.values(), key=lambda s: s.conversation_id)
        last = max(every, key=lambda s: s.taken_at_ns, default=None)
        chosen = (
            [s for s in every if s.conversation_id == conversation_id] if conversation_id else every
        )
        counts = view.counts()
        return StatsView(
            conversations=chosen,
            last=last,
            pending=counts[Status.PENDING],
            approved=counts[Status.APPROVED],
            rejected=counts[Status.REJECTED],
            training=counts[Status.SENT],
            trained=len(view.ledger),
            threshold=self._last_config.threshold,
        )

    async def reply_scores(self, conversation_id: str) -> list[LatestScore]:
        """The latest score of every assistant reply of a stored conversation, in
        conversation order (see `latest_scores`); empty for an unknown conversation."""
        store = self._writer.store

        def fetch() -> tuple[bytes | None, list[LatestScore]]:
            return store.conversation_body(conversation_id), store.latest_scores(conversation_id)

        def combine(found: tuple[bytes | None, list[LatestScore]], view: View) -> list[LatestScore]:
            body, kept = found
            if body is None:
                return []
            messages = self._codec.decode(body).messages
            return latest_scores.in_conversation_order(
                conversation_id, messages, kept, view.ledger, view.candidates
            )

        # The kept scores, the ledger and the candidates come from the same moment.
        return await self._writer.read(fetch, combine)

    async def conversation(self, conversation_id: str) -> Conversation:
        """The stored conversation; NotFound when none is stored under that id."""
        return await self._scoring.stored(conversation_id)

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


def _held_back(candidates: Iterable[Candidate], sends: dict[int, SendInFlight]) -> list[Candidate]:
    """Candidates whose send was in flight when the last process ended say so."""
    out = []
    for c in candidates:
        send = sends.get(c.timestamp_ns)
        if send is not None and not c.send_error:
            c = dataclasses.replace(c, send_error=in_flight_reason(send))
        out.append(c)
    return out
