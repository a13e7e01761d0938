import datetime

from ftreview.v1 import conversation_pb2 as _conversation_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Variant(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VARIANT_UNSPECIFIED: _ClassVar[Variant]
    VARIANT_WITH_MEMORIES: _ClassVar[Variant]
    VARIANT_WITHOUT_MEMORIES: _ClassVar[Variant]

class NotCandidateReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOT_CANDIDATE_REASON_UNSPECIFIED: _ClassVar[NotCandidateReason]
    NOT_CANDIDATE_REASON_BELOW_THRESHOLD: _ClassVar[NotCandidateReason]
    NOT_CANDIDATE_REASON_UNSET_TIMESTAMP: _ClassVar[NotCandidateReason]
    NOT_CANDIDATE_REASON_ALREADY_TRAINED: _ClassVar[NotCandidateReason]
    NOT_CANDIDATE_REASON_TOO_LONG: _ClassVar[NotCandidateReason]
    NOT_CANDIDATE_REASON_TOKENIZATION_MISMATCH: _ClassVar[NotCandidateReason]
    NOT_CANDIDATE_REASON_NOT_REQUESTED: _ClassVar[NotCandidateReason]
VARIANT_UNSPECIFIED: Variant
VARIANT_WITH_MEMORIES: Variant
VARIANT_WITHOUT_MEMORIES: Variant
NOT_CANDIDATE_REASON_UNSPECIFIED: NotCandidateReason
NOT_CANDIDATE_REASON_BELOW_THRESHOLD: NotCandidateReason
NOT_CANDIDATE_REASON_UNSET_TIMESTAMP: NotCandidateReason
NOT_CANDIDATE_REASON_ALREADY_TRAINED: NotCandidateReason
NOT_CANDIDATE_REASON_TOO_LONG: NotCandidateReason
NOT_CANDIDATE_REASON_TOKENIZATION_MISMATCH: NotCandidateReason
NOT_CANDIDATE_REASON_NOT_REQUESTED: NotCandidateReason

class ReplySpan(_message.Message):
    __slots__ = ("timestamp", "node_path", "start", "end", "content")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NODE_PATH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    node_path: str
    start: int
    end: int
    content: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node_path: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., content: _Optional[str] = ...) -> None: ...

class TokenizeRequest(_message.Message):
    __slots__ = ("conversation", "variant")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    variant: Variant
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., variant: _Optional[_Union[Variant, str]] = ...) -> None: ...

class TokenizeResponse(_message.Message):
    __slots__ = ("token_ids", "replies", "text")
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    replies: _containers.RepeatedCompositeFieldContainer[ReplySpan]
    text: str
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ..., replies: _Optional[_Iterable[_Union[ReplySpan, _Mapping]]] = ..., text: _Optional[str] = ...) -> None: ...

class TokenScore(_message.Message):
    __slots__ = ("token_id", "text", "logprob_with_memories", "logprob_without_memories", "divergence")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LOGPROB_WITH_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    LOGPROB_WITHOUT_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    token_id: int
    text: str
    logprob_with_memories: float
    logprob_without_memories: float
    divergence: float
    def __init__(self, token_id: _Optional[int] = ..., text: _Optional[str] = ..., logprob_with_memories: _Optional[float] = ..., logprob_without_memories: _Optional[float] = ..., divergence: _Optional[float] = ...) -> None: ...

class ReplyScore(_message.Message):
    __slots__ = ("timestamp", "node_path", "content", "divergence", "peak", "tokens", "scored", "candidate", "reason", "context_tokens_cut", "attributions")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NODE_PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_CUT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    node_path: str
    content: str
    divergence: float
    peak: float
    tokens: _containers.RepeatedCompositeFieldContainer[TokenScore]
    scored: bool
    candidate: bool
    reason: NotCandidateReason
    context_tokens_cut: int
    attributions: _containers.RepeatedCompositeFieldContainer[MemoryAttribution]
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node_path: _Optional[str] = ..., content: _Optional[str] = ..., divergence: _Optional[float] = ..., peak: _Optional[float] = ..., tokens: _Optional[_Iterable[_Union[TokenScore, _Mapping]]] = ..., scored: _Optional[bool] = ..., candidate: _Optional[bool] = ..., reason: _Optional[_Union[NotCandidateReason, str]] = ..., context_tokens_cut: _Optional[int] = ..., attributions: _Optional[_Iterable[_Union[MemoryAttribution, _Mapping]]] = ...) -> None: ...

class MemoryAttribution(_message.Message):
    __slots__ = ("node_path", "content", "attribution")
    NODE_PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    node_path: str
    content: str
    attribution: float
    def __init__(self, node_path: _Optional[str] = ..., content: _Optional[str] = ..., attribution: _Optional[float] = ...) -> None: ...

