"""Prometheus metrics (names prefixed `flow_gitops_`), fed by job and status changes.

Every name and label is documented in docs/metrics.md (tests/test_operations.py checks
that the two agree after real syncs). Label values are fixed sets, never free text, and
never a secret: results are `success|error|noop` (syncs), `success|failure` (installs);
webhook providers are `github|gitlab|bitbucket|gitea|generic` and results are short codes.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from .adapters.store import FINAL, Job

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SYNC_RESULTS = ("success", "error", "noop")
INSTALL_RESULTS = ("success", "failure")

# No `*_created` series beside every counter and histogram: they double the series count
# and no dashboard or alert of ours uses them (process-wide; the sidecar is its own process).
disable_created_metrics()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.syncs = Counter("flow_gitops_syncs", "Sync jobs by result (success, error, noop).", ["result"], registry=r)
        self.duration = Histogram("flow_gitops_sync_duration_seconds", "Duration of sync jobs that did work.",
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=r)
        self.last_success = Gauge("flow_gitops_last_success_timestamp_seconds", "When the last sync succeeded (Unix time).", registry=r)
        self.consecutive_failures = Gauge("flow_gitops_consecutive_failures", "Failed syncs since the last successful one.", registry=r)
        self.installs = Counter("flow_gitops_installs", "npm installs made by dependency recovery, by result.", ["result"], registry=r)
        self.fetches = Counter("flow_gitops_fetches", "Git fetches made.", registry=r)
        self.webhooks = Counter("flow_gitops_webhook_requests", "Provider webhook requests, by provider and result.",
                                ["provider", "result"], registry=r)
        self.drift = Counter("flow_gitops_drift_detections", "Deploys made in the Flow App outside Git, detected.", registry=r)
        self.subscribers = Gauge("flow_gitops_stream_subscribers", "Open WatchStatus streams.", registry=r)
        self.up = Gauge("flow_gitops_info", "Always 1; labels describe the sidecar.", ["environment", "mode"], registry=r)
        # Every known label value exists from the start (at 0), so rates and alerts work
        # before the first event of each kind.
        for result in SYNC_RESULTS:
            self.syncs.labels(result)
        for result in INSTALL_RESULTS:
            self.installs.labels(result)
        self._drift_seen = False
        self._counted: set[int] = set()

    def job_changed(self, job: Job) -> None:
        """Count a job once, when it first reaches a final state."""
        if job.status not in FINAL or job.id in self._counted:
            return
        self._counted.add(job.id)
        result = {"succeeded": "success", "noop": "noop"}.get(job.status, "error" if job.status in ("failed", "interrupted") else None)
        if result:
            self.syncs.labels(result).inc()
        if job.status == "succeeded":
            self.last_success.set(job.finished_at or 0)
        if result in ("success", "error") and job.duration is not None:
            self.duration.observe(job.duration)
        for line in job.detail.get("install_log") or []:
            self.installs.labels("success" if line.get("rc") == 0 else "failure").inc()
        # A fetch that finished shows in the timings; one that failed is where the job stopped.
        if "fetch" in (job.detail.get("timings_ms") or {}) or (result == "error" and job.phase == "fetch"):
            self.fetches.inc()

    def status_changed(self, snap: dict) -> None:
        if snap.get("drift") and not self._drift_seen:
            self.drift.inc()
        self._drift_seen = bool(snap.get("drift"))
        failures = snap.get("consecutive_failures")
        if isinstance(failures, int):
            self.consecutive_failures.set(failures)

    def webhook_request(self, provider: str, result: str) -> None:
        """Count one webhook request (for the webhook endpoint: provider as detected, result a short code)."""
        self.webhooks.labels(provider or "generic", result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
