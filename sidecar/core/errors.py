"""One error type for everything the sidecar reports.

Adapters translate library exceptions into `SyncError` at their edge, so the
engine, the status and the API only ever see a stable reason code, a message
that is safe to show (no secret values), and whether retrying can help.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SyncError(Exception):
    """A failure with a stable `code` (snake_case), a human `message` and a retry hint."""

    code: str
    message: str
    retryable: bool = True

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# Reason codes, kept in one place so docs and clients can rely on them.
CONFIG_INVALID = "config_invalid"
SECRET_MISSING = "secret_missing"
GIT_AUTH = "git_auth_failed"
GIT_HOST_KEY = "git_host_key_rejected"
GIT_UNREACHABLE = "git_unreachable"
GIT_TIMEOUT = "git_timeout"
GIT_BRANCH_MISSING = "git_branch_not_found"
GIT_ERROR = "git_error"
GIT_PUSH_REJECTED = "git_push_rejected"
GIT_SYNC_FAILED = "git_sync_failed"
FLOWS_INVALID = "flows_invalid"
FLOWS_MISSING = "flows_file_missing"
PACKAGE_INVALID = "package_json_invalid"
PATH_UNSAFE = "path_unsafe"
FILE_TOO_LARGE = "file_too_large"
NODERED_UNREACHABLE = "nodered_unreachable"
NODERED_AUTH = "nodered_auth_failed"
NODERED_REJECTED = "nodered_rejected"
NODERED_CONFLICT = "nodered_version_mismatch"
NODERED_NOT_RUNNING = "nodered_flows_not_running"
TYPES_MISSING = "node_types_missing"
RECOVERY_FAILED = "recovery_failed"
# The exact words the status shows after the last install attempt failed (D4).
RECOVERY_FAILED_MESSAGE = "Recovery retried multiple times and still failed."
INTERRUPTED = "interrupted"