class FinetuneScoringStats(_message.Message):
    __slots__ = ("conversation_id", "responses_seen", "responses_scored", "responses_above_threshold", "max_divergence", "threshold", "skipped_unset_timestamp", "skipped_already_trained", "skipped_too_long", "skipped_tokenization_mismatch", "truncated", "error", "taken_at")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_SEEN_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_SCORED_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_ABOVE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_UNSET_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_ALREADY_TRAINED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_TOO_LONG_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_TOKENIZATION_MISMATCH_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    responses_seen: int
    responses_scored: int
    responses_above_threshold: int
    max_divergence: float
    threshold: float
    skipped_unset_timestamp: int
    skipped_already_trained: int
    skipped_too_long: int
    skipped_tokenization_mismatch: int
    truncated: int
    error: str
    taken_at: _timestamp_pb2.Timestamp
    def __init__(self, conversation_id: _Optional[str] = ..., responses_seen: _Optional[int] = ..., responses_scored: _Optional[int] = ..., responses_above_threshold: _Optional[int] = ..., max_divergence: _Optional[float] = ..., threshold: _Optional[float] = ..., skipped_unset_timestamp: _Optional[int] = ..., skipped_already_trained: _Optional[int] = ..., skipped_too_long: _Optional[int] = ..., skipped_tokenization_mismatch: _Optional[int] = ..., truncated: _Optional[int] = ..., error: _Optional[str] = ..., taken_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScoreConversationRequest(_message.Message):
    __slots__ = ("conversation", "threshold", "exclude", "only", "request_id", "skip_attribution")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    ONLY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SKIP_ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    threshold: float
    exclude: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    only: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    request_id: str
    skip_attribution: bool
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., threshold: _Optional[float] = ..., exclude: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., only: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., request_id: _Optional[str] = ..., skip_attribution: _Optional[bool] = ...) -> None: ...

class ScoreConversationResponse(_message.Message):
    __slots__ = ("activity_id", "conversation_id", "replies", "max_divergence", "stats", "adapter")
    ACTIVITY_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    MAX_DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    activity_id: str
    conversation_id: str
    replies: _containers.RepeatedCompositeFieldContainer[ReplyScore]
    max_divergence: float
    stats: FinetuneScoringStats
    adapter: str
    def __init__(self, activity_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., replies: _Optional[_Iterable[_Union[ReplyScore, _Mapping]]] = ..., max_divergence: _Optional[float] = ..., stats: _Optional[_Union[FinetuneScoringStats, _Mapping]] = ..., adapter: _Optional[str] = ...) -> None: ...

class GenerateAlternateRequest(_message.Message):
    __slots__ = ("conversation", "reply_timestamp", "max_new_tokens", "request_id")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    REPLY_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    reply_timestamp: _timestamp_pb2.Timestamp
    max_new_tokens: int
    request_id: str
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., reply_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_new_tokens: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class GenerateAlternateResponse(_message.Message):
    __slots__ = ("activity_id", "text", "token_count", "adapter")
    ACTIVITY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    activity_id: str
    text: str
    token_count: int
    adapter: str
    def __init__(self, activity_id: _Optional[str] = ..., text: _Optional[str] = ..., token_count: _Optional[int] = ..., adapter: _Optional[str] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("backend", "model", "context_length", "backend_urls", "device", "version", "adapter", "adapter_reloads", "engine_notes")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    BACKEND_URLS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_RELOADS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_NOTES_FIELD_NUMBER: _ClassVar[int]
    backend: str
    model: str
    context_length: int
    backend_urls: _containers.RepeatedScalarFieldContainer[str]
    device: str
    version: str
    adapter: str
    adapter_reloads: int
    engine_notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, backend: _Optional[str] = ..., model: _Optional[str] = ..., context_length: _Optional[int] = ..., backend_urls: _Optional[_Iterable[str]] = ..., device: _Optional[str] = ..., version: _Optional[str] = ..., adapter: _Optional[str] = ..., adapter_reloads: _Optional[int] = ..., engine_notes: _Optional[_Iterable[str]] = ...) -> None: ...

class LoadAdapterRequest(_message.Message):
    __slots__ = ("path", "name")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    path: str
    name: str
    def __init__(self, path: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class LoadAdapterResponse(_message.Message):
    __slots__ = ("adapter",)
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    adapter: str
    def __init__(self, adapter: _Optional[str] = ...) -> None: ...

class AnswerRequest(_message.Message):
    __slots__ = ("conversation", "max_new_tokens")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    max_new_tokens: int
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class AnswerResponse(_message.Message):
    __slots__ = ("text", "adapter")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    text: str
    adapter: str
    def __init__(self, text: _Optional[str] = ..., adapter: _Optional[str] = ...) -> None: ...
