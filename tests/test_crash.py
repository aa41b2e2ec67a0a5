"""kill -9 of the sidecar in the middle of a deploy, then a restart: consistent state,
the commit applied exactly once, no job lost or duplicated (O4)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import yaml

from tests import flowgen
from tests.conftest import sidecar_config
from tests.servers.faultproxy import FaultProxy

CLI = [sys.executable, "-m", "sidecar"]


def cli(*args):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("forward", ["before", "after"], ids=["killed-before-nodered-saw-it", "killed-after-nodered-applied-it"])
def test_kill_9_during_deploy_then_restart(flowapp, repos, secrets_dir, tmp_path, forward):
    port = urlsplit(flowapp.url).port
    with FaultProxy("127.0.0.1", port) as proxy:
        remote = repos.create("flows")
        first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
        data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
        data["flow_app"]["url"] = proxy.url_for("http")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump(data))
        assert cli("sync", "--once", "--config", str(cfg)).returncode == 0
        assert flowapp.global_value("starts_t0f0") == 1
        _, rev_first = flowapp.flows()

        second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="second"))}, "Second")
        proxy.hold(b"POST /flows", 5.0, forward=forward)
        proc = subprocess.Popen([*CLI, "sync", "--once", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proxy.held.wait(30), "the sidecar never posted the flows"
        if forward == "after":
            deadline = time.monotonic() + 10  # Node-RED takes the deploy while the answer is held back
            while flowapp.flows()[1] == rev_first and time.monotonic() < deadline:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
        proxy.clear_hold()
        time.sleep(0.5)
        flows, rev = flowapp.flows()
        if forward == "before":
            assert rev == rev_first  # the held request was never delivered: old flows, whole
        else:
            assert rev != rev_first  # Node-RED applied the new flows, whole
            assert "second" in next(n for n in flows if n["id"] == "t0f0")["func"]

        # restart: the interrupted job is settled, the commit is applied exactly once
        res = cli("sync", "--once", "--config", str(cfg), "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        jobs = json.loads(cli("jobs", "--config", str(cfg), "--json").stdout)
        assert [j["id"] for j in jobs] == [3, 2, 1]  # nothing lost, nothing duplicated
        killed = jobs[1]
        assert killed["to_commit"] == second
        if forward == "before":
            assert killed["status"] == "interrupted" and killed["error_code"] == "interrupted"
            assert "during the deploy step" in killed["error_message"]
        else:
            assert killed["status"] == "succeeded"
            assert killed["detail"]["note"] == "deploy confirmed after a restart"
        assert jobs[0]["status"] == "succeeded" and jobs[0]["to_commit"] == second
        assert all(j["status"] != "running" for j in jobs)
        status = json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]
        assert status["local"]["sha"] == second and status["state"] == "in_sync"
        # the new flows started exactly once: one start for the first deploy, one for the second
        assert flowapp.global_value("starts_t0f0") == 2
        assert flowapp.global_value("starts_t1f0") == 1  # an untouched tab never restarted
        assert status["local"]["sha"] != first
