import datetime

from ftreview.v1 import conversation_pb2 as _conversation_pb2
from ftreview.v1 import scorer_pb2 as _scorer_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CandidateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_STATUS_UNSPECIFIED: _ClassVar[CandidateStatus]
    CANDIDATE_STATUS_PENDING: _ClassVar[CandidateStatus]
    CANDIDATE_STATUS_APPROVED: _ClassVar[CandidateStatus]
    CANDIDATE_STATUS_REJECTED: _ClassVar[CandidateStatus]
    CANDIDATE_STATUS_SENT: _ClassVar[CandidateStatus]

class Grounding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUNDING_UNSPECIFIED: _ClassVar[Grounding]
    GROUNDING_SUPPORTED: _ClassVar[Grounding]
    GROUNDING_BEYOND_MEMORIES: _ClassVar[Grounding]
    GROUNDING_CONTRADICTS_MEMORY: _ClassVar[Grounding]

class KnowledgeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KNOWLEDGE_STATE_UNSPECIFIED: _ClassVar[KnowledgeState]
    KNOWLEDGE_STATE_LIVE: _ClassVar[KnowledgeState]
    KNOWLEDGE_STATE_SUPERSEDED: _ClassVar[KnowledgeState]
    KNOWLEDGE_STATE_RETRACTED: _ClassVar[KnowledgeState]

class TrainingJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_JOB_STATE_UNSPECIFIED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_QUEUED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_RUNNING: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_SUCCEEDED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_FAILED: _ClassVar[TrainingJobState]

class CandidateOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_ORDER_UNSPECIFIED: _ClassVar[CandidateOrder]
    CANDIDATE_ORDER_DIVERGENCE: _ClassVar[CandidateOrder]
    CANDIDATE_ORDER_TIME: _ClassVar[CandidateOrder]

class CandidateEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_EVENT_KIND_UNSPECIFIED: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_SNAPSHOT: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_SNAPSHOT_END: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_ADDED: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_UPDATED: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_STATUS_CHANGED: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_REMOVED: _ClassVar[CandidateEventKind]
    CANDIDATE_EVENT_KIND_STATS: _ClassVar[CandidateEventKind]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_OPENAI: _ClassVar[ExportFormat]
    EXPORT_FORMAT_TRL: _ClassVar[ExportFormat]
CANDIDATE_STATUS_UNSPECIFIED: CandidateStatus
CANDIDATE_STATUS_PENDING: CandidateStatus
CANDIDATE_STATUS_APPROVED: CandidateStatus
CANDIDATE_STATUS_REJECTED: CandidateStatus
CANDIDATE_STATUS_SENT: CandidateStatus
GROUNDING_UNSPECIFIED: Grounding
GROUNDING_SUPPORTED: Grounding
GROUNDING_BEYOND_MEMORIES: Grounding
GROUNDING_CONTRADICTS_MEMORY: Grounding
KNOWLEDGE_STATE_UNSPECIFIED: KnowledgeState
KNOWLEDGE_STATE_LIVE: KnowledgeState
KNOWLEDGE_STATE_SUPERSEDED: KnowledgeState
KNOWLEDGE_STATE_RETRACTED: KnowledgeState
TRAINING_JOB_STATE_UNSPECIFIED: TrainingJobState
TRAINING_JOB_STATE_QUEUED: TrainingJobState
TRAINING_JOB_STATE_RUNNING: TrainingJobState
TRAINING_JOB_STATE_SUCCEEDED: TrainingJobState
TRAINING_JOB_STATE_FAILED: TrainingJobState
CANDIDATE_ORDER_UNSPECIFIED: CandidateOrder
CANDIDATE_ORDER_DIVERGENCE: CandidateOrder
CANDIDATE_ORDER_TIME: CandidateOrder
CANDIDATE_EVENT_KIND_UNSPECIFIED: CandidateEventKind
CANDIDATE_EVENT_KIND_SNAPSHOT: CandidateEventKind
CANDIDATE_EVENT_KIND_SNAPSHOT_END: CandidateEventKind
CANDIDATE_EVENT_KIND_ADDED: CandidateEventKind
CANDIDATE_EVENT_KIND_UPDATED: CandidateEventKind
CANDIDATE_EVENT_KIND_STATUS_CHANGED: CandidateEventKind
CANDIDATE_EVENT_KIND_REMOVED: CandidateEventKind
CANDIDATE_EVENT_KIND_STATS: CandidateEventKind
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_OPENAI: ExportFormat
EXPORT_FORMAT_TRL: ExportFormat

