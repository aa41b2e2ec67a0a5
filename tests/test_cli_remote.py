"""The CLI as a client of a running sidecar (gRPC), with exit codes scripts can use."""
from __future__ import annotations

import json
import subprocess
import sys

from tests import flowgen

CLI = [sys.executable, "-m", "sidecar"]


def remote_cli(rs, *args, token_file=None, address=None):
    tf = token_file or str(rs.server.token_file)
    return subprocess.run([*CLI, *args, "--address", address or rs.grpc_target, "--token-file", tf],
                          capture_output=True, text=True, timeout=60)


def test_remote_cli_controls_a_running_sidecar(flowapp, repos, running_sidecar, tmp_path):
    remote = repos.create("flows")
    first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
    rs = running_sidecar(flowapp, remote.file_url)
    res = remote_cli(rs, "pull", "--wait")
    assert res.returncode == 0, res.stderr
    out = remote_cli(rs, "status")
    assert out.returncode == 0 and "state : in_sync" in out.stdout and first[:8] in out.stdout
    st = json.loads(remote_cli(rs, "status", "--json").stdout)
    assert st["state"] == "SYNC_STATE_IN_SYNC" and st["local"]["sha"] == first

    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="b"))}, "Second")
    plan = remote_cli(rs, "plan")
    assert plan.returncode == 0 and "changed  flow     Flow 0 [t0]" in plan.stdout
    assert remote_cli(rs, "pause").stdout.startswith("sync paused")
    res = remote_cli(rs, "pull")
    assert res.returncode == 6 and "FAILED_PRECONDITION" in res.stderr and "paused" in res.stderr
    assert remote_cli(rs, "resume").returncode == 0
    res = remote_cli(rs, "pull", "--wait", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["to_commit"] in (second,)

    # a failing sync makes `pull --wait` exit 1; retry after the fix succeeds
    remote.commit({"flows.json": "{"}, "Broken")
    res = remote_cli(rs, "pull", "--wait")
    assert res.returncode == 1 and "flows_invalid" in res.stdout
    failed_id = int(res.stdout.split()[0])
    remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="c"))}, "Fixed")
    assert remote_cli(rs, "retry", str(failed_id)).returncode == 0
    rs.app.service.wait_idle(30)
    jobs = json.loads(remote_cli(rs, "jobs", "--json", "--limit", "3").stdout)
    assert jobs[0]["retry_of"] == str(failed_id) and jobs[0]["status"] == "JOB_STATUS_SUCCEEDED"
    assert remote_cli(rs, "retry", "9999").returncode == 7  # NOT_FOUND
    assert remote_cli(rs, "approve").returncode == 6  # nothing waits for approval

    bad = tmp_path / "bad-token"
    bad.write_text("nope")
    res = remote_cli(rs, "status", token_file=str(bad))
    assert res.returncode == 5 and "UNAUTHENTICATED" in res.stderr
    res = remote_cli(rs, "status", address="127.0.0.1:1")
    assert res.returncode == 4 and "UNAVAILABLE" in res.stderr


def test_remote_approve_and_reject(flowapp, repos, running_sidecar):
    remote = repos.create("flows")
    first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
    rs = running_sidecar(flowapp, remote.file_url, extra={"sync": {"require_approval": True}})
    rs.app.service.wait_idle(30)
    out = remote_cli(rs, "status")
    assert "state : pending_approval" in out.stdout and f"waiting for approval: {first[:8]}" in out.stdout
    assert remote_cli(rs, "approve", "deadbeef").returncode == 6  # not the waiting revision
    res = remote_cli(rs, "approve", first[:8])
    assert res.returncode == 0 and res.stdout.strip() == f"approved {first[:8]}"
    rs.app.service.wait_idle(30)
    assert len(flowapp.flows()[0]) == len(flowgen.example())
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="x"))}, "Second")
    assert remote_cli(rs, "pull", "--wait").returncode == 0
    assert remote_cli(rs, "reject").stdout.strip() == f"rejected {second[:8]}"
    assert "state : behind" in remote_cli(rs, "status").stdout
