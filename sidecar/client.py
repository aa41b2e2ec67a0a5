"""The command line as a client of a running sidecar (gRPC).

`flow-gitops status|pull|pause|resume|plan|jobs|retry JOB|approve|reject --address A`
talks to the sidecar's API with its bearer token. Output is human-readable, or the
API's JSON with `--json`. Exit codes scripts can use are in `EXIT`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

from .api.gen.flowgitops.v1 import gitops_pb2 as pb
from .api.gen.flowgitops.v1 import gitops_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:8471"
EXIT = {"ok": 0, "failed": 1, "usage": 2, "invalid": 3, "unavailable": 4, "unauthenticated": 5, "precondition": 6, "not_found": 7}
_CODE_EXIT = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT["invalid"],
    grpc.StatusCode.UNAVAILABLE: EXIT["unavailable"],
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT["unavailable"],
    grpc.StatusCode.UNAUTHENTICATED: EXIT["unauthenticated"],
    grpc.StatusCode.FAILED_PRECONDITION: EXIT["precondition"],
    grpc.StatusCode.NOT_FOUND: EXIT["not_found"],
}


class Remote:
    def __init__(self, address: str, token: str, ca_file: str = "", timeout: float = 30.0) -> None:
        if ca_file:
            creds = grpc.ssl_channel_credentials(Path(ca_file).read_bytes())
            self.channel = grpc.secure_channel(address, creds)
        else:
            self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.GitOpsServiceStub(self.channel)
        self.md = [("authorization", f"Bearer {token}")]
        self.timeout = timeout

    def call(self, name: str, request):
        return getattr(self.stub, name)(request, metadata=self.md, timeout=self.timeout)


def token_from(args) -> str:
    if os.environ.get("FLOW_GITOPS_TOKEN"):
        return os.environ["FLOW_GITOPS_TOKEN"]
    path = args.token_file or os.environ.get("FLOW_GITOPS_TOKEN_FILE") or "data/api-token"
    try:
        return Path(path).read_text().strip()
    except OSError:
        raise SystemExit(f"error: cannot read the API token file {path} (use --token-file or FLOW_GITOPS_TOKEN_FILE)")


def _dump(msg) -> str:
    return json.dumps(json_format.MessageToDict(msg, preserving_proto_field_name=True), indent=2)


def _state(s: pb.Status) -> str:
    return pb.SyncState.Name(s.state).removeprefix("SYNC_STATE_").lower()


def _commit(c: pb.Commit) -> str:
    if not c.sha:
        return "-"
    text = f"{c.short_sha} {c.subject!r} by {c.author} at {c.date}"
    return text + (f"\n        {c.link}" if c.link else "")


def print_status(s: pb.Status) -> None:
    line = f"state : {_state(s)}"
    if s.reason_code:
        line += f" ({s.reason_code}: {s.reason_message})"
    print(line)
    if s.behind and _state(s) != "behind":
        print("        behind: the remote has commits that are not applied")
    if s.progress:
        print(f"        {s.progress}")
    print(f"remote: {_commit(s.remote)}")
    print(f"local : {_commit(s.local)}")
    if s.HasField("next_sync_at"):
        left = s.next_sync_at.ToSeconds() - time.time()
        print(f"next  : in {max(0, int(left))} s")
    if s.pending_commit:
        print(f"waiting for approval: {s.pending_commit[:8]} (flow-gitops approve)")
    if s.HasField("drift"):
        print(f"drift : {s.drift.message}")
    for e in s.import_errors:
        print(f"import error: {e.path}: {e.message}")


def print_job(j: pb.Job) -> None:
    status = pb.JobStatus.Name(j.status).removeprefix("JOB_STATUS_").lower()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.started_at.ToSeconds())) if j.HasField("started_at") else ""
    line = f"{j.id:>5} {started} {j.trigger:8} {status:16} {j.from_commit[:8]:8} → {j.to_commit[:8]:8} {j.duration_seconds:7.3f}s"
    if j.attempts > 1:
        line += f" attempt {j.attempts}"
    if j.error_code:
        line += f" {j.error_code}: {j.error_message}"
    print(line)


def _wait_for_job(remote: Remote, after_id: int, timeout: float) -> pb.Job | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = remote.call("ListJobs", pb.ListJobsRequest(limit=5)).jobs
        done = [j for j in jobs if j.id > after_id and j.status not in (pb.JOB_STATUS_RUNNING,)]
        if done:
            return done[0]
        time.sleep(0.2)
    return None


def run(args) -> int:
    remote = Remote(args.address or os.environ.get("FLOW_GITOPS_ADDRESS") or DEFAULT_ADDRESS, token_from(args),
                    args.tls_ca or "")
    try:
        return _run(remote, args)
    except grpc.RpcError as err:
        code = err.code()
        print(f"error: {code.name}: {err.details()}", file=sys.stderr)
        return _CODE_EXIT.get(code, EXIT["failed"])
    finally:
        remote.channel.close()


def _run(remote: Remote, args) -> int:
    cmd = args.command
    if cmd == "status":
        s = remote.call("GetStatus", pb.GetStatusRequest()).status
        print(_dump(s) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_status(s)
        return EXIT["ok"]
    if cmd in ("pause", "resume"):
        s = remote.call(cmd.capitalize(), getattr(pb, f"{cmd.capitalize()}Request")()).status
        print(_dump(s) if args.json else f"sync {'paused' if cmd == 'pause' else 'resumed'}: {_state(s)}")
        return EXIT["ok"]
    if cmd == "pull":
        before = remote.call("ListJobs", pb.ListJobsRequest(limit=1)).jobs
        result = remote.call("ForcePull", pb.ForcePullRequest()).result
        if not args.wait:
            print(json.dumps({"result": result}) if args.json else f"force pull {result}")
            return EXIT["ok"]
        job = _wait_for_job(remote, before[0].id if before else 0, args.wait_timeout)
        if job is None:
            print("error: no sync finished in time", file=sys.stderr)
            return EXIT["failed"]
        if args.json:
            print(_dump(job))
        else:
            print_job(job)
        return EXIT["ok"] if job.status in (pb.JOB_STATUS_SUCCEEDED, pb.JOB_STATUS_NOOP, pb.JOB_STATUS_PENDING_APPROVAL) else EXIT["failed"]
    if cmd == "plan":
        p = remote.call("GetPlan", pb.GetPlanRequest()).plan
        if args.json:
            print(_dump(p))
            return EXIT["ok"]
        print(f"plan for {p.commit.short_sha} {p.commit.subject!r} ({p.flow_file}): {p.summary}")
        for c in p.changes:
            print(f"  {c.action:8} {c.kind:8} {c.label} [{c.id}]")
        if p.types_missing:
            print(f"  missing node types: {', '.join(p.types_missing)}")
        return EXIT["ok"]
    if cmd == "jobs":
        jobs = remote.call("ListJobs", pb.ListJobsRequest(limit=args.limit)).jobs
        if args.json:
            print(json.dumps([json_format.MessageToDict(j, preserving_proto_field_name=True) for j in jobs], indent=2))
        else:
            for j in jobs:
                print_job(j)
        return EXIT["ok"]
    if cmd == "retry":
        result = remote.call("RetryJob", pb.RetryJobRequest(job_id=args.job)).result
        print(json.dumps({"result": result}) if args.json else f"retry of job {args.job} {result}")
        return EXIT["ok"]
    if cmd in ("approve", "reject"):
        name = "ApproveDeploy" if cmd == "approve" else "RejectDeploy"
        req = getattr(pb, f"{name}Request")(commit=args.commit or "")
        commit = remote.call(name, req).commit
        print(json.dumps({"commit": commit}) if args.json else f"{cmd.rstrip('e')}ed {commit[:8]}")
        return EXIT["ok"]
    print(f"error: {cmd} has no remote form", file=sys.stderr)
    return EXIT["usage"]