class GroundingSpan(_message.Message):
    __slots__ = ("start", "end", "kind", "node_path", "value")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NODE_PATH_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    kind: Grounding
    node_path: str
    value: str
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., kind: _Optional[_Union[Grounding, str]] = ..., node_path: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("timestamp", "conversation_id", "content", "divergence", "peak", "tokens", "alternate", "status", "scored_at", "decided_at", "reject_reason", "context", "question", "memories", "send_error", "job_id", "grounding", "grounding_spans", "supersedes", "conflicts_with", "change")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    ALTERNATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    SEND_ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_SPANS_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_WITH_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    conversation_id: str
    content: str
    divergence: float
    peak: float
    tokens: _containers.RepeatedCompositeFieldContainer[_scorer_pb2.TokenScore]
    alternate: str
    status: CandidateStatus
    scored_at: _timestamp_pb2.Timestamp
    decided_at: _timestamp_pb2.Timestamp
    reject_reason: str
    context: _containers.RepeatedCompositeFieldContainer[_conversation_pb2.Message]
    question: str
    memories: _containers.RepeatedCompositeFieldContainer[_scorer_pb2.MemoryAttribution]
    send_error: str
    job_id: str
    grounding: Grounding
    grounding_spans: _containers.RepeatedCompositeFieldContainer[GroundingSpan]
    supersedes: _timestamp_pb2.Timestamp
    conflicts_with: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    change: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversation_id: _Optional[str] = ..., content: _Optional[str] = ..., divergence: _Optional[float] = ..., peak: _Optional[float] = ..., tokens: _Optional[_Iterable[_Union[_scorer_pb2.TokenScore, _Mapping]]] = ..., alternate: _Optional[str] = ..., status: _Optional[_Union[CandidateStatus, str]] = ..., scored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reject_reason: _Optional[str] = ..., context: _Optional[_Iterable[_Union[_conversation_pb2.Message, _Mapping]]] = ..., question: _Optional[str] = ..., memories: _Optional[_Iterable[_Union[_scorer_pb2.MemoryAttribution, _Mapping]]] = ..., send_error: _Optional[str] = ..., job_id: _Optional[str] = ..., grounding: _Optional[_Union[Grounding, str]] = ..., grounding_spans: _Optional[_Iterable[_Union[GroundingSpan, _Mapping]]] = ..., supersedes: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conflicts_with: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., change: _Optional[str] = ...) -> None: ...

