"""Operating the sidecar as it runs in a container: `flow-gitops serve` against a real
Node-RED and real Git (HTTPS with a canary token). Metrics after real syncs match
docs/metrics.md; one structured log line per sync, never a secret; the image's
HEALTHCHECK works; SIGTERM during a sync gives a bounded exit and a clean restart (O3, O4)."""
from __future__ import annotations

import pytest

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sidecar.metrics import Metrics
from tests import flowgen
from tests.conftest import sidecar_config
from tests.constants import CANARY
from tests.servers.common import free_port
from tests.servers.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "sidecar"]
BANNER = re.compile(r"^flow-gitops \S+ serving environment .*gRPC :(\d+), HTTP :(\d+)$")


def cli(*args, env=None, check=True, timeout=60):
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"flow-gitops {' '.join(args)} → {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


class Serve:
    """`flow-gitops serve` as a process, its stderr in a file; the HTTP port from its banner."""

    def __init__(self, cfg: Path, log_path: Path) -> None:
        self.cfg, self.log_path = cfg, log_path
        self.proc: subprocess.Popen | None = None
        self.http_port = 0

    def start(self, timeout: float = 30.0) -> Serve:
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*CLI, "serve", "--config", str(self.cfg)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text().splitlines():
                m = BANNER.match(line)
                if m:
                    self.http_port = int(m.group(2))
                    return self
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"serve did not start:\n{self.log_path.read_text()[-3000:]}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> tuple[int | None, float]:
        """SIGTERM; (exit code or None if it did not exit in time, seconds taken)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        elapsed = time.monotonic() - t0
        self.kill()
        return rc, elapsed

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def metrics_text(self) -> str:
        r = requests.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return r.text

    def metrics(self) -> dict[tuple[str, tuple], float]:
        out = {}
        for fam in text_string_to_metric_families(self.metrics_text()):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def wait_metric(self, name: str, labels: dict | None, pred, timeout: float = 30.0) -> dict:
        key = (name, tuple(sorted((labels or {}).items())))
        deadline = time.monotonic() + timeout
        values: dict = {}
        while time.monotonic() < deadline:
            values = self.metrics()
            if key in values and pred(values[key]):
                return values
            time.sleep(0.1)
        raise AssertionError(f"{key} never satisfied the condition: {values.get(key)}\n{self.log_path.read_text()[-3000:]}")


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "flow-gitops.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def https_config(tmp_path, flowapp, secrets_dir, https_git, name="flows", extra=None) -> Path:
    more = {"repository": {"username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token",
                           "ca_file": https_git.cafile},
            "log": {"level": "info", "format": "json"}}
    data = sidecar_config(tmp_path, flowapp, secrets_dir, https_git.url_for(name), "https", more)
    if extra:
        from sidecar.core.config import deep_merge
        data = deep_merge(data, extra)
    return write_config(tmp_path, data)


def documented_metrics() -> dict[str, set[str]]:
    """name → label names, from the table in docs/metrics.md (`name{a,b}` in the first column)."""
    out = {}
    for m in re.finditer(r"^\| `(flow_gitops_[a-z_]+)(?:\{([a-z_,]+)\})?` \|", (ROOT / "docs" / "metrics.md").read_text(), re.MULTILINE):
        out[m.group(1)] = set(filter(None, (m.group(2) or "").split(",")))
    return out


def exposed_metrics(text: str) -> dict[str, set[str]]:
    """Family name (as Prometheus shows it, `_total` for counters) → label names.

    A labelled family with no series yet (webhook requests before the first webhook) shows
    only its HELP/TYPE lines; its label names come from the sidecar's own definition."""
    declared = {m._name: set(m._labelnames) for m in vars(Metrics()).values() if hasattr(m, "_labelnames")}
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        labels = out.setdefault(name, set())
        for s in fam.samples:
            labels.update(k for k in s.labels if k != "le")
        if not fam.samples:
            labels.update(declared[fam.name])
    return out


