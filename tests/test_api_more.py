"""More of the API contract, end to end (real Node-RED, real git, no mocks).

* a reflection-only client (like grpcurl) discovers the service and calls it;
* every RPC of protos/flowgitops/v1/gitops.proto on the native and gRPC-web front ends;
* reconnecting WatchStatus clients get a fresh snapshot;
* /metrics, /readyz, unknown paths; CORS on and off; the API token file.
"""
from __future__ import annotations

import base64
import re
import stat
import time
from pathlib import Path
from urllib.parse import unquote

import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from tests import flowgen
from tests.constants import CANARY, GIT_USER
from tests.grpcweb import GrpcWebClient, GrpcWebError
from tests.reflection_client import ReflectionClient
from tests.waiting import status

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "protos" / "flowgitops" / "v1" / "gitops.proto"
SERVICE = "flowgitops.v1.GitOpsService"
CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}
FINAL_JOB = (pb.JOB_STATUS_SUCCEEDED, pb.JOB_STATUS_NOOP, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_INTERRUPTED,
             pb.JOB_STATUS_REJECTED, pb.JOB_STATUS_PENDING_APPROVAL, pb.JOB_STATUS_APPROVED)


# --- helpers ------------------------------------------------------------------
def make_repo(repos, variant=""):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant=variant))}, "Example flows\n\nWith a body.")
    return remote, sha


