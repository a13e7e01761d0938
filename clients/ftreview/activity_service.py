"""The `Activities` gRPC service over an `ActivityHub`: the same for every server that runs
long work, so each serves it by adding this one servicer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from ftreview.activity_hub import ActivityHub
from ftreview.v1 import activity_pb2, activity_pb2_grpc


class ActivitiesServicer(activity_pb2_grpc.ActivitiesServicer):  # type: ignore[misc, unused-ignore]
    def __init__(self, hub: ActivityHub) -> None:
        self.hub = hub

    async def WatchActivities(
        self, request: activity_pb2.WatchActivitiesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[activity_pb2.WatchActivitiesResponse]:
        async for event in self.hub.watch(request.activity_id):
            yield event

    async def ListActivities(
        self, request: activity_pb2.ListActivitiesRequest, context: grpc.aio.ServicerContext
    ) -> activity_pb2.ListActivitiesResponse:
        return activity_pb2.ListActivitiesResponse(activities=self.hub.list(request.limit or 50))
