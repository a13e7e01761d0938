"""The `Activities` gRPC service over an `ActivityHub`: the same for every service that runs
long work, so the server lifecycle (`ftreview.core.server`) adds it to each of them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from ftreview.core.activity_hub import ActivityHub
from ftreview.v1 import activity_pb2, activity_pb2_grpc

ACTIVITIES_SERVICE = activity_pb2.DESCRIPTOR.services_by_name["Activities"].full_name


class ActivitiesServicer(activity_pb2_grpc.ActivitiesServicer):  # type: ignore[misc, unused-ignore]
    def __init__(self, hub: ActivityHub) -> None:
        self.hub = hub

    def add_to(self, server: grpc.aio.Server) -> None:
        activity_pb2_grpc.add_ActivitiesServicer_to_server(self, server)

    async def WatchActivities(
        self, request: activity_pb2.WatchActivitiesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[activity_pb2.WatchActivitiesResponse]:
        async for event in self.hub.watch(request.activity_id):
            yield event

    async def ListActivities(
        self, request: activity_pb2.ListActivitiesRequest, context: grpc.aio.ServicerContext
    ) -> activity_pb2.ListActivitiesResponse:
        return activity_pb2.ListActivitiesResponse(activities=self.hub.list(request.limit or 50))
