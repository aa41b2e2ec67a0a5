"""The gRPC contract served by both front ends: native grpcio and gRPC-web (binary, text)."""
from __future__ import annotations

import threading
import time

import grpc
import pytest
import requests
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sidecar.api import grpc_front, web_front
from sidecar.api.core import GitOpsApi
from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from tests import flowgen
from tests.grpcweb import GrpcWebError

SERVICE = pb.DESCRIPTOR.services_by_name["GitOpsService"]


def test_every_rpc_in_the_contract_is_implemented_by_both_front_ends():
    names = [m.name for m in SERVICE.methods]
    assert len(names) >= 14
    for name in names:
        assert callable(getattr(GitOpsApi, name)), name
    servicer = grpc_front.make_servicer(GitOpsApi.__new__(GitOpsApi))
    connect = web_front.make_service(GitOpsApi.__new__(GitOpsApi))
    for m in SERVICE.methods:
        assert m.name in type(servicer).__dict__, f"native gRPC lacks {m.name}"
        assert web_front.snake(m.name) in type(connect).__dict__, f"gRPC-web lacks {m.name}"


def make_repo(repos, variant=""):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant=variant))}, "Example flows\n\nWith a body.")
    return remote, sha


def wait_state(rs, state, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rs.stub.GetStatus(pb.GetStatusRequest(), metadata=rs.md).status
        if st.state == state and not st.phase:
            return st
        time.sleep(0.05)
    raise AssertionError(f"state {pb.SyncState.Name(state)} not reached; last {st}")


def test_native_and_grpc_web_agree_on_status(flowapp, repos, running_sidecar):
    remote, sha = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    st = wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    assert st.local.sha == sha and st.local.body == "With a body." and st.interval_seconds == 120
    for client in (rs.web, rs.web_text):
        web = client.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status
        assert web.state == pb.SYNC_STATE_IN_SYNC and web.local.sha == sha and web.seq == st.seq


@pytest.mark.matrix('attacks', 'calls without a token or with a wrong one, on native gRPC and gRPC-web (binary and text), unary and streaming', 'API authentication',
                    expect='UNAUTHENTICATED on every front end; only the health service and /healthz /readyz are open')
def test_auth_is_required_on_both_front_ends_but_health_is_open(flowapp, repos, running_sidecar):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from tests.grpcweb import GrpcWebClient

    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    for md in ([], [("authorization", "Bearer wrong")], [("authorization", rs.token)]):
        with pytest.raises(grpc.RpcError) as err:
            rs.stub.GetStatus(pb.GetStatusRequest(), metadata=md)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            next(iter(rs.stub.WatchStatus(pb.WatchStatusRequest(), metadata=md)))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for token in (None, "wrong"):
        for text in (False, True):
            with pytest.raises(GrpcWebError) as err:
                GrpcWebClient(rs.http_url, token, text=text).unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse)
            assert err.value.status == grpc.StatusCode.UNAUTHENTICATED.value[0]
    health = health_pb2_grpc.HealthStub(rs.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service="flowgitops.v1.GitOpsService")).status == health_pb2.HealthCheckResponse.SERVING
    assert requests.get(rs.http_url + "/healthz").status_code == 200
    assert requests.get(rs.http_url + "/readyz").status_code == 200


def _collect(iterator, out, stop_after=None):
    try:
        for msg in iterator:
            out.append(msg)
            if stop_after and stop_after(out):
                return
    except Exception as exc:  # the stream's end is part of what tests look at
        out.append(exc)


