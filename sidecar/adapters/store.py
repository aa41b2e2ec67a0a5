"""State: one SQLite database in the data directory.

Holds the applied revision, the sync job history, drift backups, the configuration
saved through the API and small facts such as the pause switch. Every write is a
transaction (WAL, synchronous=FULL), so a crash at any point leaves either the old
or the new state. `open` marks jobs that were running when the process died as
interrupted; the engine then reconciles them with what the Flow App really runs.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  trigger TEXT NOT NULL,
  status TEXT NOT NULL,          -- running | succeeded | noop | failed | interrupted | pending_approval | rejected
  phase TEXT NOT NULL DEFAULT '',
  from_commit TEXT NOT NULL DEFAULT '',
  to_commit TEXT NOT NULL DEFAULT '',
  started_at REAL NOT NULL,
  finished_at REAL,
  attempts INTEGER NOT NULL DEFAULT 1,
  error_code TEXT NOT NULL DEFAULT '',
  error_message TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '{}',
  retry_of INTEGER
);
CREATE TABLE IF NOT EXISTS backups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at REAL NOT NULL,
  reason TEXT NOT NULL,
  rev TEXT NOT NULL,
  applied_commit TEXT NOT NULL DEFAULT '',
  node_count INTEGER NOT NULL,
  flows TEXT NOT NULL
);
"""

FINAL = ("succeeded", "noop", "failed", "interrupted", "rejected")


@dataclass
class Job:
    id: int
    trigger: str
    status: str
    phase: str
    from_commit: str
    to_commit: str
    started_at: float
    finished_at: float | None
    attempts: int
    error_code: str
    error_message: str
    detail: dict
    retry_of: int | None

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else round(self.finished_at - self.started_at, 3)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["duration"] = self.duration
        return d


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        os.chmod(path, 0o600)
        self.on_job: Callable[[int], None] | None = None  # told after every job write

    def _job_changed(self, job_id: int) -> None:
        if self.on_job is not None:
            self.on_job(job_id)

    @classmethod
    def open(cls, data_dir: str | Path) -> "Store":
        return cls(Path(data_dir) / "state.db")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(sql, args)
                self._db.execute("COMMIT")
                return cur
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite may have rolled back already (SQLITE_FULL on COMMIT): a second ROLLBACK would
        # raise "no transaction is active" and hide the real error ("database or disk is full")
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # --- small facts -------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def put(self, key: str, value: Any) -> None:
        self._tx("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, json.dumps(value)))

    def delete(self, key: str) -> None:
        self._tx("DELETE FROM kv WHERE key=?", (key,))

    # --- jobs --------------------------------------------------------------
    def _job(self, row: sqlite3.Row | None) -> Job | None:
        if row is None:
            return None
        d = dict(row)
        d["detail"] = json.loads(d["detail"] or "{}")
        return Job(**d)

    def start_job(self, trigger: str, from_commit: str, retry_of: int | None = None, attempts: int = 1) -> Job:
        cur = self._tx(
            "INSERT INTO jobs(trigger, status, phase, from_commit, started_at, retry_of, attempts) VALUES(?, 'running', 'check', ?, ?, ?, ?)",
            (trigger, from_commit, time.time(), retry_of, attempts),
        )
        self._job_changed(cur.lastrowid)
        return self.job(cur.lastrowid)

    def update_job(self, job_id: int, **fields: Any) -> None:
        if "detail" in fields:
            fields["detail"] = json.dumps(fields["detail"])
        cols = ", ".join(f"{k}=?" for k in fields)
        self._tx(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))
        self._job_changed(job_id)

    def finish_job(self, job_id: int, status: str, **fields: Any) -> None:
        self.update_job(job_id, status=status, finished_at=time.time(), **fields)

    def finish_job_and_put(self, job_id: int, status: str, key: str, value: Any, **fields: Any) -> None:
        """Finish a job and record a fact in one transaction (e.g. the applied commit)."""
        if "detail" in fields:
            fields["detail"] = json.dumps(fields["detail"])
        fields.update(status=status, finished_at=time.time())
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))
                self._db.execute(
                    "INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (key, json.dumps(value)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        self._job_changed(job_id)

    def job(self, job_id: int) -> Job | None:
        with self._lock:
            return self._job(self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone())

    def jobs(self, limit: int = 50) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

    def running_jobs(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE status='running' ORDER BY id").fetchall()
        return [self._job(r) for r in rows]

    def pending_jobs(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE status='pending_approval' ORDER BY id").fetchall()
        return [self._job(r) for r in rows]

    # --- drift backups -----------------------------------------------------
    def add_backup(self, reason: str, rev: str, applied_commit: str, flows: list) -> int:
        cur = self._tx(
            "INSERT INTO backups(created_at, reason, rev, applied_commit, node_count, flows) VALUES(?, ?, ?, ?, ?, ?)",
            (time.time(), reason, rev, applied_commit, len(flows), json.dumps(flows)),
        )
        return cur.lastrowid

    def backups(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, created_at, reason, rev, applied_commit, node_count FROM backups ORDER BY id DESC").fetchall()
        return [dict(r) for r in rows]

    def backup_flows(self, backup_id: int) -> list | None:
        with self._lock:
            row = self._db.execute("SELECT flows FROM backups WHERE id=?", (backup_id,)).fetchone()
        return None if row is None else json.loads(row["flows"])
