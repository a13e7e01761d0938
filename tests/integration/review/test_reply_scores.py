"""GetStats(conversation_id) lists the latest score of every reply, on a real server with a
real SQLite file: below-threshold replies keep their numbers, an incremental ingest updates
only what it scored, replies without timestamps are listed by node path, trained ones say
so, it all survives a restart, and a database from before these scores still opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ftreview.core.wire import timestamp_ns, to_timestamp
from ftreview.v1 import activity_pb2, conversation_pb2, review_pb2, scorer_pb2
from review_support import (
    BASE_NS,
    ReviewUnderTest,
    RunningFakeScorer,
    leaf,
    make_conversation,
    reply_text,
    reply_ts,
)

from review_service.adapters.store_sqlite import SCHEMA_VERSION
from review_service.api.server import DATABASE_NAME

S = review_pb2
SUCCEEDED = activity_pb2.ACTIVITY_STATE_SUCCEEDED
BELOW = scorer_pb2.NOT_CANDIDATE_REASON_BELOW_THRESHOLD
UNSET = scorer_pb2.NOT_CANDIDATE_REASON_UNSET_TIMESTAMP
TRAINED = scorer_pb2.NOT_CANDIDATE_REASON_ALREADY_TRAINED
NOT_REQUESTED = scorer_pb2.NOT_CANDIDATE_REASON_NOT_REQUESTED


async def replies_of(review: ReviewUnderTest, cid: str) -> list[scorer_pb2.ReplyScore]:
    stats = await review.stub.GetStats(S.GetStatsRequest(conversation_id=cid))
    return list(stats.replies)


def by_content(replies: list[scorer_pb2.ReplyScore]) -> dict[str, scorer_pb2.ReplyScore]:
    return {r.content: r for r in replies}


async def test_every_reply_is_listed_with_its_score_and_next_turns_update_only_theirs(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    table = fake_scorer.scorer.divergence
    table[reply_text("s", 0)] = 0.5
    table[reply_text("s", 1)] = -0.03  # below the threshold, and negative
    assert (await review.ingest_and_wait(make_conversation("s", 2))).state == SUCCEEDED

    first = await replies_of(review, "s")
    assert [r.content for r in first] == [reply_text("s", 0), reply_text("s", 1)]
    candidate, below = first
    assert (candidate.scored, candidate.candidate, candidate.divergence, candidate.peak) == (
        True, True, 0.5, 1.0,
    )  # fmt: skip
    assert (below.scored, below.candidate, below.reason, below.divergence, below.peak) == (
        True, False, BELOW, -0.03, -0.06,
    )  # fmt: skip
    assert timestamp_ns(below.timestamp) == reply_ts("s", 1) and below.node_path == "nodes[5]"
    assert not below.tokens  # per-token values stay with the candidates

    # The next turn: only the new reply is scored; the earlier ones keep their scores even
    # though the table would now score them differently.
    table[reply_text("s", 0)] = 9.0
    table[reply_text("s", 1)] = 9.0
    table[reply_text("s", 2)] = 2e-8
    assert (await review.ingest_and_wait(make_conversation("s", 3))).state == SUCCEEDED
    assert [timestamp_ns(t) for t in fake_scorer.scorer.requests[-1].only] == [reply_ts("s", 2)]
    second = by_content(await replies_of(review, "s"))
    assert second[reply_text("s", 0)].divergence == 0.5
    assert second[reply_text("s", 1)].divergence == -0.03
    assert (second[reply_text("s", 2)].divergence, second[reply_text("s", 2)].reason) == (
        2e-8, BELOW,
    )  # fmt: skip

    # Overall stats list no replies: they belong to one conversation.
    assert not (await review.stub.GetStats(S.GetStatsRequest())).replies
    assert await replies_of(review, "nobody") == []

    # Trained since: listed as already trained, with the scores it had; and after a restart
    # everything is still there.
    await review.stub.Approve(S.ApproveRequest(timestamps=[to_timestamp(reply_ts("s", 0))]))
    await review.stub.Export(S.ExportRequest(mark_trained=True))
    await review.restart()
    after = by_content(await replies_of(review, "s"))
    trained = after[reply_text("s", 0)]
    assert (trained.candidate, trained.reason, trained.divergence) == (False, TRAINED, 0.5)
    assert after[reply_text("s", 1)].divergence == -0.03


def _with_unset_reply(turns: int) -> conversation_pb2.Conversation:
    """An old log: a memory, then a reply without a timestamp, then `turns` timed turns."""
    conv = make_conversation("u", turns)
    conv.nodes.insert(2, leaf(conversation_pb2.ROLE_USER, "old question"))
    conv.nodes.insert(3, leaf(conversation_pb2.ROLE_ASSISTANT, "an old reply"))
    return conv


async def test_a_reply_without_a_timestamp_is_listed_by_its_path_and_rescored_each_pass(
    review: ReviewUnderTest, fake_scorer: RunningFakeScorer
) -> None:
    table = fake_scorer.scorer.divergence
    table["an old reply"] = 0.7
    assert (await review.ingest_and_wait(_with_unset_reply(1))).state == SUCCEEDED
    old, timed = await replies_of(review, "u")
    assert (old.content, old.node_path, timestamp_ns(old.timestamp)) == (
        "an old reply", "nodes[3]", 0,
    )  # fmt: skip
    assert (old.scored, old.divergence, old.candidate, old.reason) == (True, 0.7, False, UNSET)
    assert timed.candidate

    # The Scorer scores unset-timestamp replies on every pass: the latest value is kept.
    table["an old reply"] = 0.2
    assert (await review.ingest_and_wait(_with_unset_reply(2))).state == SUCCEEDED
    replies = await replies_of(review, "u")
    assert [r.content for r in replies] == ["an old reply", reply_text("u", 0), reply_text("u", 1)]
    assert (replies[0].divergence, replies[0].reason) == (0.2, UNSET)
    assert [r.candidate for r in replies[1:]] == [True, True]


# The schema of the first release, verbatim: scored_replies without the scores.
_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE candidates (
    timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, content TEXT NOT NULL,
    context TEXT NOT NULL, divergence REAL NOT NULL, peak REAL NOT NULL, tokens TEXT NOT NULL,
    alternate TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'forgotten')),
    scored_at_ns INTEGER NOT NULL, decided_at_ns INTEGER NOT NULL, reject_reason TEXT NOT NULL
);
CREATE TABLE trained (
    timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL,
    trained_at_ns INTEGER NOT NULL, destination TEXT NOT NULL, job_id TEXT NOT NULL
);
CREATE TABLE scored_replies (timestamp_ns INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL);
CREATE INDEX scored_by_conversation ON scored_replies (conversation_id);
CREATE TABLE conversations (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE stats (conversation_id TEXT PRIMARY KEY, body BLOB NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def _old_database(home: Path) -> None:
    """What the first release left after scoring conversation "m" (two replies; reply 0 a
    candidate, approved) and training reply 1 of another conversation."""
    home.mkdir(parents=True)
    conv = make_conversation("m", 2)
    db = sqlite3.connect(home / DATABASE_NAME)
    db.executescript(_SCHEMA_V1)
    db.execute(
        "INSERT INTO candidates VALUES (?, 'm', ?, '[]', 1.5, 3.5, '[]', '', 'approved', ?, ?, '')",
        (reply_ts("m", 0), reply_text("m", 0), BASE_NS, BASE_NS),
    )
    db.executemany(
        "INSERT INTO scored_replies VALUES (?, 'm')", [(reply_ts("m", i),) for i in range(2)]
    )
    db.execute("INSERT INTO conversations VALUES ('m', ?)", (conv.SerializeToString(),))
    db.execute(
        "INSERT INTO trained VALUES (?, 'x', ?, 'export:openai', '')", (BASE_NS + 5, BASE_NS)
    )
    db.commit()
    db.close()


async def test_a_database_from_before_these_scores_opens_and_keeps_everything(
    tmp_path: Path, fake_scorer: RunningFakeScorer
) -> None:
    home = tmp_path / "home"
    _old_database(home)
    review = ReviewUnderTest(home, fake_scorer.address)
    await review.start()
    try:
        (approved,) = await review.list()
        assert approved.status == S.CANDIDATE_STATUS_APPROVED and approved.divergence == 1.5
        ledger = await review.stub.ListTrained(S.ListTrainedRequest())
        assert [timestamp_ns(e.timestamp) for e in ledger.entries] == [BASE_NS + 5]

        # Scored by the old release: the candidate lends its scores; the other reply's
        # score was never kept, and it says it was scored before.
        candidate, unknown = await replies_of(review, "m")
        assert (candidate.scored, candidate.divergence, candidate.candidate) == (True, 1.5, True)
        assert (unknown.scored, unknown.reason) == (False, NOT_REQUESTED)

        # The next turn scores only the new reply: the old rows still mark theirs as scored.
        assert (await review.ingest_and_wait(make_conversation("m", 3))).state == SUCCEEDED
        assert [timestamp_ns(t) for t in fake_scorer.scorer.requests[-1].only] == [reply_ts("m", 2)]
        assert [r.scored for r in await replies_of(review, "m")] == [True, False, True]
    finally:
        await review.stop()

    db = sqlite3.connect(home / DATABASE_NAME)
    columns = {row[1] for row in db.execute("PRAGMA table_info(scored_replies)")}
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert {"divergence", "peak", "candidate", "reason", "node_path", "content"} <= columns
    assert version == (str(SCHEMA_VERSION),)
