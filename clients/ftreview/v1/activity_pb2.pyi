import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActivityState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVITY_STATE_UNSPECIFIED: _ClassVar[ActivityState]
    ACTIVITY_STATE_RUNNING: _ClassVar[ActivityState]
    ACTIVITY_STATE_SUCCEEDED: _ClassVar[ActivityState]
    ACTIVITY_STATE_FAILED: _ClassVar[ActivityState]
    ACTIVITY_STATE_CANCELLED: _ClassVar[ActivityState]

class ActivityEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVITY_EVENT_KIND_UNSPECIFIED: _ClassVar[ActivityEventKind]
    ACTIVITY_EVENT_KIND_SNAPSHOT: _ClassVar[ActivityEventKind]
    ACTIVITY_EVENT_KIND_SNAPSHOT_END: _ClassVar[ActivityEventKind]
    ACTIVITY_EVENT_KIND_STARTED: _ClassVar[ActivityEventKind]
    ACTIVITY_EVENT_KIND_PROGRESS: _ClassVar[ActivityEventKind]
    ACTIVITY_EVENT_KIND_ENDED: _ClassVar[ActivityEventKind]
ACTIVITY_STATE_UNSPECIFIED: ActivityState
ACTIVITY_STATE_RUNNING: ActivityState
ACTIVITY_STATE_SUCCEEDED: ActivityState
ACTIVITY_STATE_FAILED: ActivityState
ACTIVITY_STATE_CANCELLED: ActivityState
ACTIVITY_EVENT_KIND_UNSPECIFIED: ActivityEventKind
ACTIVITY_EVENT_KIND_SNAPSHOT: ActivityEventKind
ACTIVITY_EVENT_KIND_SNAPSHOT_END: ActivityEventKind
ACTIVITY_EVENT_KIND_STARTED: ActivityEventKind
ACTIVITY_EVENT_KIND_PROGRESS: ActivityEventKind
ACTIVITY_EVENT_KIND_ENDED: ActivityEventKind

class Activity(_message.Message):
    __slots__ = ("id", "label", "kind", "done", "total", "state", "error", "started_at", "ended_at", "detail", "result")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    kind: str
    done: int
    total: int
    state: ActivityState
    error: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    detail: str
    result: ActivityResult
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., kind: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., state: _Optional[_Union[ActivityState, str]] = ..., error: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., result: _Optional[_Union[ActivityResult, _Mapping]] = ...) -> None: ...

class ActivityResult(_message.Message):
    __slots__ = ("new_candidates", "conversation_id", "accepted", "job_ids", "adapter", "learnt", "returned")
    NEW_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    LEARNT_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    new_candidates: int
    conversation_id: str
    accepted: int
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    adapter: str
    learnt: int
    returned: int
    def __init__(self, new_candidates: _Optional[int] = ..., conversation_id: _Optional[str] = ..., accepted: _Optional[int] = ..., job_ids: _Optional[_Iterable[str]] = ..., adapter: _Optional[str] = ..., learnt: _Optional[int] = ..., returned: _Optional[int] = ...) -> None: ...

class WatchActivitiesResponse(_message.Message):
    __slots__ = ("kind", "activity")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    kind: ActivityEventKind
    activity: Activity
    def __init__(self, kind: _Optional[_Union[ActivityEventKind, str]] = ..., activity: _Optional[_Union[Activity, _Mapping]] = ...) -> None: ...

class WatchActivitiesRequest(_message.Message):
    __slots__ = ("activity_id",)
    ACTIVITY_ID_FIELD_NUMBER: _ClassVar[int]
    activity_id: str
    def __init__(self, activity_id: _Optional[str] = ...) -> None: ...

class ListActivitiesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListActivitiesResponse(_message.Message):
    __slots__ = ("activities",)
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    activities: _containers.RepeatedCompositeFieldContainer[Activity]
    def __init__(self, activities: _Optional[_Iterable[_Union[Activity, _Mapping]]] = ...) -> None: ...
