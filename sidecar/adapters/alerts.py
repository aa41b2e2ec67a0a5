"""Alerts (V8): `git_sync_failed`, `recovery_failed`, `drift_detected`, posted as JSON to
the configured URLs, from a background thread so a slow receiver never delays a sync.
The body carries the environment, the alert name, a time and the status summary —
never a secret (status values are secret-free by construction)."""
from __future__ import annotations

import logging
import queue
import threading
import time

import requests

log = logging.getLogger("flow_gitops.alerts")

ALERTS = ("git_sync_failed", "recovery_failed", "drift_detected")


class AlertSender:
    def __init__(self, urls: list[str], environment: str, timeout: float = 10.0) -> None:
        self.urls = urls
        self.environment = environment
        self.timeout = timeout
        self.sent: list[dict] = []  # what went out (for the API and tests)
        self._q: queue.Queue = queue.Queue(maxsize=100)
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def fire(self, name: str, status: dict) -> None:
        if not self.urls:
            return
        body = {
            "alert": name, "environment": self.environment, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "state": status.get("state"), "reason_code": status.get("reason_code"), "reason_message": status.get("reason_message"),
            "local_commit": (status.get("local") or {}).get("sha", ""), "remote_commit": (status.get("remote") or {}).get("sha", ""),
            "drift": status.get("drift"), "recovery": status.get("recovery"),
        }
        try:
            self._q.put_nowait(body)
        except queue.Full:
            log.warning("alert queue full; dropping %s", name)
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._drain, name="alerts", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                body = self._q.get(timeout=5)
            except queue.Empty:
                return
            for url in self.urls:
                try:
                    r = self._session.post(url, json=body, timeout=self.timeout)
                    log.info("alert %s → %s: HTTP %s", body["alert"], url.split("?")[0], r.status_code)
                except requests.RequestException as exc:
                    log.warning("alert %s → %s failed: %s", body["alert"], url.split("?")[0], type(exc).__name__)
            self.sent.append(body)


class AlertWatcher:
    """Turns status changes into alerts: drift appearing, recovery failing."""

    def __init__(self, sender: AlertSender) -> None:
        self.sender = sender
        self._drift = False
        self._recovery_failed = False

    def __call__(self, snap: dict) -> None:
        drift = bool(snap.get("drift"))
        if drift and not self._drift:
            self.sender.fire("drift_detected", snap)
        self._drift = drift
        failed = snap.get("reason_code") == "recovery_failed"
        if failed and not self._recovery_failed:
            self.sender.fire("recovery_failed", snap)
        self._recovery_failed = failed
