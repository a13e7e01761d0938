"""The activity hub: snapshots, ordering, coalescing for slow watchers, watching by id."""

from __future__ import annotations

import asyncio
import threading

from ftreview.core.activity_hub import ActivityHub, DuplicateActivity
from ftreview.v1 import activity_pb2 as pb

K = pb.ActivityEventKind


async def _drain(hub: ActivityHub, activity_id: str) -> list[pb.WatchActivitiesResponse]:
    return [event async for event in hub.watch(activity_id)]


async def test_slow_watcher_gets_coalesced_progress_and_never_blocks_the_work() -> None:
    hub = ActivityHub()
    slow = hub.watch()
    assert (await anext(slow)).kind == K.ACTIVITY_EVENT_KIND_SNAPSHOT_END
    fast_events: list[pb.WatchActivitiesResponse] = []
    ready = asyncio.Event()

    async def fast() -> None:
        async for event in hub.watch("job"):
            if event.kind == K.ACTIVITY_EVENT_KIND_SNAPSHOT_END:
                ready.set()
            fast_events.append(event)

    task = asyncio.create_task(fast())
    await ready.wait()
    activity = hub.start("score", "scoring", total=10_000, activity_id="job")
    for done in range(10_000):  # the slow watcher reads nothing meanwhile
        activity.progress(done + 1)
        if done % 1000 == 0:
            await asyncio.sleep(0)
    activity.succeed()
    await asyncio.wait_for(task, 5)

    slow_events = [await anext(slow) for _ in range(3)]
    assert [e.kind for e in slow_events] == [
        K.ACTIVITY_EVENT_KIND_STARTED,
        K.ACTIVITY_EVENT_KIND_PROGRESS,
        K.ACTIVITY_EVENT_KIND_ENDED,
    ]
    assert slow_events[1].activity.done == 10_000  # only the latest value was kept
    assert fast_events[-1].kind == K.ACTIVITY_EVENT_KIND_ENDED
    assert fast_events[-1].activity.state == pb.ACTIVITY_STATE_SUCCEEDED
    await slow.aclose()
    assert hub.watcher_count == 0


async def test_watching_a_finished_activity_returns_its_end_at_once() -> None:
    hub = ActivityHub()
    activity = hub.start("alternate", "alt", activity_id="done-one")
    activity.fail("engine down")
    events = await asyncio.wait_for(_drain(hub, "done-one"), 2)
    assert [e.kind for e in events] == [
        K.ACTIVITY_EVENT_KIND_SNAPSHOT,
        K.ACTIVITY_EVENT_KIND_SNAPSHOT_END,
    ]
    assert events[0].activity.state == pb.ACTIVITY_STATE_FAILED
    assert events[0].activity.error == "engine down"
    assert events[0].activity.HasField("ended_at")


async def test_an_activity_ending_while_its_snapshot_is_sent_still_delivers_its_end() -> None:
    # A watcher that saw the activity running must see it end: the stream may not stop
    # after SNAPSHOT_END just because the activity ended while the snapshot was on its way
    # (a Review ingest with nothing new to score ends that fast).
    hub = ActivityHub()
    activity = hub.start("score", "quick", activity_id="quick")
    watch = hub.watch("quick")
    first = await anext(watch)
    assert first.kind == K.ACTIVITY_EVENT_KIND_SNAPSHOT
    assert first.activity.state == pb.ACTIVITY_STATE_RUNNING
    activity.succeed("nothing new to score")
    rest = [event async for event in watch]
    assert [e.kind for e in rest] == [
        K.ACTIVITY_EVENT_KIND_SNAPSHOT_END,
        K.ACTIVITY_EVENT_KIND_ENDED,
    ]
    assert rest[-1].activity.state == pb.ACTIVITY_STATE_SUCCEEDED
    assert rest[-1].activity.detail == "nothing new to score"
    assert hub.watcher_count == 0


async def test_progress_from_a_worker_thread_arrives_in_order() -> None:
    hub = ActivityHub()
    watch = asyncio.create_task(_drain(hub, "threaded"))
    await asyncio.sleep(0)
    activity = hub.start("score", "threaded", total=3, activity_id="threaded")

    def work() -> None:
        for done in (1, 2, 3):
            activity.progress(done, detail=f"chunk {done}")

    thread = threading.Thread(target=work)
    thread.start()
    await asyncio.to_thread(thread.join)
    await asyncio.sleep(0)
    activity.succeed()
    events = await asyncio.wait_for(watch, 2)
    progress = [e.activity.done for e in events if e.kind == K.ACTIVITY_EVENT_KIND_PROGRESS]
    assert progress and progress == sorted(progress) and progress[-1] == 3
    assert events[-1].kind == K.ACTIVITY_EVENT_KIND_ENDED


async def test_request_ids_are_unique_and_listing_is_newest_first() -> None:
    hub = ActivityHub(keep_finished=2)
    for name in ("a", "b", "c"):
        hub.start("score", name, activity_id=name).succeed()
    try:
        hub.start("score", "again", activity_id="c")
    except DuplicateActivity:
        pass
    else:
        raise AssertionError("a duplicate id was accepted")
    assert [a.id for a in hub.list()] == ["c", "b"]


async def test_an_activity_carries_its_typed_result_from_start_to_end() -> None:
    hub = ActivityHub()
    activity = hub.start("train", "train 2 replies", activity_id="t", job_ids=["ft-3"])
    assert list(activity.message.result.job_ids) == ["ft-3"]
    activity.succeed("learnt 1 of 2", adapter="v4", learnt=1, returned=1)
    ended = hub.get("t")
    assert ended is not None and ended.state == pb.ACTIVITY_STATE_SUCCEEDED
    result = ended.result
    assert (list(result.job_ids), result.adapter, result.learnt, result.returned) == (
        ["ft-3"], "v4", 1, 1,
    )  # fmt: skip


async def test_a_failed_activity_keeps_what_it_returned() -> None:
    hub = ActivityHub()
    activity = hub.start("train", "train", activity_id="t")
    activity.fail("job ft-1 failed: guard", returned=3)
    ended = hub.get("t")
    assert ended is not None and ended.state == pb.ACTIVITY_STATE_FAILED
    assert (ended.error, ended.result.returned) == ("job ft-1 failed: guard", 3)
