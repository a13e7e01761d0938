"""The calls every ftreview server answers: health and its own activity stream.

Invariant: each server's `Activities` service reports the work that server runs; a client
watches one server. The Review relays the Scorer's progress for the work it starts under the
same activity id, so a client of the Review never needs the Scorer's address.
"""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc

from ftreview.client.base import Call, StreamCall, Stubs, stream, unary
from ftreview.v1 import activity_pb2, activity_pb2_grpc

_HEALTH_NAMES = {
    health_pb2.HealthCheckResponse.UNKNOWN: "UNKNOWN",
    health_pb2.HealthCheckResponse.SERVING: "SERVING",
    health_pb2.HealthCheckResponse.NOT_SERVING: "NOT_SERVING",
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN: "SERVICE_UNKNOWN",
}

COMMON_STUBS: Stubs = {
    "activities": activity_pb2_grpc.ActivitiesStub,
    "health": health_pb2_grpc.HealthStub,
}


class ServerCalls:
    """Health and activities, shared by the Scorer's and the Review's clients."""

    @unary
    def health(self, service: str = "") -> Call[str]:
        """The grpc health status name ("SERVING", "NOT_SERVING", ...)."""
        return Call(
            "health",
            "Check",
            health_pb2.HealthCheckRequest(service=service),
            lambda reply: _HEALTH_NAMES.get(reply.status, "UNKNOWN"),
        )

    @unary
    def list_activities(self, limit: int = 0) -> Call[list[activity_pb2.Activity]]:
        """This server's recent activities, newest first (`limit` 0: all it keeps)."""
        return Call(
            "activities",
            "ListActivities",
            activity_pb2.ListActivitiesRequest(limit=limit),
            lambda reply: list(reply.activities),
        )

    @stream
    def watch_activities(
        self, activity_id: str = ""
    ) -> StreamCall[activity_pb2.WatchActivitiesResponse]:
        """Snapshot, SNAPSHOT_END, then live events; stop iterating (or close) to end it.

        `activity_id` narrows the stream to one activity."""
        request = activity_pb2.WatchActivitiesRequest(activity_id=activity_id)
        return StreamCall("activities", "WatchActivities", request)
