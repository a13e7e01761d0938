"""`RunTracker.resync`: after the activity stream comes back, which runs are lost.

The races it guards against (both seen in the slow tests): `follow` ingests a conversation
while its stream, reopened after a Review restart, is still receiving the snapshot. The
snapshot was taken before the Ingest, so it does not list the new run; the run is not
lost, its events follow the snapshot. Or the Ingest reached the restarted Review while the
stream was still waiting to reconnect, and the run ended before the snapshot: the
snapshot lists running activities only, so the run's end is looked up among the Review's
recent activities (`listed`); sent again as lost, it would report "0 new candidates" for
a run that found one."""

from __future__ import annotations

from ftreview.cli.progress import BatchProgress
from ftreview.cli.runs import RunTracker, ScoringRun
from ftreview.v1 import activity_pb2
from ftreview.v1 import conversation_pb2 as pb


def _run(activity_id: str) -> ScoringRun:
    conversation = pb.Conversation(id=f"conv-{activity_id}")
    return ScoringRun("", conversation, activity_id, activity_id, conversation.id)


def _ended(activity_id: str, new_candidates: int) -> activity_pb2.WatchActivitiesResponse:
    activity = activity_pb2.Activity(id=activity_id, state=activity_pb2.ACTIVITY_STATE_SUCCEEDED)
    activity.result.new_candidates = new_candidates
    return activity_pb2.WatchActivitiesResponse(activity=activity)


def _tracker() -> tuple[RunTracker, list[ScoringRun]]:
    ended: list[ScoringRun] = []
    return RunTracker(BatchProgress(enabled=False), on_end=ended.append), ended


def test_a_run_known_before_the_stream_reopened_and_not_in_its_snapshot_is_lost() -> None:
    tracker, ended = _tracker()
    tracker.add(_run("before"))
    tracker.opening()  # the Review restarted; the stream opens again
    tracker.resync(set())  # its snapshot: nothing running
    assert [(r.activity_id, r.lost, r.state) for r in ended] == [("before", True, "lost")]


def test_a_run_ingested_while_the_snapshot_was_on_its_way_is_not_lost() -> None:
    tracker, ended = _tracker()
    tracker.opening()
    tracker.add(_run("during"))  # its Ingest answered before the snapshot ended
    tracker.resync(set())
    assert ended == [] and not tracker.done
    tracker.event(_ended("during", 1))  # its end, after the snapshot
    assert [(r.activity_id, r.lost, r.new_candidates) for r in ended] == [("during", False, 1)]


def test_a_run_still_running_in_the_snapshot_is_followed_to_its_end() -> None:
    tracker, ended = _tracker()
    tracker.add(_run("kept"))
    tracker.opening()
    tracker.resync({"kept"})
    assert ended == []
    tracker.event(_ended("kept", 2))
    assert [(r.lost, r.new_candidates) for r in ended] == [(False, 2)]


def test_a_run_that_ended_while_the_stream_was_away_is_reported_from_the_listing() -> None:
    tracker, ended = _tracker()
    tracker.add(_run("quick"))  # ingested by the restarted Review, before the stream
    tracker.add(_run("gone"))  # ingested by the Review that stopped: it never ended
    tracker.opening()
    assert tracker.unaccounted(set()) == {"quick", "gone"}
    other = activity_pb2.Activity(id="not-ours", state=activity_pb2.ACTIVITY_STATE_SUCCEEDED)
    tracker.listed([_ended("quick", 1).activity, other])
    assert tracker.unaccounted(set()) == {"gone"}
    tracker.resync(set())
    assert [(r.activity_id, r.lost, r.new_candidates) for r in ended] == [
        ("quick", False, 1),
        ("gone", True, 0),
    ]


def test_a_listed_activity_still_running_leaves_its_run_to_the_stream() -> None:
    tracker, ended = _tracker()
    tracker.add(_run("slow"))
    tracker.opening()
    running = activity_pb2.Activity(id="slow", state=activity_pb2.ACTIVITY_STATE_RUNNING)
    tracker.listed([running])
    assert ended == [] and tracker.unaccounted({"slow"}) == set()