class TrainedEntry(_message.Message):
    __slots__ = ("timestamp", "conversation_id", "trained_at", "destination", "job_id", "divergence_before", "divergence_after", "adapter", "state", "superseded_by", "reason", "retraction_delivered", "comes_back", "checked_by_job", "content")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRACTION_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    COMES_BACK_FIELD_NUMBER: _ClassVar[int]
    CHECKED_BY_JOB_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    conversation_id: str
    trained_at: _timestamp_pb2.Timestamp
    destination: str
    job_id: str
    divergence_before: float
    divergence_after: float
    adapter: str
    state: KnowledgeState
    superseded_by: _timestamp_pb2.Timestamp
    reason: str
    retraction_delivered: bool
    comes_back: bool
    checked_by_job: str
    content: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversation_id: _Optional[str] = ..., trained_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destination: _Optional[str] = ..., job_id: _Optional[str] = ..., divergence_before: _Optional[float] = ..., divergence_after: _Optional[float] = ..., adapter: _Optional[str] = ..., state: _Optional[_Union[KnowledgeState, str]] = ..., superseded_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., retraction_delivered: _Optional[bool] = ..., comes_back: _Optional[bool] = ..., checked_by_job: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("id", "state", "examples", "epochs", "adapter", "trained_divergence_before", "trained_divergence_after", "recall", "generic_loglik_change", "error", "created_at", "ended_at", "destination", "per_example", "learnt", "drift", "general_retention", "kind", "continued_from", "retention", "facts_checked", "facts_kept")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    TRAINED_DIVERGENCE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TRAINED_DIVERGENCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    GENERIC_LOGLIK_CHANGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PER_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    LEARNT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    GENERAL_RETENTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTINUED_FROM_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    FACTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FACTS_KEPT_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: TrainingJobState
    examples: int
    epochs: int
    adapter: str
    trained_divergence_before: float
    trained_divergence_after: float
    recall: float
    generic_loglik_change: float
    error: str
    created_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    destination: str
    per_example: _containers.RepeatedCompositeFieldContainer[ExampleProof]
    learnt: int
    drift: float
    general_retention: float
    kind: str
    continued_from: str
    retention: _containers.RepeatedCompositeFieldContainer[FactCheck]
    facts_checked: int
    facts_kept: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[TrainingJobState, str]] = ..., examples: _Optional[int] = ..., epochs: _Optional[int] = ..., adapter: _Optional[str] = ..., trained_divergence_before: _Optional[float] = ..., trained_divergence_after: _Optional[float] = ..., recall: _Optional[float] = ..., generic_loglik_change: _Optional[float] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destination: _Optional[str] = ..., per_example: _Optional[_Iterable[_Union[ExampleProof, _Mapping]]] = ..., learnt: _Optional[int] = ..., drift: _Optional[float] = ..., general_retention: _Optional[float] = ..., kind: _Optional[str] = ..., continued_from: _Optional[str] = ..., retention: _Optional[_Iterable[_Union[FactCheck, _Mapping]]] = ..., facts_checked: _Optional[int] = ..., facts_kept: _Optional[int] = ...) -> None: ...

class FactCheck(_message.Message):
    __slots__ = ("idempotency_key", "timestamp", "comes_back", "retracted", "answer", "fact")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    COMES_BACK_FIELD_NUMBER: _ClassVar[int]
    RETRACTED_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    FACT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    timestamp: _timestamp_pb2.Timestamp
    comes_back: bool
    retracted: bool
    answer: str
    fact: str
    def __init__(self, idempotency_key: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., comes_back: _Optional[bool] = ..., retracted: _Optional[bool] = ..., answer: _Optional[str] = ..., fact: _Optional[str] = ...) -> None: ...

