"""What each listed candidate would change (`domain/changes`): the live trained fact it
supersedes and the undecided candidates it conflicts with, from the current view.

Invariants:
- computed on the way out, never stored: the answer follows the view it is asked of (the
  live ledger entries' stored candidates, and the candidates' current statuses), so an
  approval, a rejection or a change of knowledge shows at the next listing;
- a reply whose approval superseded a fact (the entry is SUPERSEDED by it) still says it
  supersedes that fact: the approval is what replaced it, and until the reply is trained
  a person may want to see what it replaces (undo puts the fact back to live);
- cheap per candidate whatever the list's size: the rule compares a candidate only with the
  ones that share a subject key (`changes.subject_keys`) in an index. Reading a candidate's
  facts is cached per reply text and memories (`changes`); the indexes are rebuilt only when
  what they hold can have changed, and a decision (the frequent change, which replaces the
  candidates map but neither adds a reply nor changes one's text or memories) rebuilds
  nothing: partners found in the index are looked up in the current view, so their status
  is always the current one;
- the candidates' index is keyed by what every change of a reply's text or memories, or of
  the set of replies, comes with: a scoring pass (it replaces `view.stats`), the ledger
  (promotion removes candidates as it writes entries), and the number of candidates. The
  live index is keyed by the ledger map. Both maps are immutable values, compared by
  identity: a new map is a new key.

Plain Python; no protobuf.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from immutables import Map

from review_service.app.view import View
from review_service.domain.changes import Change, conflicts, subject_keys, superseded_fact
from review_service.domain.model import Candidate, KnowledgeState, ScoringStats, TrainedEntry


@dataclass(frozen=True)
class CandidateChanges:
    """The live fact a candidate supersedes (or None) and the undecided candidates it
    conflicts with, oldest first."""

    supersedes: Change | None = None
    conflicts: tuple[Change, ...] = ()

    @property
    def line(self) -> str:
        """What differs, old value first: the superseded fact's change, else the first
        conflict's; "" when neither."""
        if self.supersedes is not None:
            return self.supersedes.line
        return self.conflicts[0].line if self.conflicts else ""


NONE = CandidateChanges()


@dataclass
class _Index:
    """Candidates by subject key, with each one's fewest keys of a fact (`subject_keys`)."""

    by_key: dict[str, list[int]] = field(default_factory=dict)
    fewest: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, candidates: Iterable[Candidate]) -> _Index:
        index = cls()
        for c in candidates:
            sets = subject_keys(c)
            if not sets:
                continue
            index.fewest[c.timestamp_ns] = min(map(len, sets))
            for key in frozenset().union(*sets):
                index.by_key.setdefault(key, []).append(c.timestamp_ns)
        return index

    def near(self, candidate: Candidate) -> list[int]:
        """The replies that may be about one of `candidate`'s subjects: those sharing at
        least the keys of the smaller fact of the two (a necessary condition of the rule,
        counted in one pass over the buckets, so a common word costs a count, not a
        comparison)."""
        sets = subject_keys(candidate)
        if not sets:
            return []
        mine = min(map(len, sets))
        shared = Counter(ts for key in frozenset().union(*sets) for ts in self.by_key.get(key, ()))
        return [
            ts
            for ts, count in shared.items()
            if count >= min(mine, self.fewest[ts]) and ts != candidate.timestamp_ns
        ]


class ChangesView:
    """Answers `of(view, candidate)`; one per Review, used from its event loop."""

    def __init__(self) -> None:
        self._ledger: Map[int, TrainedEntry] | None = None
        self._live: dict[int, Candidate] = {}
        self._live_index = _Index()
        # Reply -> the fact its approval superseded (what it supersedes once approved).
        self._replaced: dict[int, Candidate] = {}
        self._key: tuple[Map[str, ScoringStats], Map[int, TrainedEntry], int] | None = None
        self._index = _Index()
        # Answers for the candidates and ledger maps they were computed on.
        self._answered: tuple[Map[int, Candidate], Map[int, TrainedEntry]] | None = None
        self._answers: dict[int, CandidateChanges] = {}

    def of(self, view: View, candidate: Candidate) -> CandidateChanges:
        self._refresh(view)
        answered = self._answered
        if answered is None or answered[0] is not view.candidates or answered[1] is not view.ledger:
            self._answered, self._answers = (view.candidates, view.ledger), {}
        known = self._answers.get(candidate.timestamp_ns)
        if known is not None and view.candidates.get(candidate.timestamp_ns) is candidate:
            return known
        answer = self._compute(view, candidate)
        if view.candidates.get(candidate.timestamp_ns) is candidate:
            self._answers[candidate.timestamp_ns] = answer
        return answer

    def _refresh(self, view: View) -> None:
        if self._ledger is not view.ledger:
            self._ledger = view.ledger
            self._live = {e.timestamp_ns: e.as_candidate() for e in view.ledger.values() if e.live}
            self._live_index = _Index.of(self._live.values())
            self._replaced = {
                e.superseded_by_ns: e.as_candidate()
                for e in view.ledger.values()
                if e.state is KnowledgeState.SUPERSEDED and e.superseded_by_ns
            }
        key = (view.stats, view.ledger, len(view.candidates))
        if (
            self._key is None
            or self._key[0] is not key[0]
            or self._key[1] is not key[1]
            or self._key[2] != key[2]
        ):
            self._key = key
            self._index = _Index.of(c for c in view.candidates.values() if c.visible)

    def _compute(self, view: View, candidate: Candidate) -> CandidateChanges:
        if not subject_keys(candidate):
            return NONE
        replaced = self._replaced.get(candidate.timestamp_ns)
        if replaced is not None:
            supersedes = superseded_fact(candidate, [replaced])
        else:
            live = self._live_index.near(candidate)
            supersedes = superseded_fact(candidate, [self._live[ts] for ts in live])
        near = self._index.near(candidate)
        others = [c for c in map(view.candidates.get, near) if c is not None and c.visible]
        found = conflicts(candidate, others)
        if supersedes is None and not found:
            return NONE
        return CandidateChanges(supersedes, tuple(found))
