"""The status model: the facts the sidecar knows, and the one state they fold into.

States (what a client may rely on):

* ``not_configured`` – no repository configured yet.
* ``paused`` – configured, sync paused; nothing is applied.
* ``syncing`` – a sync job is running.
* ``recovering`` – a sync is installing missing node modules.
* ``pending_approval`` – a new revision waits for someone to approve it.
* ``error`` – the last sync failed; `reason_code` and `reason_message` say why.
* ``behind`` – the remote has a commit that is not applied, or nothing was applied yet.
* ``in_sync`` – the Flow App runs the remote head.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable

STATES = ("not_configured", "paused", "syncing", "recovering", "pending_approval", "error", "behind", "in_sync")


@dataclass
class CommitInfo:
    sha: str
    author: str = ""
    email: str = ""
    date: str = ""  # ISO 8601 with offset
    subject: str = ""
    body: str = ""
    link: str = ""

    @property
    def short(self) -> str:
        return self.sha[:8]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["short"] = self.short
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CommitInfo":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Facts:
    """Everything the status is derived from. Written only through the Board."""

    configured: bool = False
    paused: bool = True
    mode: str = "pull"
    environment: str = ""
    running: str = ""  # "" or the phase of the running job
    recovering: bool = False
    progress: str = ""
    pending_commit: str = ""
    last_error_code: str = ""
    last_error_message: str = ""
    remote: CommitInfo | None = None
    local: CommitInfo | None = None
    next_sync_at: float | None = None
    last_sync_at: float | None = None
    last_success_at: float | None = None
    drift: dict | None = None
    history_rewritten: dict | None = None
    consecutive_failures: int = 0
    recovery: dict | None = None  # {"unresolved_types", "failed_modules", "restart_required", "installed"}
    # V7: files the last read of the repository could not import ([{"path", "message"}]); [] once a read succeeds
    import_errors: list = field(default_factory=list)


def fold(f: Facts) -> str:
    """The one state a person sees, from the facts. Order matters: first match wins."""
    if not f.configured:
        return "not_configured"
    if f.running:
        return "recovering" if f.recovering else "syncing"
    if f.pending_commit:
        return "pending_approval"
    if f.last_error_code:
        return "error"
    if f.paused:
        return "paused"
    if f.local is None or (f.remote and f.remote.sha != f.local.sha):
        return "behind"  # nothing applied yet, or the remote moved on
    return "in_sync"


def health(f: Facts) -> str:
    """V7: healthy, pending_retries (failing, retries scheduled) or failed (retries spent)."""
    if f.last_error_code in ("git_sync_failed", "recovery_failed") or f.consecutive_failures >= 4:
        return "failed"
    if f.last_error_code or f.consecutive_failures:
        return "pending_retries"
    return "healthy"


def snapshot(f: Facts, seq: int) -> dict:
    """The status as a plain dict (what APIs and the CLI print)."""
    behind = bool(f.configured and (f.local is None or (f.remote and f.remote.sha != f.local.sha)))
    return {
        "seq": seq,
        "state": fold(f),
        "configured": f.configured,
        "paused": f.paused,
        "mode": f.mode,
        "environment": f.environment,
        "behind": behind,
        "phase": f.running,
        "progress": f.progress,
        "reason_code": f.last_error_code,
        "reason_message": f.last_error_message,
        "pending_commit": f.pending_commit,
        "remote": f.remote.to_dict() if f.remote else None,
        "local": f.local.to_dict() if f.local else None,
        "next_sync_at": f.next_sync_at,
        "last_sync_at": f.last_sync_at,
        "last_success_at": f.last_success_at,
        "drift": f.drift,
        "history_rewritten": f.history_rewritten,
        "consecutive_failures": f.consecutive_failures,
        "recovery": f.recovery,
        "import_errors": [dict(e) for e in f.import_errors],
        "health": health(f),
    }


Listener = Callable[[dict], None]


class Board:
    """The single writer of status. `update(**facts)` folds and notifies listeners on change."""

    def __init__(self, facts: Facts | None = None) -> None:
        self._facts = facts or Facts()
        self._lock = threading.Lock()
        self._seq = 0
        self._listeners: list[Listener] = []
        self._last = snapshot(self._facts, 0)

    def update(self, **changes) -> dict:
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self._facts, key):
                    raise AttributeError(f"unknown status fact {key!r}")
                setattr(self._facts, key, value)
            snap = snapshot(self._facts, self._seq + 1)
            comparable = {k: v for k, v in snap.items() if k != "seq"}
            if comparable == {k: v for k, v in self._last.items() if k != "seq"}:
                return self._last
            self._seq += 1
            self._last = snap
            listeners = list(self._listeners)
        for listener in listeners:
            listener(snap)
        return snap

    def facts(self) -> Facts:
        with self._lock:
            return copy.deepcopy(self._facts)

    def current(self) -> dict:
        with self._lock:
            return dict(self._last)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
