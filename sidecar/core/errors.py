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


def network_reason(exc: BaseException) -> str:
    """What went wrong on the wire, in words (timed out, connection refused, connection reset…),
    from an exception chain as requests/urllib3/websocket clients raise them."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return "timed out"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset by the server"
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [getattr(e, "reason", None), e.__cause__, e.__context__]
    text = str(exc).lower()
    for needle, words in (("refused", "connection refused"), ("reset", "connection reset by the server"),
                          ("remotedisconnected", "the server closed the connection without answering"),
                          ("aborted", "the connection was cut off"), ("name or service", "the host name could not be resolved")):
        if needle in text:
            return words
    return type(exc).__name__
