"""The sidecar as its users run it: `flow-gitops serve | sync --once | plan | status | jobs`,
with a canary secret that must never leak (S5)."""
from __future__ import annotations

import pytest

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests import flowgen
from tests.conftest import sidecar_config
from tests.constants import CANARY

CLI = [sys.executable, "-m", "sidecar"]


def cli(*args, check=True, timeout=60):
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"flow-gitops {' '.join(args)} → {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


class ArgvWatch:
    """Samples every process's command line while the sidecar works."""

    def __init__(self, needle: str) -> None:
        self.needle = needle.encode()
        self.hits: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in Path("/proc").iterdir():
                if not p.name.isdigit():
                    continue
                try:
                    cmd = (p / "cmdline").read_bytes()
                except OSError:
                    continue
                if self.needle in cmd:
                    self.hits.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()




def write_config(tmp_path, flowapp, secrets_dir, url, extra) -> Path:
    data = sidecar_config(tmp_path, flowapp, secrets_dir, url, "https", extra)
    data["log"] = {"level": "debug", "format": "json"}
    path = tmp_path / "flow-gitops.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.matrix('attacks', 'a canary secret through serve, sync, status, plan and a failing sync', 'secrets',
                    expect='never in process arguments (sampled), logs, CLI output, state.db, .git/config or any file under data_dir')
def test_serve_sync_status_with_a_canary_secret(flowapp, repos, https_git, secrets_dir, tmp_path):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    extra = {"repository": {"username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token", "ca_file": https_git.cafile}}
    cfg = write_config(tmp_path, flowapp, secrets_dir, https_git.url_for("flows"), extra)
    assert cli("config", "validate", str(cfg)).stdout.strip() == "configuration is valid"

    log_path = tmp_path / "serve.log"
    with ArgvWatch(CANARY) as argv, open(log_path, "w") as log:
        proc = subprocess.Popen([*CLI, "serve", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                out = json.loads(cli("status", "--config", str(cfg), "--json").stdout)
                if out["status"]["local"] and out["status"]["local"]["sha"] == sha:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"serve did not sync: {log_path.read_text()[-2000:]}")
            busy = cli("sync", "--once", "--config", str(cfg), check=False)
            assert busy.returncode == 1 and "another sidecar is using the data directory" in busy.stderr
        finally:
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
            assert time.monotonic() - t0 < 10  # bounded shutdown
    assert argv.samples > 10 and argv.hits == []
    assert len(flowapp.flows()[0]) == len(flowgen.example())

    # An error path: the token is rotated to a wrong value → a clear error, no secret in it.
    (secrets_dir / "git" / "token").write_text("wrong-" + CANARY)
    res = cli("sync", "--once", "--config", str(cfg), "--json", check=False)
    assert res.returncode == 1
    job = json.loads(res.stdout)
    assert job["status"] == "failed" and job["error_code"] == "git_auth_failed"

    status = cli("status", "--config", str(cfg), "--json").stdout
    jobs = cli("jobs", "--config", str(cfg), "--json").stdout
    plan = cli("plan", "--config", str(cfg), "--json", check=False)
    assert "git_auth_failed" in plan.stderr
    (secrets_dir / "git" / "token").write_text(CANARY)
    plan = json.loads(cli("plan", "--config", str(cfg), "--json").stdout)
    assert plan["changes"] == [] and plan["commit"]["sha"] == sha

    texts = {"log": log_path.read_text(), "status": status, "jobs": jobs, "plan": json.dumps(plan), "error": res.stdout + res.stderr}
    for name, text in texts.items():
        assert CANARY not in text, f"canary leaked into {name}"
    assert '"msg": "sync job=1 trigger=startup result=succeeded' in texts["log"]
    data_dir = Path(yaml.safe_load(cfg.read_text())["data_dir"])
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in files)
    for p in files:
        assert CANARY.encode() not in p.read_bytes(), f"canary in {p}"


def test_cli_plan_shows_changes_and_config_validate_reports_fields(flowapp, repos, secrets_dir, tmp_path):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example(tabs=2))}, "Flows")
    data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(data))
    out = cli("plan", "--config", str(cfg)).stdout
    assert "added    flow     Flow 0 [t0]" in out and "added    subflow  Double it [sf1]" in out
    assert flowapp.flows()[0] == []  # a plan applies nothing

    bad = dict(data, repository=dict(data["repository"], protocol="ssh", url="https://example.invalid/x.git", branch="bad..name",
                                     password="hunter2"), sync={"interval": 30})
    cfg.write_text(yaml.safe_dump(bad))
    res = cli("config", "validate", str(cfg), check=False)
    assert res.returncode == 3
    assert "repository.url: Protocol Mismatch" in res.stdout
    assert "repository.branch: is not a valid branch name" in res.stdout
    assert "sync.interval: must be at least 120 seconds" in res.stdout
    assert "repository.password: must be a secret path" in res.stdout and "hunter2" not in res.stdout


def test_serve_starts_paused_and_cli_resume_starts_syncing(flowapp, repos, secrets_dir, tmp_path):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
    data["sync"]["paused"] = True
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen([*CLI, "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        assert json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]["state"] == "paused"
        assert flowapp.flows()[0] == []
        assert "sync resumed" in cli("resume", "--config", str(cfg)).stdout
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]
            if st["local"] and st["local"]["sha"] == sha:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("resume did not start syncing")
        assert st["state"] == "in_sync"
        cli("pause", "--config", str(cfg))
        assert json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]["state"] == "paused"
    finally:
        proc.terminate()
        proc.wait(20)