class ExampleProof(_message.Message):
    __slots__ = ("idempotency_key", "divergence_before", "divergence_after", "answer_before", "answer_after", "learnt", "reason", "fact", "timestamp")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    DIVERGENCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    ANSWER_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_AFTER_FIELD_NUMBER: _ClassVar[int]
    LEARNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FACT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    divergence_before: float
    divergence_after: float
    answer_before: str
    answer_after: str
    learnt: bool
    reason: str
    fact: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., divergence_before: _Optional[float] = ..., divergence_after: _Optional[float] = ..., answer_before: _Optional[str] = ..., answer_after: _Optional[str] = ..., learnt: _Optional[bool] = ..., reason: _Optional[str] = ..., fact: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("conversation", "request_id")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    request_id: str
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("activity_id", "conversation_id")
    ACTIVITY_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    activity_id: str
    conversation_id: str
    def __init__(self, activity_id: _Optional[str] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class SyncCandidatesRequest(_message.Message):
    __slots__ = ("conversation_ids",)
    CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    conversation_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, conversation_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SyncCandidatesResponse(_message.Message):
    __slots__ = ("activity_ids",)
    ACTIVITY_IDS_FIELD_NUMBER: _ClassVar[int]
    activity_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, activity_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListCandidatesRequest(_message.Message):
    __slots__ = ("statuses", "order", "conversation_id", "search", "min_divergence", "max_divergence")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    MIN_DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[CandidateStatus]
    order: CandidateOrder
    conversation_id: str
    search: str
    min_divergence: float
    max_divergence: float
    def __init__(self, statuses: _Optional[_Iterable[_Union[CandidateStatus, str]]] = ..., order: _Optional[_Union[CandidateOrder, str]] = ..., conversation_id: _Optional[str] = ..., search: _Optional[str] = ..., min_divergence: _Optional[float] = ..., max_divergence: _Optional[float] = ...) -> None: ...

class ListCandidatesResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class WatchCandidatesResponse(_message.Message):
    __slots__ = ("kind", "candidate", "stats")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    kind: CandidateEventKind
    candidate: Candidate
    stats: _scorer_pb2.FinetuneScoringStats
    def __init__(self, kind: _Optional[_Union[CandidateEventKind, str]] = ..., candidate: _Optional[_Union[Candidate, _Mapping]] = ..., stats: _Optional[_Union[_scorer_pb2.FinetuneScoringStats, _Mapping]] = ...) -> None: ...

class WatchCandidatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ApproveRequest(_message.Message):
    __slots__ = ("timestamps", "reviewer", "note")
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    timestamps: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    reviewer: str
    note: str
    def __init__(self, timestamps: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RejectRequest(_message.Message):
    __slots__ = ("timestamps", "reason", "reviewer")
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    timestamps: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    reason: str
    reviewer: str
    def __init__(self, timestamps: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., reason: _Optional[str] = ..., reviewer: _Optional[str] = ...) -> None: ...

class ClearDecisionRequest(_message.Message):
    __slots__ = ("timestamps", "reviewer")
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    timestamps: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    reviewer: str
    def __init__(self, timestamps: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., reviewer: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("timestamp", "status", "reason", "reviewer", "decided_at", "conversation_id", "content")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    status: CandidateStatus
    reason: str
    reviewer: str
    decided_at: _timestamp_pb2.Timestamp
    conversation_id: str
    content: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[CandidateStatus, str]] = ..., reason: _Optional[str] = ..., reviewer: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversation_id: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("timestamp", "reason", "reviewer")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    reason: str
    reviewer: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., reviewer: _Optional[str] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("entry", "job_id", "delivery_error")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ERROR_FIELD_NUMBER: _ClassVar[int]
    entry: TrainedEntry
    job_id: str
    delivery_error: str
    def __init__(self, entry: _Optional[_Union[TrainedEntry, _Mapping]] = ..., job_id: _Optional[str] = ..., delivery_error: _Optional[str] = ...) -> None: ...

class ListDecisionsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListDecisionsResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class ApproveResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class RejectResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class ClearDecisionResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class ReviewGenerateAlternateResponse(_message.Message):
    __slots__ = ("candidate",)
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    candidate: Candidate
    def __init__(self, candidate: _Optional[_Union[Candidate, _Mapping]] = ...) -> None: ...

class ReviewGenerateAlternateRequest(_message.Message):
    __slots__ = ("timestamp", "regenerate", "request_id")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REGENERATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    regenerate: bool
    request_id: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., regenerate: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class SendRequest(_message.Message):
    __slots__ = ("timestamps", "request_id")
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    timestamps: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    request_id: str
    def __init__(self, timestamps: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SendFailure(_message.Message):
    __slots__ = ("timestamp", "reason")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class SendResponse(_message.Message):
    __slots__ = ("accepted", "failed", "job_id", "activity_id")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_ID_FIELD_NUMBER: _ClassVar[int]
    accepted: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    failed: _containers.RepeatedCompositeFieldContainer[SendFailure]
    job_id: str
    activity_id: str
    def __init__(self, accepted: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., failed: _Optional[_Iterable[_Union[SendFailure, _Mapping]]] = ..., job_id: _Optional[str] = ..., activity_id: _Optional[str] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("format", "statuses", "timestamps", "mark_trained")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    MARK_TRAINED_FIELD_NUMBER: _ClassVar[int]
    format: ExportFormat
    statuses: _containers.RepeatedScalarFieldContainer[CandidateStatus]
    timestamps: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    mark_trained: bool
    def __init__(self, format: _Optional[_Union[ExportFormat, str]] = ..., statuses: _Optional[_Iterable[_Union[CandidateStatus, str]]] = ..., timestamps: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., mark_trained: _Optional[bool] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("jsonl", "count", "timestamps")
    JSONL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    jsonl: str
    count: int
    timestamps: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, jsonl: _Optional[str] = ..., count: _Optional[int] = ..., timestamps: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("conversations", "last", "pending", "approved", "rejected", "trained", "threshold", "replies", "training")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    TRAINED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[_scorer_pb2.FinetuneScoringStats]
    last: _scorer_pb2.FinetuneScoringStats
    pending: int
    approved: int
    rejected: int
    trained: int
    threshold: float
    replies: _containers.RepeatedCompositeFieldContainer[_scorer_pb2.ReplyScore]
    training: int
    def __init__(self, conversations: _Optional[_Iterable[_Union[_scorer_pb2.FinetuneScoringStats, _Mapping]]] = ..., last: _Optional[_Union[_scorer_pb2.FinetuneScoringStats, _Mapping]] = ..., pending: _Optional[int] = ..., approved: _Optional[int] = ..., rejected: _Optional[int] = ..., trained: _Optional[int] = ..., threshold: _Optional[float] = ..., replies: _Optional[_Iterable[_Union[_scorer_pb2.ReplyScore, _Mapping]]] = ..., training: _Optional[int] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Config(_message.Message):
    __slots__ = ("threshold", "finetune_url", "config_path", "finetune_timeout", "model", "reject_reasons", "target_divergence", "max_forgetting", "max_drift")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FINETUNE_URL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_PATH_FIELD_NUMBER: _ClassVar[int]
    FINETUNE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASONS_FIELD_NUMBER: _ClassVar[int]
    TARGET_DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_FORGETTING_FIELD_NUMBER: _ClassVar[int]
    MAX_DRIFT_FIELD_NUMBER: _ClassVar[int]
    threshold: float
    finetune_url: str
    config_path: str
    finetune_timeout: float
    model: str
    reject_reasons: _containers.RepeatedScalarFieldContainer[str]
    target_divergence: float
    max_forgetting: float
    max_drift: float
    def __init__(self, threshold: _Optional[float] = ..., finetune_url: _Optional[str] = ..., config_path: _Optional[str] = ..., finetune_timeout: _Optional[float] = ..., model: _Optional[str] = ..., reject_reasons: _Optional[_Iterable[str]] = ..., target_divergence: _Optional[float] = ..., max_forgetting: _Optional[float] = ..., max_drift: _Optional[float] = ...) -> None: ...

class SetThresholdRequest(_message.Message):
    __slots__ = ("value", "steps")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    value: float
    steps: int
    def __init__(self, value: _Optional[float] = ..., steps: _Optional[int] = ...) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: Config
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ...) -> None: ...

class SetThresholdResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: Config
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ...) -> None: ...

class ListTrainedRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTrainedResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[TrainedEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[TrainedEntry, _Mapping]]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("question", "conversation_id", "max_new_tokens")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    question: str
    conversation_id: str
    max_new_tokens: int
    def __init__(self, question: _Optional[str] = ..., conversation_id: _Optional[str] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("answer", "adapter")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    answer: str
    adapter: str
    def __init__(self, answer: _Optional[str] = ..., adapter: _Optional[str] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class GetConversationResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: _conversation_pb2.Conversation
    def __init__(self, conversation: _Optional[_Union[_conversation_pb2.Conversation, _Mapping]] = ...) -> None: ...