def test_watch_status_snapshot_then_changes_then_clean_end(flowapp, repos, running_sidecar):
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url, heartbeat=0.5)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    native, web, text = [], [], []
    call = rs.stub.WatchStatus(pb.WatchStatusRequest(), metadata=rs.md)
    threads = [threading.Thread(target=_collect, args=(call, native), daemon=True),
               threading.Thread(target=_collect, args=(rs.web.stream("WatchStatus", pb.WatchStatusRequest(), pb.WatchStatusResponse, timeout=None), web), daemon=True),
               threading.Thread(target=_collect, args=(rs.web_text.stream("WatchStatus", pb.WatchStatusRequest(), pb.WatchStatusResponse, timeout=None), text), daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while not (native and web and text) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    assert rs.stub.ForcePull(pb.ForcePullRequest(), metadata=rs.md).result in ("queued", "coalesced")
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            any(m.WhichOneof("event") == "status" and m.status.local.sha == second for m in s if isinstance(m, pb.WatchStatusResponse))
            for s in (native, web, text)):
        time.sleep(0.05)
    time.sleep(0.8)  # at least one heartbeat
    rs.stop()  # server shutdown ends every stream cleanly
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    for name, got in (("native", native), ("grpc-web", web), ("grpc-web-text", text)):
        msgs = [m for m in got if isinstance(m, pb.WatchStatusResponse)]
        errors = [m for m in got if not isinstance(m, pb.WatchStatusResponse)]
        assert msgs[0].WhichOneof("event") == "snapshot", name
        assert msgs[0].snapshot.local.sha == first, (name, msgs[0])
        kinds = {m.WhichOneof("event") for m in msgs}
        assert {"status", "job", "heartbeat"} <= kinds, (name, kinds)
        phases = [m.status.phase for m in msgs if m.WhichOneof("event") == "status"]
        assert "deploy" in phases, (name, phases)
        jobs = [m.job for m in msgs if m.WhichOneof("event") == "job"]
        assert any(j.status == pb.JOB_STATUS_SUCCEEDED and j.to_commit == second and j.trigger == "force" for j in jobs), name
        assert errors == [], (name, errors)  # ended cleanly (status OK), not broken


def test_save_config_is_refused_while_active_and_applies_while_paused(flowapp, repos, running_sidecar):
    remote, _ = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)
    wait_state(rs, pb.SYNC_STATE_IN_SYNC)
    cfg = rs.stub.GetConfig(pb.GetConfigRequest(), metadata=rs.md)
    assert cfg.locked and cfg.config.repository.url == remote.file_url
    new = pb.Config()
    new.CopyFrom(cfg.config)
    new.sync.interval = 300
    with pytest.raises(grpc.RpcError) as err:
        rs.stub.SaveConfig(pb.SaveConfigRequest(config=new), metadata=rs.md)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "pause" in err.value.details()
    with pytest.raises(GrpcWebError) as werr:
        rs.web.unary("SaveConfig", pb.SaveConfigRequest(config=new), pb.SaveConfigResponse)
    assert werr.value.status == grpc.StatusCode.FAILED_PRECONDITION.value[0]

    paused = rs.stub.Pause(pb.PauseRequest(), metadata=rs.md).status
    assert paused.state == pb.SYNC_STATE_PAUSED
    saved = rs.stub.SaveConfig(pb.SaveConfigRequest(config=new), metadata=rs.md)
    assert saved.config.sync.interval == 300 and saved.remote_head == remote.head() and saved.connect_error_code == ""
    status = rs.web_text.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status
    assert status.interval_seconds == 300 and status.state == pb.SYNC_STATE_PAUSED

    # invalid: INVALID_ARGUMENT with per-field violations, on both front ends
    bad = pb.Config()
    bad.CopyFrom(new)
    bad.repository.protocol, bad.repository.url, bad.sync.interval = "ssh", "https://x.example/y.git", 10
    bad.repository.password = "plaintext-password"
    with pytest.raises(grpc.RpcError) as err:
        rs.stub.SaveConfig(pb.SaveConfigRequest(config=bad), metadata=rs.md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = rpc_status.from_call(err.value).details[0]
    br = error_details_pb2.BadRequest()
    detail.Unpack(br)
    fields = {v.field: v.description for v in br.field_violations}
    assert fields["repository.url"].startswith("Protocol Mismatch")
    assert "sync.interval" in fields and "repository.password" in fields
    assert "plaintext-password" not in str(err.value)
    with pytest.raises(GrpcWebError) as werr:
        rs.web.unary("SaveConfig", pb.SaveConfigRequest(config=bad), pb.SaveConfigResponse)
    assert werr.value.status == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    import base64
    from google.rpc import status_pb2
    raw = werr.value.trailers["grpc-status-details-bin"]
    st = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    br = error_details_pb2.BadRequest()
    st.details[0].Unpack(br)
    assert st.code == 3 and {v.field for v in br.field_violations} >= {"repository.url", "sync.interval"}
    v = rs.web.unary("ValidateConfig", pb.ValidateConfigRequest(config=bad), pb.ValidateConfigResponse)
    assert not v.valid and {x.field for x in v.violations} >= {"repository.url", "sync.interval"}
