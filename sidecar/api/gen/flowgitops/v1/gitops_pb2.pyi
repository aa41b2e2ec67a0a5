import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_STATE_UNSPECIFIED: _ClassVar[SyncState]
    SYNC_STATE_NOT_CONFIGURED: _ClassVar[SyncState]
    SYNC_STATE_PAUSED: _ClassVar[SyncState]
    SYNC_STATE_IN_SYNC: _ClassVar[SyncState]
    SYNC_STATE_BEHIND: _ClassVar[SyncState]
    SYNC_STATE_SYNCING: _ClassVar[SyncState]
    SYNC_STATE_RECOVERING: _ClassVar[SyncState]
    SYNC_STATE_PENDING_APPROVAL: _ClassVar[SyncState]
    SYNC_STATE_ERROR: _ClassVar[SyncState]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCEEDED: _ClassVar[JobStatus]
    JOB_STATUS_NOOP: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_INTERRUPTED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING_APPROVAL: _ClassVar[JobStatus]
    JOB_STATUS_APPROVED: _ClassVar[JobStatus]
    JOB_STATUS_REJECTED: _ClassVar[JobStatus]
SYNC_STATE_UNSPECIFIED: SyncState
SYNC_STATE_NOT_CONFIGURED: SyncState
SYNC_STATE_PAUSED: SyncState
SYNC_STATE_IN_SYNC: SyncState
SYNC_STATE_BEHIND: SyncState
SYNC_STATE_SYNCING: SyncState
SYNC_STATE_RECOVERING: SyncState
SYNC_STATE_PENDING_APPROVAL: SyncState
SYNC_STATE_ERROR: SyncState
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCEEDED: JobStatus
JOB_STATUS_NOOP: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_INTERRUPTED: JobStatus
JOB_STATUS_PENDING_APPROVAL: JobStatus
JOB_STATUS_APPROVED: JobStatus
JOB_STATUS_REJECTED: JobStatus

class Commit(_message.Message):
    __slots__ = ("sha", "short_sha", "author", "email", "date", "subject", "body", "link")
    SHA_FIELD_NUMBER: _ClassVar[int]
    SHORT_SHA_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    sha: str
    short_sha: str
    author: str
    email: str
    date: str
    subject: str
    body: str
    link: str
    def __init__(self, sha: _Optional[str] = ..., short_sha: _Optional[str] = ..., author: _Optional[str] = ..., email: _Optional[str] = ..., date: _Optional[str] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., link: _Optional[str] = ...) -> None: ...

class Drift(_message.Message):
    __slots__ = ("rev", "detected_at", "message", "backup_id")
    REV_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    rev: str
    detected_at: _timestamp_pb2.Timestamp
    message: str
    backup_id: int
    def __init__(self, rev: _Optional[str] = ..., detected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., backup_id: _Optional[int] = ...) -> None: ...

class HistoryRewrite(_message.Message):
    __slots__ = ("from_sha", "to_sha", "at")
    FROM_SHA_FIELD_NUMBER: _ClassVar[int]
    TO_SHA_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    from_sha: str
    to_sha: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, from_sha: _Optional[str] = ..., to_sha: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("state", "configured", "paused", "mode", "environment", "behind", "phase", "progress", "reason_code", "reason_message", "pending_commit", "remote", "local", "next_sync_at", "last_sync_at", "last_success_at", "drift", "history_rewritten", "consecutive_failures", "seq", "interval_seconds", "recovery", "health", "import_errors")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    BEHIND_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PENDING_COMMIT_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    NEXT_SYNC_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_AT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    IMPORT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    state: SyncState
    configured: bool
    paused: bool
    mode: str
    environment: str
    behind: bool
    phase: str
    progress: str
    reason_code: str
    reason_message: str
    pending_commit: str
    remote: Commit
    local: Commit
    next_sync_at: _timestamp_pb2.Timestamp
    last_sync_at: _timestamp_pb2.Timestamp
    last_success_at: _timestamp_pb2.Timestamp
    drift: Drift
    history_rewritten: HistoryRewrite
    consecutive_failures: int
    seq: int
    interval_seconds: int
    recovery: Recovery
    health: str
    import_errors: _containers.RepeatedCompositeFieldContainer[FileImportError]
    def __init__(self, state: _Optional[_Union[SyncState, str]] = ..., configured: _Optional[bool] = ..., paused: _Optional[bool] = ..., mode: _Optional[str] = ..., environment: _Optional[str] = ..., behind: _Optional[bool] = ..., phase: _Optional[str] = ..., progress: _Optional[str] = ..., reason_code: _Optional[str] = ..., reason_message: _Optional[str] = ..., pending_commit: _Optional[str] = ..., remote: _Optional[_Union[Commit, _Mapping]] = ..., local: _Optional[_Union[Commit, _Mapping]] = ..., next_sync_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sync_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_success_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., drift: _Optional[_Union[Drift, _Mapping]] = ..., history_rewritten: _Optional[_Union[HistoryRewrite, _Mapping]] = ..., consecutive_failures: _Optional[int] = ..., seq: _Optional[int] = ..., interval_seconds: _Optional[int] = ..., recovery: _Optional[_Union[Recovery, _Mapping]] = ..., health: _Optional[str] = ..., import_errors: _Optional[_Iterable[_Union[FileImportError, _Mapping]]] = ...) -> None: ...