def wait_status(rs, pred, what: str, timeout: float = 20) -> pb.Status:
    """Poll GetStatus until `pred(status)` holds with no job step running."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = status(rs)
        if not st.phase and pred(st):
            return st
        time.sleep(0.05)
    raise AssertionError(f"status never became {what}; last: {st}")


def wait_state(rs, state, timeout: float = 20) -> pb.Status:
    return wait_status(rs, lambda s: s.state == state, pb.SyncState.Name(state), timeout)


def jobs(rs, limit: int = 50) -> list[pb.Job]:
    return list(rs.stub.ListJobs(pb.ListJobsRequest(limit=limit), metadata=rs.md, timeout=10).jobs)


def newest_job_id(rs) -> int:
    js = jobs(rs, 1)
    return js[0].id if js else 0


def wait_job(rs, pred, what: str, timeout: float = 20) -> pb.Job:
    """Poll ListJobs until a job in a final (or waiting) state satisfies `pred`."""
    deadline = time.monotonic() + timeout
    seen: list = []
    while time.monotonic() < deadline:
        seen = jobs(rs)
        for job in seen:
            if job.status in FINAL_JOB and pred(job):
                return job
        time.sleep(0.05)
    raise AssertionError(f"no job {what}; jobs: {[(j.id, j.trigger, pb.JobStatus.Name(j.status)) for j in seen]}")


class Failure:
    def __init__(self, code: str, message: str, details: bytes | None) -> None:
        self.code, self.message = code, message
        self.violations: dict[str, str] = {}
        if details:
            st = status_pb2.Status.FromString(details)
            for any_msg in st.details:
                br = error_details_pb2.BadRequest()
                if any_msg.Unpack(br):
                    self.violations.update({v.field: v.description for v in br.field_violations})

    def __repr__(self) -> str:
        return f"Failure({self.code}, {self.message!r}, {self.violations})"


def _b64(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4))


class Front:
    """One API front end: "native" (grpcio stub), "web" (gRPC-web binary) or "text" (gRPC-web text)."""

    def __init__(self, rs, kind: str) -> None:
        self.rs, self.kind = rs, kind

    def __call__(self, method: str, request=None):
        request = request if request is not None else getattr(pb, f"{method}Request")()
        if self.kind == "native":
            return getattr(self.rs.stub, method)(request, metadata=self.rs.md, timeout=30)
        client = self.rs.web if self.kind == "web" else self.rs.web_text
        return client.unary(method, request, getattr(pb, f"{method}Response"))

    def fail(self, method: str, request=None) -> Failure:
        """Call and expect an error; returns it in one shape for every front end."""
        try:
            response = self(method, request)
        except grpc.RpcError as err:
            st = rpc_status.from_call(err)
            return Failure(err.code().name, err.details() or "", st.SerializeToString() if st else None)
        except GrpcWebError as err:
            raw = err.trailers.get("grpc-status-details-bin")
            return Failure(CODE_NAMES[err.status], unquote(err.message or ""), _b64(raw) if raw else None)
        raise AssertionError(f"{self.kind} {method} succeeded, an error was expected: {response}")


def raw_grpc_web(rs, method: str, request, text: bool = False) -> bytes:
    """The decoded HTTP body of a gRPC-web call (every byte the server sent)."""
    frame = b"\x00" + len(request.SerializeToString()).to_bytes(4, "big") + request.SerializeToString()
    headers = {"authorization": f"Bearer {rs.token}", "x-grpc-web": "1",
               "content-type": "application/grpc-web-text+proto" if text else "application/grpc-web+proto"}
    resp = requests.post(f"{rs.http_url}/{SERVICE}/{method}", data=base64.b64encode(frame) if text else frame,
                         headers=headers, timeout=10)
    assert resp.status_code == 200, resp.status_code
    if not text:
        return resp.content
    body = resp.content
    # each padded base64 segment decodes on its own
    return b"".join(base64.b64decode(seg + b"=" * (-len(seg) % 4)) for seg in re.findall(rb"[A-Za-z0-9+/]+=*", body))


def metrics(rs) -> tuple[str, dict]:
    resp = requests.get(rs.http_url + "/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return resp.text, values


def flow_ids(flowapp) -> set[str]:
    return {n["id"] for n in flowapp.flows()[0]}


def func_of(flowapp, node_id: str) -> str:
    return next(n["func"] for n in flowapp.flows()[0] if n["id"] == node_id)


# --- 1. reflection ------------------------------------------------------------
def contract_rpcs() -> set[str]:
    return set(re.findall(r"^\s*rpc\s+(\w+)\s*\(", PROTO.read_text(), re.M))


def test_reflection_client_discovers_the_service_and_calls_it_without_generated_code(flowapp, repos, running_sidecar):
    remote, sha = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    rc = ReflectionClient(rs.channel, metadata=rs.md)

    services = set(rc.list_services())
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services, services

    files = {f.name: f for f in rc.file_containing_symbol(SERVICE)}
    assert "flowgitops/v1/gitops.proto" in files, sorted(files)
    assert "google/protobuf/timestamp.proto" in files, "dependencies come with the file"
    assert "google/protobuf/timestamp.proto" in files["flowgitops/v1/gitops.proto"].dependency

    rc.load_symbol(SERVICE)
    service = rc.pool.FindServiceByName(SERVICE)
    assert {m.name for m in service.methods} == contract_rpcs()
    assert rc.method(SERVICE, "WatchStatus").server_streaming
    assert rc.method(SERVICE, "GetStatus").output_type.full_name == "flowgitops.v1.GetStatusResponse"

    reply = rc.call(SERVICE, "GetStatus")
    assert type(reply) is not pb.GetStatusResponse and reply.DESCRIPTOR.file.pool is rc.pool
    in_sync = rc.pool.FindEnumTypeByName("flowgitops.v1.SyncState").values_by_name["SYNC_STATE_IN_SYNC"].number
    assert reply.HasField("status") and reply.status.state == in_sync
    assert reply.status.local.sha == sha and reply.status.environment == "test"
    assert reply.status.next_sync_at.seconds > time.time()  # a well-known type from the reflected pool

    # a message built from reflection is understood by the server (request fields too)
    jobs_reply = rc.call(SERVICE, "ListJobs", {"limit": 1})
    assert len(jobs_reply.jobs) == 1 and jobs_reply.jobs[0].to_commit == sha


@pytest.mark.matrix('attacks', 'server reflection without the token', 'API authentication',
                    expect='refused: even the service description needs the token')
def test_reflection_needs_the_bearer_token(flowapp, repos, running_sidecar):
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    for md in ([], [("authorization", "Bearer not-the-token")]):
        with pytest.raises(grpc.RpcError) as err:
            ReflectionClient(rs.channel, metadata=md).list_services()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            ReflectionClient(rs.channel, metadata=md).file_containing_symbol(SERVICE)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # descriptors fetched with the token do not open the service itself
    rc = ReflectionClient(rs.channel, metadata=rs.md)
    rc.load_symbol(SERVICE)
    with pytest.raises(grpc.RpcError) as err:
        rc.call(SERVICE, "GetStatus", metadata=[])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rc.call(SERVICE, "GetStatus").status.configured


# --- 2. every RPC, on both front ends -------------------------------------------
@pytest.mark.parametrize("kind", ["native", "web", "text"])
def test_status_config_controls_and_secret_paths(kind, flowapp, repos, running_sidecar):
    remote, sha = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    call = Front(rs, kind)
    _, rev = flowapp.flows()

    # GetStatus
    st = call("GetStatus").status
    assert st.state == pb.SYNC_STATE_IN_SYNC and st.configured and not st.paused and not st.behind
    assert st.local.sha == sha == st.remote.sha and st.local.subject == "Example flows"
    assert (st.environment, st.mode, st.interval_seconds) == ("test", "pull", 120)
    assert st.HasField("next_sync_at") and st.HasField("last_success_at")

    # GetConfig
    got = call("GetConfig")
    assert got.locked and (got.environment, got.mode) == ("test", "pull")
    repo = got.config.repository
    assert (repo.protocol, repo.url, repo.branch) == ("file", remote.file_url, "main")
    assert got.config.sync.interval == 120 and not got.config.sync.require_approval

    # ValidateConfig: valid as it is; per-field violations otherwise; never saved
    ok = call("ValidateConfig", pb.ValidateConfigRequest(config=got.config))
    assert ok.valid and not ok.violations
    bad = pb.Config()
    bad.CopyFrom(got.config)
    bad.repository.branch, bad.sync.interval, bad.sync.dependency_policy = "bad..name", 5, "sometimes"
    bad.repository.username = "plaintext-user"
    res = call("ValidateConfig", pb.ValidateConfigRequest(config=bad))
    fields = {v.field: v.description for v in res.violations}
    assert not res.valid
    assert {"repository.branch", "sync.interval", "sync.dependency_policy", "repository.username"} <= set(fields), fields
    assert all(v.description for v in res.violations)
    assert "plaintext-user" not in " ".join(fields.values())
    assert call("GetConfig").config.sync.interval == 120

    # ForcePull while active: the first is queued; while one runs, one more waits and later ones merge
    before = newest_job_id(rs)
    with rs.app.engine.lock:  # holds the sync job at its start, so the triggers pile up
        results = [call("ForcePull").result for _ in range(4)]
    assert results[0] == "queued" and "coalesced" in results and set(results) <= {"queued", "coalesced"}, results
    assert rs.app.service.wait_idle(20)
    forced = [j for j in jobs(rs) if j.id > before]
    assert len(forced) == results.count("queued"), (results, forced)  # coalesced triggers add no job
    assert all(j.trigger == "force" and j.status == pb.JOB_STATUS_SUCCEEDED and j.to_commit == sha for j in forced)
    assert flowapp.flows()[1] == rev  # nothing changed at the remote: no deploy

    # Pause
    paused = call("Pause").status
    assert paused.paused and paused.state == pb.SYNC_STATE_PAUSED and not paused.HasField("next_sync_at")
    assert not call("GetConfig").locked
    failure = call.fail("ForcePull")
    assert failure.code == "FAILED_PRECONDITION" and "paused" in failure.message, failure

    # SaveConfig while paused
    new = pb.Config()
    new.CopyFrom(got.config)
    new.sync.interval, new.sync.dependency_policy = 240, "deploy"
    saved = call("SaveConfig", pb.SaveConfigRequest(config=new))
    assert saved.config.sync.interval == 240 and saved.config.sync.dependency_policy == "deploy"
    assert saved.remote_head == remote.head() == sha and saved.connect_error_code == "" and saved.connect_error_message == ""
    assert saved.status.paused and saved.status.interval_seconds == 240
    assert call("GetConfig").config.sync.interval == 240
    failure = call.fail("SaveConfig", pb.SaveConfigRequest(config=bad))
    assert failure.code == "INVALID_ARGUMENT" and "sync.interval" in failure.violations, failure

    # Resume: a resume sync runs; nothing new, so it is a no-op
    before = newest_job_id(rs)
    resumed = call("Resume").status
    assert not resumed.paused
    job = wait_job(rs, lambda j: j.id > before, "after Resume")
    assert job.trigger == "resume" and job.status == pb.JOB_STATUS_NOOP
    st = wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    assert st.interval_seconds == 240 and st.HasField("next_sync_at")
    assert flowapp.flows()[1] == rev

    # SuggestSecretPaths: names only
    sugg = call("SuggestSecretPaths", pb.SuggestSecretPathsRequest(prefix="global.SECRETS.git"))
    assert list(sugg.paths) == ["global.SECRETS.git.token", "global.SECRETS.git.username"]
    assert len(call("SuggestSecretPaths", pb.SuggestSecretPathsRequest(prefix="global.SECRETS", limit=2)).paths) == 2
    assert list(call("SuggestSecretPaths", pb.SuggestSecretPathsRequest(prefix="global.SECRETS.nodered")).paths) == [
        "global.SECRETS.nodered.token"]
    assert list(call("SuggestSecretPaths", pb.SuggestSecretPathsRequest(prefix="global.SECRETS.nope")).paths) == []
    secrets = [CANARY.encode(), (GIT_USER + "\n").encode(), flowapp.admin_token.encode()]
    req = pb.SuggestSecretPathsRequest(prefix="global.SECRETS")
    wire = call("SuggestSecretPaths", req).SerializeToString() if kind == "native" else raw_grpc_web(rs, "SuggestSecretPaths", req, text=kind == "text")
    assert b"global.SECRETS.git.token" in wire
    for value in secrets:
        assert value not in wire


@pytest.mark.parametrize("kind", ["native", "web"])
def test_plan_jobs_and_retry(kind, flowapp, repos, running_sidecar):
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    call = Front(rs, kind)
    _, rev = flowapp.flows()

    # GetPlan: a dry run of a new commit
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Change flow 0")
    plan = call("GetPlan").plan
    assert plan.commit.sha == second and plan.commit.subject == "Change flow 0" and plan.applied_commit == first
    assert plan.flow_file == "flows.json" and plan.node_count > 0 and plan.summary
    changes = {(c.kind, c.id, c.action) for c in plan.changes}
    assert ("flow", "t0", "changed") in changes, changes
    assert not any(c.id in ("t1", "t2") for c in plan.changes), changes  # untouched tabs are not listed
    assert flowapp.flows()[1] == rev and "two" not in func_of(flowapp, "t0f0")  # nothing applied
    assert status(rs).local.sha == first

    # ListJobs: newest first, limit respected, limit checked
    for n in range(2):
        before = newest_job_id(rs)
        assert call("ForcePull").result == "queued"
        wait_job(rs, lambda j: j.id > before, f"force pull {n}")
    listed = list(call("ListJobs").jobs)
    ids = [j.id for j in listed]
    assert len(ids) >= 3 and ids == sorted(ids, reverse=True), ids
    assert listed[-1].trigger == "startup" and listed[0].trigger == "force"
    assert [j.id for j in call("ListJobs", pb.ListJobsRequest(limit=2)).jobs] == ids[:2]
    assert (listed[1].from_commit, listed[1].to_commit) == (first, second)  # the first force applied it
    assert (listed[0].from_commit, listed[0].to_commit) == (second, second)
    assert "two" in func_of(flowapp, "t0f0")
    failure = call.fail("ListJobs", pb.ListJobsRequest(limit=1000))
    assert failure.code == "INVALID_ARGUMENT" and "limit" in failure.violations, failure

    # RetryJob: unknown id, a job that did not fail
    failure = call.fail("RetryJob", pb.RetryJobRequest(job_id=987654))
    assert failure.code == "NOT_FOUND" and "987654" in failure.message, failure
    failure = call.fail("RetryJob", pb.RetryJobRequest(job_id=listed[-1].id))
    assert failure.code == "FAILED_PRECONDITION" and "succeeded" in failure.message, failure

    # a broken flows file fails the sync; the Flow App keeps the last good flows
    _, rev = flowapp.flows()
    broken = remote.commit({"flows.json": "{"}, "Broken flows")
    before = newest_job_id(rs)
    assert call("ForcePull").result == "queued"
    st = wait_state(rs, pb.SYNC_STATE_ERROR)
    assert st.reason_code == "flows_invalid" and st.reason_message and st.local.sha == second
    failed = wait_job(rs, lambda j: j.id > before, "after the broken commit")
    assert failed.status == pb.JOB_STATUS_FAILED and failed.error_code == "flows_invalid" and failed.to_commit == broken
    assert flowapp.flows()[1] == rev

    # fixed at the remote: retrying the failed job syncs the head, linked to it
    fixed = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="three"))}, "Fix flows")
    assert call("RetryJob", pb.RetryJobRequest(job_id=failed.id)).result in ("queued", "coalesced")
    retry = wait_job(rs, lambda j: j.id > failed.id, "retrying")
    assert retry.trigger == "retry" and retry.retry_of == failed.id, retry
    assert retry.status == pb.JOB_STATUS_SUCCEEDED and retry.to_commit == fixed
    st = wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    assert st.local.sha == fixed and st.reason_code == "" and st.consecutive_failures == 0
    assert "three" in func_of(flowapp, "t0f0")
    assert [j.retry_of for j in call("ListJobs", pb.ListJobsRequest(limit=1)).jobs] == [failed.id]
    failure = call.fail("RetryJob", pb.RetryJobRequest(job_id=retry.id))
    assert failure.code == "FAILED_PRECONDITION", failure


@pytest.mark.parametrize("kind", ["native", "web"])
def test_approve_and_reject_deploys(kind, flowapp, repos, running_sidecar):
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url, extra={"sync": {"require_approval": True}})
    call = Front(rs, kind)
    st = wait_state(rs, pb.SYNC_STATE_PENDING_APPROVAL)
    assert st.pending_commit == first and not st.HasField("local")
    assert "t0" not in flow_ids(flowapp)  # waiting: nothing deployed
    waiting = call("ListJobs").jobs[0]
    assert waiting.status == pb.JOB_STATUS_PENDING_APPROVAL and waiting.to_commit == first

    # approving another revision than the one waiting is refused
    failure = call.fail("ApproveDeploy", pb.ApproveDeployRequest(commit="0000000"))
    assert failure.code == "FAILED_PRECONDITION" and first[:8] in failure.message, failure

    # approve → deployed into the real Node-RED
    assert call("ApproveDeploy", pb.ApproveDeployRequest(commit=first[:8])).commit == first
    st = wait_status(rs, lambda s: s.state == pb.SYNC_STATE_IN_SYNC and s.local.sha == first, "approved and deployed")
    assert st.pending_commit == ""
    assert {"t0", "t1", "t2", "sf1", "cfg1"} <= flow_ids(flowapp)
    listed = list(call("ListJobs").jobs)
    assert listed[0].trigger == "approve" and listed[0].status == pb.JOB_STATUS_SUCCEEDED and listed[0].to_commit == first
    assert next(j for j in listed if j.id == waiting.id).status == pb.JOB_STATUS_APPROVED
    for method, req in (("ApproveDeploy", pb.ApproveDeployRequest()), ("RejectDeploy", pb.RejectDeployRequest())):
        failure = call.fail(method, req)
        assert failure.code == "FAILED_PRECONDITION" and "no deploy request" in failure.message, failure

    # a new commit waits again; reject → not deployed, and not asked for again
    _, rev = flowapp.flows()
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    assert call("ForcePull").result == "queued"
    st = wait_status(rs, lambda s: s.state == pb.SYNC_STATE_PENDING_APPROVAL and s.pending_commit == second, "pending again")
    assert st.local.sha == first
    failure = call.fail("RejectDeploy", pb.RejectDeployRequest(commit=first))
    assert failure.code == "FAILED_PRECONDITION", failure  # not the one waiting
    assert call("RejectDeploy", pb.RejectDeployRequest(commit=second[:10])).commit == second
    st = call("GetStatus").status
    assert st.state == pb.SYNC_STATE_BEHIND and st.pending_commit == "" and st.behind and st.local.sha == first
    assert flowapp.flows()[1] == rev and "two" not in func_of(flowapp, "t0f0")
    assert call("ListJobs", pb.ListJobsRequest(limit=1)).jobs[0].status == pb.JOB_STATUS_REJECTED
    failure = call.fail("RejectDeploy")
    assert failure.code == "FAILED_PRECONDITION", failure

    before = newest_job_id(rs)
    call("Pause")
    call("Resume")  # a resume sync sees the rejected head: nothing to ask
    job = wait_job(rs, lambda j: j.id > before, "after Resume")
    assert job.trigger == "resume" and job.status == pb.JOB_STATUS_NOOP, job
    st = wait_state(rs, pb.SYNC_STATE_BEHIND)
    assert st.pending_commit == "" and flowapp.flows()[1] == rev


@pytest.mark.parametrize("kind", ["native", "web"])
def test_retry_job_while_paused_is_refused_or_done_never_acknowledged_and_dropped(kind, flowapp, repos, running_sidecar):
    """ForcePull is FAILED_PRECONDITION while paused; RetryJob must not answer "queued" for a
    retry the loop then ignores (the trigger is dropped: no job, not even after Resume)."""
    remote = repos.create("flows")
    remote.commit({"flows.json": "{"}, "Broken flows")
    rs = running_sidecar(flowapp, remote.file_url)
    call = Front(rs, kind)
    wait_state(rs, pb.SYNC_STATE_ERROR)
    failed = wait_job(rs, lambda j: j.status == pb.JOB_STATUS_FAILED, "failed startup sync")
    assert call("Pause").status.paused
    try:
        result = call("RetryJob", pb.RetryJobRequest(job_id=failed.id)).result
    except (grpc.RpcError, GrpcWebError):
        failure = call.fail("RetryJob", pb.RetryJobRequest(job_id=failed.id))
        assert failure.code == "FAILED_PRECONDITION" and "paused" in failure.message, failure
        return
    assert result in ("queued", "coalesced")
    # acknowledged: a retry of that job must then really run
    wait_job(rs, lambda j: j.retry_of == failed.id, f"retrying job {failed.id} after RetryJob answered {result!r} while paused",
             timeout=3)


def test_suggest_secret_paths_never_silently_drops_a_path_on_a_negative_limit(flowapp, repos, running_sidecar):
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    every = list(rs.stub.SuggestSecretPaths(pb.SuggestSecretPathsRequest(prefix="global.SECRETS"), metadata=rs.md).paths)
    assert len(every) == 3
    for kind in ("native", "web"):
        call = Front(rs, kind)
        try:
            got = list(call("SuggestSecretPaths", pb.SuggestSecretPathsRequest(prefix="global.SECRETS", limit=-1)).paths)
        except (grpc.RpcError, GrpcWebError):
            failure = call.fail("SuggestSecretPaths", pb.SuggestSecretPathsRequest(prefix="global.SECRETS", limit=-1))
            assert failure.code == "INVALID_ARGUMENT", failure
            continue
        assert got == every, f"{kind}: limit -1 returned {got}, not every path {every} (nor INVALID_ARGUMENT)"


# --- 3. reconnecting clients get a fresh snapshot --------------------------------
def _subscribers(rs) -> float:
    return metrics(rs)[1][("flow_gitops_stream_subscribers", ())]


def _wait_subscribers(rs, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _subscribers(rs) == n:
            return
        time.sleep(0.05)
    raise AssertionError(f"flow_gitops_stream_subscribers stayed {_subscribers(rs)}, expected {n}")


@pytest.mark.parametrize("kind", ["native", "web"])
def test_a_reconnecting_watch_client_gets_a_fresh_snapshot(kind, flowapp, repos, running_sidecar):
    remote, sha = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url, heartbeat=0.3)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)

    def open_stream():
        if kind == "native":
            call = rs.stub.WatchStatus(pb.WatchStatusRequest(), metadata=rs.md)
            return call, call.cancel
        gen = rs.web.stream("WatchStatus", pb.WatchStatusRequest(), pb.WatchStatusResponse, timeout=None)
        return gen, gen.close

    stream, cancel = open_stream()
    first = next(iter(stream))
    assert first.WhichOneof("event") == "snapshot"
    assert first.snapshot.state == pb.SYNC_STATE_IN_SYNC and not first.snapshot.paused and first.snapshot.local.sha == sha
    _wait_subscribers(rs, 1)
    cancel()
    _wait_subscribers(rs, 0)  # the server let go of the cancelled stream

    rs.stub.Pause(pb.PauseRequest(), metadata=rs.md)  # a change while disconnected

    stream, cancel = open_stream()
    again = next(iter(stream))
    cancel()
    assert again.WhichOneof("event") == "snapshot"
    assert again.snapshot.paused and again.snapshot.state == pb.SYNC_STATE_PAUSED
    assert again.snapshot.seq > first.snapshot.seq and again.snapshot.local.sha == sha
    _wait_subscribers(rs, 0)


# --- 4. HTTP endpoints ----------------------------------------------------------
def test_metrics_readyz_and_unknown_paths(flowapp, repos, running_sidecar):
    started = time.time()
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    wait_job(rs, lambda j: j.trigger == "startup" and j.status == pb.JOB_STATUS_SUCCEEDED, "startup sync")

    text, values = metrics(rs)
    assert re.search(r'^flow_gitops_syncs_total\{result="success"\} ([0-9.e+]+)$', text, re.M), text
    assert values[("flow_gitops_syncs_total", (("result", "success"),))] >= 1
    assert "flow_gitops_sync_duration_seconds_bucket" in text
    assert values[("flow_gitops_sync_duration_seconds_count", ())] >= 1
    assert values[("flow_gitops_sync_duration_seconds_bucket", (("le", "+Inf"),))] >= 1
    last = values[("flow_gitops_last_success_timestamp_seconds", ())]
    assert started - 1 <= last <= time.time() + 1
    assert values[("flow_gitops_stream_subscribers", ())] == 0
    assert values[("flow_gitops_info", (("environment", "test"), ("mode", "pull")))] == 1
    assert CANARY not in text and rs.token not in text

    ready = requests.get(rs.http_url + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.text.strip() == "ready"
    for path in ("/nope", "/metrics/extra", "/flowgitops.v1.Other/GetStatus", "/"):
        resp = requests.get(rs.http_url + path, timeout=10)
        assert resp.status_code == 404, (path, resp.status_code)


# --- 5. CORS ----------------------------------------------------------------------
EDITOR = "http://editor.example"


def preflight(rs, origin: str) -> requests.Response:
    return requests.options(f"{rs.http_url}/{SERVICE}/GetStatus", timeout=10, headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web"})


@pytest.mark.matrix('attacks', 'a web page on another origin calling the API from a browser', 'API / CORS',
                    expect='only exactly the configured origins get CORS headers')
def test_cors_allows_exactly_the_configured_origins(flowapp, repos, running_sidecar):
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url, extra={"api": {"cors_origins": EDITOR}})

    resp = preflight(rs, EDITOR)
    assert resp.status_code == 204, resp.status_code
    assert resp.headers["access-control-allow-origin"] == EDITOR
    allowed = {h.strip().lower() for h in resp.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-grpc-web", "content-type"} <= allowed
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert "origin" in resp.headers.get("vary", "").lower()

    for other in ("http://evil.example", EDITOR + ".evil.example", "https://editor.example", EDITOR + ":8080"):
        resp = preflight(rs, other)
        assert resp.status_code == 403, (other, resp.status_code)
        assert "access-control-allow-origin" not in resp.headers, other

    # real calls from the editor carry the CORS headers (binary, text, and errors alike)
    for text in (False, True):
        client = GrpcWebClient(rs.http_url, rs.token, text=text, origin=EDITOR)
        assert client.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status.configured
        assert client.last_headers.get("access-control-allow-origin") == EDITOR, client.last_headers
        assert "grpc-status" in client.last_headers.get("access-control-expose-headers", "")
        denied = GrpcWebClient(rs.http_url, None, text=text, origin=EDITOR)
        with pytest.raises(GrpcWebError) as err:
            denied.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse)
        assert err.value.status == grpc.StatusCode.UNAUTHENTICATED.value[0]
        assert denied.last_headers.get("access-control-allow-origin") == EDITOR  # the page can read the error
        other = GrpcWebClient(rs.http_url, rs.token, text=text, origin="http://evil.example")
        other.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse)
        assert "access-control-allow-origin" not in other.last_headers


def test_without_cors_origins_no_cors_headers_are_sent(flowapp, repos, running_sidecar):
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    for text in (False, True):
        client = GrpcWebClient(rs.http_url, rs.token, text=text, origin=EDITOR)
        assert client.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status.configured
        assert not [h for h in client.last_headers if h.lower().startswith("access-control-")], client.last_headers
    resp = preflight(rs, EDITOR)
    assert resp.status_code == 403 and not [h for h in resp.headers if h.lower().startswith("access-control-")]


# --- 6. the API token file ---------------------------------------------------------
@pytest.mark.matrix('attacks', 'another local user reading the generated API token', 'API authentication',
                    expect='the token file is mode 0600 in a private data directory')
def test_api_token_file_is_private_and_holds_the_working_token(flowapp, repos, running_sidecar):
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    path = Path(rs.app.cfg.data_dir) / "api-token"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) >= 32 and token == rs.token

    md = [("authorization", f"Bearer {token}")]
    assert rs.stub.GetStatus(pb.GetStatusRequest(), metadata=md).status.configured
    assert GrpcWebClient(rs.http_url, token).unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status.configured
    with pytest.raises(grpc.RpcError) as err:
        rs.stub.GetStatus(pb.GetStatusRequest(), metadata=[("authorization", f"Bearer {token}x")])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # a restart keeps the token (clients configured with it keep working)
    rs.stop()
    again = running_sidecar(flowapp, remote.file_url)
    assert again.token == token and path.read_text().strip() == token
    assert again.stub.GetStatus(pb.GetStatusRequest(), metadata=md).status.configured
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