def healthcheck_argv() -> list[str]:
    """The image's HEALTHCHECK command (exec form) from the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.MULTILINE)
    assert m, "the Dockerfile has no exec-form HEALTHCHECK"
    argv = json.loads(m.group(1))
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def json_lines(text: str) -> list[dict]:
    """Every line of a JSON-format log is one JSON object (the start-up banner, printed on its own, aside)."""
    records = []
    for line in text.splitlines():
        if not line.strip() or BANNER.match(line):
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return records


def test_metrics_and_sync_logs_after_real_syncs(flowapp, repos, https_git, secrets_dir, tmp_path):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    cfg = https_config(tmp_path, flowapp, secrets_dir, https_git)
    serve = Serve(cfg, tmp_path / "serve.log").start()
    try:
        # 1. the startup sync applies the commit
        serve.wait_metric("flow_gitops_syncs_total", {"result": "success"}, lambda v: v == 1)
        first = serve.metrics()
        # 2. a person deploys in the editor: drift detected
        flows, _ = flowapp.flows()
        flowapp.deploy([*flows, *flowgen.tab("tx", "Made in the editor")])
        serve.wait_metric("flow_gitops_drift_detections_total", {}, lambda v: v == 1)
        # 3. the token is rotated to a wrong value, Force Pull (SIGUSR1): an error
        (secrets_dir / "git" / "token").write_text("wrong-" + CANARY)
        serve.signal(signal.SIGUSR1)
        failed = serve.wait_metric("flow_gitops_syncs_total", {"result": "error"}, lambda v: v == 1)
        assert failed[("flow_gitops_consecutive_failures", ())] == 1
        # 4. fixed, Force Pull: success again, the editor's change overwritten (after a backup)
        (secrets_dir / "git" / "token").write_text(CANARY + "\n")
        serve.signal(signal.SIGUSR1)
        last = serve.wait_metric("flow_gitops_syncs_total", {"result": "success"}, lambda v: v == 2)
        text = serve.metrics_text()

        # the image's HEALTHCHECK, run as Docker runs it, against this sidecar and against nothing
        env = dict(os.environ, FLOW_GITOPS_API__HTTP_LISTEN=f"0.0.0.0:{serve.http_port}")
        assert subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=20).returncode == 0
        env["FLOW_GITOPS_API__HTTP_LISTEN"] = f"0.0.0.0:{free_port()}"
        assert subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=20).returncode != 0
        assert requests.get(f"http://127.0.0.1:{serve.http_port}/readyz", timeout=5).status_code == 200
    finally:
        rc, _ = serve.stop()
    assert rc == 0
    assert sorted(n["id"] for n in flowapp.flows()[0]) == sorted(n["id"] for n in flowgen.example())

    # metrics: the values the four steps imply
    assert first[("flow_gitops_syncs_total", (("result", "noop"),))] == 0  # every result exists from the start
    assert first[("flow_gitops_syncs_total", (("result", "error"),))] == 0
    assert first[("flow_gitops_installs_total", (("result", "failure"),))] == 0
    assert first[("flow_gitops_fetches_total", ())] == 1
    assert first[("flow_gitops_sync_duration_seconds_count", ())] == 1
    assert abs(first[("flow_gitops_last_success_timestamp_seconds", ())] - time.time()) < 120
    assert last[("flow_gitops_sync_duration_seconds_count", ())] == 3  # success, error, success
    assert last[("flow_gitops_sync_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert last[("flow_gitops_last_success_timestamp_seconds", ())] > first[("flow_gitops_last_success_timestamp_seconds", ())]
    assert last[("flow_gitops_consecutive_failures", ())] == 0
    assert last[("flow_gitops_drift_detections_total", ())] == 1
    assert last[("flow_gitops_stream_subscribers", ())] == 0
    assert last[("flow_gitops_info", (("environment", "test"), ("mode", "pull")))] == 1
    assert CANARY not in text

    # every exposed family is documented with its labels, and every documented one is exposed
    docs, exposed = documented_metrics(), exposed_metrics(text)
    assert "flow_gitops_webhook_requests_total" in docs and docs["flow_gitops_webhook_requests_total"] == {"provider", "result"}
    assert exposed == docs, f"docs/metrics.md and /metrics disagree:\n  docs:    {docs}\n  exposed: {exposed}"

    # logs: JSON lines; one structured line per sync job, matching the job records; no secret
    log_text = (tmp_path / "serve.log").read_text()
    assert CANARY not in log_text
    records = json_lines(log_text)
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    syncs = [r for r in records if r.get("event") == "sync"]
    jobs = {j["id"]: j for j in json.loads(cli("jobs", "--config", str(cfg), "--json").stdout)}
    assert sorted(r["job"] for r in syncs) == sorted(jobs) == [1, 2, 3]
    for r in syncs:
        job = jobs[r["job"]]
        assert r["logger"] == "flow_gitops.sync" and isinstance(r["duration_s"], float) and r["duration_s"] >= 0
        assert abs(r["duration_s"] - job["duration"]) < 1.0
        assert r["trigger"] == job["trigger"]
        assert r["result"] == {"succeeded": "succeeded", "failed": "error"}[job["status"]]
        assert r.get("commit", "") == job["to_commit"][:8]
    by_job = {r["job"]: r for r in syncs}
    assert by_job[1]["commit"] == sha[:8] and by_job[1]["trigger"] == "startup"
    assert by_job[2]["level"] == "warning" and by_job[2]["code"] == "git_auth_failed" and by_job[2]["trigger"] == "force"
    assert by_job[3]["result"] == "succeeded" and by_job[3]["commit"] == sha[:8]


def test_text_logs_stay_readable_with_one_line_per_sync(flowapp, repos, secrets_dir, tmp_path):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example(tabs=1))}, "Flows")
    data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
    data["log"] = {"level": "info", "format": "text"}
    res = cli("sync", "--once", "--config", str(write_config(tmp_path, data)))
    lines = [ln for ln in res.stderr.splitlines() if " sync job=" in ln]
    assert len(lines) == 1, res.stderr
    assert re.match(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO flow_gitops\.sync: sync job=1 trigger=force "
                    rf"result=succeeded commit={sha[:8]} duration=\d+\.\d{{3}}s$", lines[0]), lines[0]
    assert not res.stderr.lstrip().startswith("{")


def test_failed_sync_log_line_names_the_commit(flowapp, repos, secrets_dir, tmp_path):
    """A sync that fails after the head is known (here: an invalid flows file) logs that commit too."""
    remote = repos.create("flows")
    bad = remote.commit({"flows.json": "[{\"id\": \"n1\"}"}, "Broken flows")
    data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
    data["log"] = {"level": "info", "format": "json"}
    res = cli("sync", "--once", "--config", str(write_config(tmp_path, data)), "--json", check=False)
    assert res.returncode == 1 and json.loads(res.stdout)["error_code"] == "flows_invalid"
    (line,) = [r for r in json_lines(res.stderr) if r.get("event") == "sync"]
    assert line["result"] == "error" and line["code"] == "flows_invalid"
    assert line.get("commit") == bad[:8], f"the error line does not name the commit: {line['msg']!r}"


@pytest.mark.matrix('crashes', 'deploy', 'SIGTERM',
                    expect='the deploy finishes, then the process exits; the restart is clean')
def test_sigterm_during_a_deploy_lets_it_finish_then_restart_is_clean(flowapp, repos, secrets_dir, tmp_path):
    port = urlsplit(flowapp.url).port
    with FaultProxy("127.0.0.1", port) as proxy:
        remote = repos.create("flows")
        sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
        data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
        data["flow_app"]["url"] = proxy.url_for("http")
        data["log"] = {"level": "info", "format": "json"}
        cfg = write_config(tmp_path, data)
        proxy.hold(b"POST /flows", 3.0, forward="before")  # the startup sync's deploy is slow
        serve = Serve(cfg, tmp_path / "serve.log").start()
        try:
            assert proxy.held.wait(30), "the sidecar never posted the flows"
        finally:
            rc, elapsed = serve.stop(timeout=25)
        assert rc == 0 and elapsed < 15, f"exit {rc} after {elapsed:.1f}s"
        # the running job finished: recorded once, the flows running
        jobs = json.loads(cli("jobs", "--config", str(cfg), "--json").stdout)
        assert [(j["id"], j["status"], j["to_commit"]) for j in jobs] == [(1, "succeeded", sha)]
        assert flowapp.global_value("starts_t0f0") == 1

        # restart: nothing to settle, the cheap startup check finds nothing new
        proxy.clear_hold()
        serve = Serve(cfg, tmp_path / "serve2.log").start()
        try:
            serve.wait_metric("flow_gitops_syncs_total", {"result": "noop"}, lambda v: v == 1)
        finally:
            rc, _ = serve.stop()
        assert rc == 0
        jobs = json.loads(cli("jobs", "--config", str(cfg), "--json").stdout)
        assert [(j["id"], j["status"]) for j in jobs] == [(2, "noop"), (1, "succeeded")]
        status = json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]
        assert status["state"] == "in_sync" and status["local"]["sha"] == sha
        assert flowapp.global_value("starts_t0f0") == 1  # never deployed twice


@pytest.mark.matrix('crashes', 'deploy (Node-RED stuck)', 'SIGTERM',
                    expect='exit within a bounded time; the restart settles the job')
def test_sigterm_abandons_a_stuck_deploy_within_a_bounded_time_and_restart_settles_it(flowapp, repos, secrets_dir, tmp_path):
    """A deploy whose answer never comes must not hold the shutdown hostage: Kubernetes sends
    SIGKILL after terminationGracePeriodSeconds (30 s by default). Node-RED has applied the
    flows; the sidecar never hears so. The next start settles the job from what Node-RED runs."""
    port = urlsplit(flowapp.url).port
    with FaultProxy("127.0.0.1", port) as proxy:
        remote = repos.create("flows")
        sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
        data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
        data["flow_app"].update(url=proxy.url_for("http"), timeout=120)
        cfg = write_config(tmp_path, data)
        proxy.hold(b"POST /flows", 120.0, forward="after")  # Node-RED takes the deploy; its answer is held back
        serve = Serve(cfg, tmp_path / "serve.log").start()
        try:
            assert proxy.held.wait(30), "the sidecar never posted the flows"
            deadline = time.monotonic() + 10
            while not flowapp.flows()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            rc, elapsed = serve.stop(timeout=20)
        assert rc is not None, f"serve still running {elapsed:.0f}s after SIGTERM during a stuck deploy"
        assert rc == 0

        # restart: the abandoned job is settled once from what Node-RED runs; nothing is deployed twice
        proxy.clear_hold()
        serve = Serve(cfg, tmp_path / "serve2.log").start()
        try:
            serve.wait_metric("flow_gitops_syncs_total", {"result": "noop"}, lambda v: v == 1)
        finally:
            serve.stop()
        jobs = json.loads(cli("jobs", "--config", str(cfg), "--json").stdout)
        assert [(j["id"], j["status"]) for j in jobs] == [(2, "noop"), (1, "succeeded")]
        assert jobs[1]["detail"]["note"] == "deploy confirmed after a restart"
        assert json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]["local"]["sha"] == sha
        assert flowapp.global_value("starts_t0f0") == 1


def test_the_clis_own_environment_variables_do_not_break_serve(tmp_path):
    """The remote CLI reads FLOW_GITOPS_ADDRESS / FLOW_GITOPS_TOKEN_FILE / FLOW_GITOPS_TOKEN (README);
    in a container they are set once for `kubectl exec … flow-gitops status`, and the sidecar
    started in the same environment must not take them for settings."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "mode": "off"}))
    env = dict(os.environ, FLOW_GITOPS_ADDRESS="127.0.0.1:8471", FLOW_GITOPS_TOKEN_FILE=str(tmp_path / "api-token"),
               FLOW_GITOPS_TOKEN="not-a-setting")
    res = cli("config", "validate", str(cfg), env=env, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "configuration is valid", shlex.join(["stdout:", res.stdout])
