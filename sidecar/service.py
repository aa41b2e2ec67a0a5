"""The sync loop: a timer with jitter, triggers that coalesce, one job at a time.

`Service.trigger(kind)` may be called from any thread (API, CLI, webhook); the
loop thread runs at most one sync at a time and keeps at most one waiting.
"""
from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time

from .core.errors import GIT_SYNC_FAILED
from .core.schedule import Coalescer, Trigger, first_check, next_check, retry_delay
from .push import RETRY_DELAYS
from .engine import Engine

log = logging.getLogger("flow_gitops.loop")


class Service:
    def __init__(self, engine: Engine, interval: float, rng: random.Random | None = None, now=time.time) -> None:
        self.engine = engine
        self.board = engine.board
        self.interval = interval
        self.rng = rng or random.Random()
        self.now = now
        self._co = Coalescer()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._next_due: float | None = None
        self.jobs_run = 0
        self._retry_kind = ""
        self._push_failures = 0
        self.on_alert = None  # (name, status) → None: V8 alerts
        self._idle = threading.Event()
        self._idle.set()

    # --- control from any thread --------------------------------------------
    def trigger(self, kind: str, detail: str = "") -> str:
        with self._cond:
            result = self._co.offer(Trigger(kind, detail))
            self._idle.clear()
            self._cond.notify_all()
        return result

    def pause(self) -> None:
        self.engine.set_paused(True)
        with self._cond:
            self._next_due = None
            self._cond.notify_all()
        self.board.update(next_sync_at=None)

    def resume(self) -> str:
        self.engine.set_paused(False)
        return self.trigger("resume")

    def retry(self, job_id: int) -> str:
        """Retry a failed or interrupted job: a sync of the current remote head, linked to it."""
        job = self.engine.store.job(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        if job.status not in ("failed", "interrupted"):
            raise ValueError(f"job {job_id} is {job.status}; only failed or interrupted jobs can be retried")
        return self.trigger("retry", str(job_id))

    def wake(self) -> None:
        """Re-check the schedule now (after the clock or the configuration changed)."""
        with self._cond:
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no sync runs or waits (for tests and the CLI's one-shot mode)."""
        return self._idle.wait(timeout)

    # --- the loop -----------------------------------------------------------
    def start(self) -> None:
        facts = self.board.facts()
        jitter = self.engine.cfg.sync.startup_jitter
        if facts.configured and not facts.paused:
            if jitter > 0:  # spread a fleet's first checks; the loop fires the timer when due
                self._next_due = first_check(self.now(), jitter, self.rng)
                self.board.update(next_sync_at=self._next_due)
            else:
                self.trigger("startup")
        self._thread = threading.Thread(target=self._loop, name="sync-loop", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the loop; True when it ended within `timeout` (a running job finished)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _follow_pause_switch(self) -> None:
        """Pick up a pause switch flipped by another process (`flow-gitops pause|resume --config`)."""
        stored = self.engine.stored_paused()
        if stored != self.board.facts().paused:
            self.board.update(paused=stored)
            if stored:
                self._next_due = None
                self.board.update(next_sync_at=None)
            else:
                self._co.offer(Trigger("resume"))

    def _active(self) -> bool:
        facts = self.board.facts()
        return facts.configured and not facts.paused and self.engine.cfg.mode in ("pull", "push", "bidirectional", "promotion")

    def _schedule(self, failed: bool, push_failed: bool = False) -> None:
        now = self.now()
        self._retry_kind = ""
        if push_failed and self._active():
            # V2: retries after 30 s, 2 min, 10 min; then the git_sync_failed alert
            if self._push_failures <= len(RETRY_DELAYS):
                self._next_due, self._retry_kind = now + RETRY_DELAYS[self._push_failures - 1], "push_retry"
            else:
                self._next_due = next_check(now, self.interval, self.rng)
                self.board.update(last_error_code=GIT_SYNC_FAILED, last_error_message=(
                    f"pushing to Git failed {self._push_failures} times; the flows in the Flow App are not in the repository"))
                if self.on_alert is not None:
                    self.on_alert(GIT_SYNC_FAILED, self.board.current())
            self.board.update(next_sync_at=self._next_due)
            return
        if not self._active():
            self._next_due = None
        elif failed:
            self._next_due = now + retry_delay(self.board.facts().consecutive_failures, self.interval)
        else:
            self._next_due = next_check(now, self.interval, self.rng)
        self.board.update(next_sync_at=self._next_due)

    def _settle_running(self, message: str) -> None:
        """Best effort after a job died of an exception: no job row keeps saying "running"
        (when the database cannot even be written now, the next start settles it)."""
        try:
            for job in self.engine.store.running_jobs():
                self.engine.store.finish_job(job.id, "failed", error_code="internal_error", error_message=message)
        except Exception:  # noqa: BLE001 - the database itself may be what failed
            log.warning("a job interrupted by an internal error stays marked running until the next start")

    def _loop(self) -> None:
        with self._cond:
            if self._next_due is None:  # start() may have spread the first check already
                self._schedule(False)
        while True:
            with self._cond:
                while not self._stop:
                    self._follow_pause_switch()
                    if self._next_due is not None and self.now() >= self._next_due:
                        # push mode: the timer is a safety net that pushes what a missed deploy left
                        kind = self._retry_kind or ("push" if self.engine.cfg.mode == "push" else "timer")
                        self._co.offer(Trigger(kind))
                        self._next_due = None
                    trig = self._co.take()
                    if trig is not None:
                        break
                    if self._co.waiting is None and self._co.running is None:
                        self._idle.set()
                    if self._next_due is None and self._active():
                        self._schedule(False)
                    wait = None if self._next_due is None else max(0.0, self._next_due - self.now())
                    self._cond.wait(timeout=min(wait, 5.0) if wait is not None else 5.0)
                if self._stop:
                    self._idle.set()
                    return
            # Paused means nothing is applied: only an explicit approval still goes through.
            skip = trig.kind != "approve" and not self._active()
            if skip:
                log.info("sync is paused: %s trigger ignored", trig.kind)
            failed = False
            push_failed = False
            if not skip:
                try:
                    job_id = self.engine.run(trig)
                    job = self.engine.store.job(job_id)
                except Exception as exc:  # e.g. the state database cannot be written (disk full): the loop lives on
                    log.exception("the %s sync could not run", trig.kind)
                    what = f"{type(exc).__name__}: {exc}" if isinstance(exc, sqlite3.Error) else type(exc).__name__
                    self.board.update(running="", progress="", last_error_code="internal_error",
                                      last_error_message=f"internal error ({what})",
                                      consecutive_failures=self.board.facts().consecutive_failures + 1)
                    self._settle_running(f"internal error ({what})")
                    failed = True
                else:
                    failed = job is not None and job.status == "failed"
                if trig.kind in ("push", "push_retry") or self.engine.cfg.mode == "push":  # push mode: every job pushes
                    self._push_failures = self._push_failures + 1 if failed else 0
                    push_failed = failed
                self.jobs_run += 1
            with self._cond:
                self._co.done()
                self._schedule(failed, push_failed)
