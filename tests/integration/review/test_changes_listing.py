"""Listing over a real Review gRPC server says what each candidate would change: the live
trained fact it supersedes, the undecided candidates it conflicts with, and what differs
(Candidate.supersedes, conflicts_with, change), in ListCandidates, Approve/Reject answers
and WatchCandidates. The fact is trained through the real path: approved, sent to a real
HTTP receiver, in the ledger."""

from __future__ import annotations

from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import conversation_pb2
from ftreview.v1 import review_pb2 as S
from review_support import (
    BASE_NS,
    CandidateWatch,
    Receiver,
    ReviewUnderTest,
    RunningFakeScorer,
    leaf,
    memory_branch,
    until_none_in_training,
)

from review_service.app.config import ConfigFile

OLD, NEW, OTHER, CAT = (BASE_NS + i * 1_000_000 for i in (1, 2, 3, 4))


def fact_chat(cid: str, ts: int, memory: str, reply: str) -> conversation_pb2.Conversation:
    conv = conversation_pb2.Conversation(id=cid)
    conv.nodes.append(leaf(conversation_pb2.ROLE_SYSTEM, "You are helpful.", ts - 10))
    conv.nodes.append(memory_branch(leaf(conversation_pb2.ROLE_SYSTEM, memory, ts - 9)))
    conv.nodes.append(leaf(conversation_pb2.ROLE_USER, "When is it?", ts - 1))
    conv.nodes.append(leaf(conversation_pb2.ROLE_ASSISTANT, reply, ts))
    return conv


CHATS = {
    OLD: ("old", "User's dentist appointment is on 18 March at 14:30.", "On 18 March at 2:30 pm."),
    NEW: ("new", "User moved the dentist appointment to 20 March.", "It's on 20 March now."),
    OTHER: ("other", "The user's appointment with the dentist is on 22 March.", "On March 22nd."),
    CAT: ("cat", "The user's cat is named Biscuit.", "Your cat is Biscuit."),
}  # fmt: skip


async def ingest(review: ReviewUnderTest, scorer: RunningFakeScorer, ts: int) -> None:
    cid, memory, reply = CHATS[ts]
    scorer.scorer.divergence[reply] = 2.0
    await review.ingest_and_wait(fact_chat(cid, ts, memory, reply))


async def listed(review: ReviewUnderTest) -> dict[int, S.Candidate]:
    return {timestamp_ns(c.timestamp): c for c in await review.list()}


def conflicts_of(c: S.Candidate) -> list[int]:
    return [timestamp_ns(t) for t in c.conflicts_with]


async def test_listing_says_what_each_candidate_supersedes_and_conflicts_with(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer, receiver: Receiver
) -> None:
    config = ConfigFile(review.config_path)
    config.set_value("finetune_url", receiver.url)
    config.set_value("finetune_retries", 0)
    await ingest(review, fake_scorer, OLD)
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(OLD)]))
    await review.stub.Send(S.SendRequest())
    await until_none_in_training(review.stub)
    (entry,) = (await review.stub.ListTrained(S.ListTrainedRequest())).entries
    assert timestamp_ns(entry.timestamp) == OLD
    for ts in (NEW, OTHER, CAT):
        await ingest(review, fake_scorer, ts)

    shown = await listed(review)
    assert set(shown) == {NEW, OTHER, CAT}
    new, other, cat = shown[NEW], shown[OTHER], shown[CAT]
    assert timestamp_ns(new.supersedes) == OLD and timestamp_ns(other.supersedes) == OLD
    assert new.change == "18 March 14:30 -> 20 March"
    assert other.change == "18 March 14:30 -> 22 March"
    assert conflicts_of(new) == [OTHER] and conflicts_of(other) == [NEW]
    assert not cat.HasField("supersedes") and conflicts_of(cat) == [] and cat.change == ""

    watch = CandidateWatch(review.stub)
    await watch.wait_for(
        lambda events: any(e.kind == S.CANDIDATE_EVENT_KIND_SNAPSHOT_END for e in events)
    )
    snapshot = {
        timestamp_ns(e.candidate.timestamp): e.candidate
        for e in watch.of_kind(S.CANDIDATE_EVENT_KIND_SNAPSHOT)
    }
    assert conflicts_of(snapshot[NEW]) == [OTHER] and snapshot[NEW].change == new.change

    # Approving NEW supersedes the fact; it still says which one, and the conflict stands.
    (approved,) = (
        await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(NEW)]))
    ).candidates
    assert timestamp_ns(approved.supersedes) == OLD and conflicts_of(approved) == [OTHER]
    # OTHER no longer supersedes a live fact (NEW's approval superseded it), and
    # conflicts with the approved NEW: approving both would train a contradiction.
    other = (await listed(review))[OTHER]
    assert not other.HasField("supersedes") and conflicts_of(other) == [NEW]
    assert other.change == "20 March -> 22 March"

    # A rejected candidate is no longer undecided: no conflict with it.
    (rejected,) = (
        await review.stub.Reject(S.RejectRequest(timestamps=[to_timestamp(OTHER)], reason="wrong"))
    ).candidates
    assert conflicts_of(rejected) == [NEW]
    assert conflicts_of((await listed(review))[NEW]) == []
    watch.close()