class FileImportError(_message.Message):
    __slots__ = ("path", "message")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    message: str
    def __init__(self, path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Recovery(_message.Message):
    __slots__ = ("unresolved_types", "failed_modules", "restart_required", "installed")
    UNRESOLVED_TYPES_FIELD_NUMBER: _ClassVar[int]
    FAILED_MODULES_FIELD_NUMBER: _ClassVar[int]
    RESTART_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_FIELD_NUMBER: _ClassVar[int]
    unresolved_types: _containers.RepeatedScalarFieldContainer[str]
    failed_modules: _containers.RepeatedScalarFieldContainer[str]
    restart_required: _containers.RepeatedScalarFieldContainer[str]
    installed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unresolved_types: _Optional[_Iterable[str]] = ..., failed_modules: _Optional[_Iterable[str]] = ..., restart_required: _Optional[_Iterable[str]] = ..., installed: _Optional[_Iterable[str]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "trigger", "status", "phase", "from_commit", "to_commit", "started_at", "finished_at", "duration_seconds", "attempts", "error_code", "error_message", "retry_of", "detail_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    FROM_COMMIT_FIELD_NUMBER: _ClassVar[int]
    TO_COMMIT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_OF_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    trigger: str
    status: JobStatus
    phase: str
    from_commit: str
    to_commit: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    duration_seconds: float
    attempts: int
    error_code: str
    error_message: str
    retry_of: int
    detail_json: str
    def __init__(self, id: _Optional[int] = ..., trigger: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., phase: _Optional[str] = ..., from_commit: _Optional[str] = ..., to_commit: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_seconds: _Optional[float] = ..., attempts: _Optional[int] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., retry_of: _Optional[int] = ..., detail_json: _Optional[str] = ...) -> None: ...

class RepositoryConfig(_message.Message):
    __slots__ = ("protocol", "url", "branch", "path", "flow_file", "provider", "username", "password", "ssh_key", "ssh_passphrase", "known_hosts")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FLOW_FILE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    SSH_KEY_FIELD_NUMBER: _ClassVar[int]
    SSH_PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_HOSTS_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    url: str
    branch: str
    path: str
    flow_file: str
    provider: str
    username: str
    password: str
    ssh_key: str
    ssh_passphrase: str
    known_hosts: str
    def __init__(self, protocol: _Optional[str] = ..., url: _Optional[str] = ..., branch: _Optional[str] = ..., path: _Optional[str] = ..., flow_file: _Optional[str] = ..., provider: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., ssh_key: _Optional[str] = ..., ssh_passphrase: _Optional[str] = ..., known_hosts: _Optional[str] = ...) -> None: ...

class SyncConfig(_message.Message):
    __slots__ = ("interval", "require_approval", "dependency_policy")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCY_POLICY_FIELD_NUMBER: _ClassVar[int]
    interval: int
    require_approval: bool
    dependency_policy: str
    def __init__(self, interval: _Optional[int] = ..., require_approval: _Optional[bool] = ..., dependency_policy: _Optional[str] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("repository", "sync")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    repository: RepositoryConfig
    sync: SyncConfig
    def __init__(self, repository: _Optional[_Union[RepositoryConfig, _Mapping]] = ..., sync: _Optional[_Union[SyncConfig, _Mapping]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class PlanChange(_message.Message):
    __slots__ = ("kind", "id", "label", "action")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    label: str
    action: str
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., label: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("commit", "flow_file", "applied_commit", "changes", "summary", "types_needed", "types_missing", "node_count")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    FLOW_FILE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TYPES_NEEDED_FIELD_NUMBER: _ClassVar[int]
    TYPES_MISSING_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    flow_file: str
    applied_commit: str
    changes: _containers.RepeatedCompositeFieldContainer[PlanChange]
    summary: str
    types_needed: _containers.RepeatedScalarFieldContainer[str]
    types_missing: _containers.RepeatedScalarFieldContainer[str]
    node_count: int
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., flow_file: _Optional[str] = ..., applied_commit: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[PlanChange, _Mapping]]] = ..., summary: _Optional[str] = ..., types_needed: _Optional[_Iterable[str]] = ..., types_missing: _Optional[_Iterable[str]] = ..., node_count: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("at",)
    AT_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchStatusResponse(_message.Message):
    __slots__ = ("snapshot", "status", "job", "heartbeat")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Status
    status: Status
    job: Job
    heartbeat: Heartbeat
    def __init__(self, snapshot: _Optional[_Union[Status, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("config", "locked", "environment", "mode")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    config: Config
    locked: bool
    environment: str
    mode: str
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ..., locked: _Optional[bool] = ..., environment: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class ValidateConfigRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: Config
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ...) -> None: ...

class ValidateConfigResponse(_message.Message):
    __slots__ = ("valid", "violations")
    VALID_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, valid: _Optional[bool] = ..., violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class SaveConfigRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: Config
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ...) -> None: ...

class SaveConfigResponse(_message.Message):
    __slots__ = ("config", "remote_head", "connect_error_code", "connect_error_message", "status")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REMOTE_HEAD_FIELD_NUMBER: _ClassVar[int]
    CONNECT_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    CONNECT_ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    config: Config
    remote_head: str
    connect_error_code: str
    connect_error_message: str
    status: Status
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ..., remote_head: _Optional[str] = ..., connect_error_code: _Optional[str] = ..., connect_error_message: _Optional[str] = ..., status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ForcePullRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ForcePullResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: str
    def __init__(self, result: _Optional[str] = ...) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    def __init__(self, job_id: _Optional[int] = ...) -> None: ...

class RetryJobResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: str
    def __init__(self, result: _Optional[str] = ...) -> None: ...

class ApproveDeployRequest(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: str
    def __init__(self, commit: _Optional[str] = ...) -> None: ...

class ApproveDeployResponse(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: str
    def __init__(self, commit: _Optional[str] = ...) -> None: ...

class RejectDeployRequest(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: str
    def __init__(self, commit: _Optional[str] = ...) -> None: ...

class RejectDeployResponse(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: str
    def __init__(self, commit: _Optional[str] = ...) -> None: ...

class GetRecoveryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRecoveryResponse(_message.Message):
    __slots__ = ("recovery",)
    RECOVERY_FIELD_NUMBER: _ClassVar[int]
    recovery: Recovery
    def __init__(self, recovery: _Optional[_Union[Recovery, _Mapping]] = ...) -> None: ...

class GetWebhookRequest(_message.Message):
    __slots__ = ("reveal_secret",)
    REVEAL_SECRET_FIELD_NUMBER: _ClassVar[int]
    reveal_secret: bool
    def __init__(self, reveal_secret: _Optional[bool] = ...) -> None: ...

class GetWebhookResponse(_message.Message):
    __slots__ = ("enabled", "paths", "provider", "secret_source", "secret_shown", "secret", "last_after", "last_at", "looks_broken")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    SECRET_SOURCE_FIELD_NUMBER: _ClassVar[int]
    SECRET_SHOWN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    LAST_AFTER_FIELD_NUMBER: _ClassVar[int]
    LAST_AT_FIELD_NUMBER: _ClassVar[int]
    LOOKS_BROKEN_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    paths: _containers.RepeatedScalarFieldContainer[str]
    provider: str
    secret_source: str
    secret_shown: bool
    secret: str
    last_after: str
    last_at: _timestamp_pb2.Timestamp
    looks_broken: bool
    def __init__(self, enabled: _Optional[bool] = ..., paths: _Optional[_Iterable[str]] = ..., provider: _Optional[str] = ..., secret_source: _Optional[str] = ..., secret_shown: _Optional[bool] = ..., secret: _Optional[str] = ..., last_after: _Optional[str] = ..., last_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., looks_broken: _Optional[bool] = ...) -> None: ...

class PromoteRequest(_message.Message):
    __slots__ = ("flow_ids", "target_environment", "title", "body")
    FLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    TARGET_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    flow_ids: _containers.RepeatedScalarFieldContainer[str]
    target_environment: str
    title: str
    body: str
    def __init__(self, flow_ids: _Optional[_Iterable[str]] = ..., target_environment: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class PromoteResponse(_message.Message):
    __slots__ = ("branch", "commit", "number", "url", "files")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    branch: str
    commit: str
    number: int
    url: str
    files: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, branch: _Optional[str] = ..., commit: _Optional[str] = ..., number: _Optional[int] = ..., url: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ...) -> None: ...

class SuggestSecretPathsRequest(_message.Message):
    __slots__ = ("prefix", "limit")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    limit: int
    def __init__(self, prefix: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class SuggestSecretPathsResponse(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...
