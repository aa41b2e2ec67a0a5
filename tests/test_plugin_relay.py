"""The plugin's runtime half relays gRPC-web to the sidecar behind Node-RED's admin auth."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest
import requests

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from tests import flowgen
from tests.grpcweb import GrpcWebClient, GrpcWebError
from tests.npmpkgs import init_user_dir
from tests.servers.common import free_port
from tests.servers.nodered import NodeRedServer

ROOT = Path(__file__).resolve().parents[1]
SIDECAR_TOKEN = "sidecar-api-token-" + "x" * 20


def plugin_user_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A Node-RED userDir with this checkout's plugin installed, and the sidecar's API token file."""
    data = tmp_path / "data"
    data.mkdir()
    token_file = data / "api-token"
    token_file.write_text(SIDECAR_TOKEN + "\n")
    user_dir = init_user_dir(tmp_path / "userdir")
    (user_dir / "node_modules").mkdir(exist_ok=True)
    os.symlink(ROOT / "editor_plugin", user_dir / "node_modules" / "node-red-contrib-flow-gitops")
    return user_dir, token_file


@pytest.fixture
def relay_setup(tmp_path, nr_token, repos, running_sidecar):
    """A Node-RED with the plugin, synced by a sidecar the plugin relays to."""
    http_port = free_port()
    user_dir, token_file = plugin_user_dir(tmp_path)
    reader = "nr-reader-" + "r" * 16
    nr = NodeRedServer(user_dir, admin_token=nr_token, reader_token=reader,
                       env={"FLOW_GITOPS_URL": f"http://127.0.0.1:{http_port}", "FLOW_GITOPS_TOKEN_FILE": str(token_file)}).start()
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    rs = running_sidecar(nr, remote.file_url, extra={"api": {"http_listen": f"127.0.0.1:{http_port}"}})
    rs.app.service.wait_idle(30)
    yield nr, rs, reader, remote
    nr.stop()


@pytest.mark.matrix('attacks', 'a read-only or logged-out editor user calling write RPCs through the plugin routes', 'plugin relay',
                    expect="401 without gitops.write or without a login; the sidecar's token never reaches the browser")
def test_relay_serves_readers_and_writers_by_permission(relay_setup, nr_token):
    nr, rs, reader, remote = relay_setup
    base = nr.url + "/gitops/rpc"
    admin = GrpcWebClient(base, nr_token)
    st = admin.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status
    assert st.state == pb.SYNC_STATE_IN_SYNC and st.local.sha == remote.head()
    assert SIDECAR_TOKEN not in str(admin.last_headers)
    # a read-only editor user can watch but not change anything
    ro = GrpcWebClient(base, reader)
    assert ro.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status.state == pb.SYNC_STATE_IN_SYNC
    r = requests.post(f"{base}/flowgitops.v1.GitOpsService/ForcePull", headers={"authorization": f"Bearer {reader}",
                      "content-type": "application/grpc-web+proto"}, data=b"\x00\x00\x00\x00\x00")
    assert r.status_code == 401
    # every RPC that is not a read is refused to the read-only user, and reads are only reads
    relay_js = (ROOT / "editor_plugin" / "gitops.js").read_text()
    reads = set(re.findall(r'"(\w+)"', re.search(r"const READ = new Set\(\[(.*?)\]\)", relay_js, re.S).group(1)))
    assert reads and all(n.startswith(("Get", "Watch", "List", "Validate", "Suggest")) for n in reads)
    assert "GetWebhook" not in reads  # it can reveal the generated webhook secret once
    paused_before, jobs_before = rs.app.board.facts().paused, len(rs.app.store.jobs(100))
    for method in pb.DESCRIPTOR.services_by_name["GitOpsService"].methods:
        if method.name in reads:
            continue
        r = requests.post(f"{base}/flowgitops.v1.GitOpsService/{method.name}", headers={
            "authorization": f"Bearer {reader}", "content-type": "application/grpc-web+proto"}, data=b"\x00\x00\x00\x00\x00")
        assert r.status_code == 401, method.name
    assert rs.app.board.facts().paused == paused_before and len(rs.app.store.jobs(100)) == jobs_before  # nothing changed
    r = requests.post(f"{base}/flowgitops.v1.GitOpsService/GetStatus", headers={"content-type": "application/grpc-web+proto"},
                      data=b"\x00\x00\x00\x00\x00")
    assert r.status_code == 401  # no Node-RED login, no relay
    r = requests.post(f"{base}/flowgitops.v1.GitOpsService/Nonsense", headers={"authorization": f"Bearer {nr_token}"}, data=b"")
    assert r.status_code == 404
    # the browser's Node-RED token is not the sidecar's: calling the sidecar directly with it fails
    with pytest.raises(GrpcWebError) as err:
        GrpcWebClient(rs.http_url, nr_token).unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse)
    assert err.value.status == 16
    assert admin.unary("ForcePull", pb.ForcePullRequest(), pb.ForcePullResponse).result in ("queued", "coalesced")
    settings = requests.get(nr.url + "/gitops/settings", headers={"authorization": f"Bearer {reader}"}).json()
    assert settings == {"sidecar": rs.http_url, "tokenConfigured": True}


def _drain(stream, got: list) -> None:
    try:
        for m in stream:
            got.append(m)
    except requests.exceptions.RequestException:
        pass  # the servers stop at teardown with the stream still open; what it carried is checked
    except Exception as exc:  # urllib3's ProtocolError when the stream is cut at teardown
        if "ended prematurely" not in str(exc):
            raise


def test_relay_streams_watch_status_unbuffered(relay_setup, nr_token):
    nr, rs, reader, remote = relay_setup
    for text in (False, True):
        client = GrpcWebClient(nr.url + "/gitops/rpc", reader, text=text)
        got: list = []
        stream = client.stream("WatchStatus", pb.WatchStatusRequest(), pb.WatchStatusResponse, timeout=None)
        t = threading.Thread(target=_drain, args=(stream, got), daemon=True)
        t.start()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got and got[0].WhichOneof("event") == "snapshot"
        t0 = time.monotonic()
        rs.stub.Pause(pb.PauseRequest(), metadata=rs.md)
        while time.monotonic() - t0 < 5 and not any(m.WhichOneof("event") == "status" and m.status.paused for m in got):
            time.sleep(0.01)
        delay = time.monotonic() - t0
        assert any(m.WhichOneof("event") == "status" and m.status.paused for m in got), "the change did not come through the relay"
        assert delay < 1.0  # streamed, not buffered until the end
        rs.stub.Resume(pb.ResumeRequest(), metadata=rs.md)


def test_relay_reports_an_unreachable_sidecar_as_unavailable(tmp_path, nr_token):
    user_dir, _ = plugin_user_dir(tmp_path)
    with NodeRedServer(user_dir, admin_token=nr_token, env={"FLOW_GITOPS_URL": f"http://127.0.0.1:{free_port()}"}) as nr:
        with pytest.raises(GrpcWebError) as err:
            GrpcWebClient(nr.url + "/gitops/rpc", nr_token).unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse)
        assert err.value.status == 14 and "unreachable" in err.value.message


@pytest.mark.matrix("faults", "plugin relay → sidecar", "reset mid-transfer",
                    expect="a WatchStatus stream cut between the relay and the sidecar ends in the browser with a "
                           "gRPC-web trailer 14 UNAVAILABLE (binary and text), not a body it cannot finish")
def test_a_stream_cut_between_relay_and_sidecar_ends_with_unavailable(tmp_path, nr_token, repos, running_sidecar):
    """The browser's stream ends with a gRPC-web trailer (14 UNAVAILABLE) when the relay loses the
    sidecar mid-stream, instead of a response the client cannot finish."""
    from tests.servers.faultproxy import FaultProxy

    http_port = free_port()
    user_dir, token_file = plugin_user_dir(tmp_path)
    with FaultProxy("127.0.0.1", http_port) as proxy:
        nr = NodeRedServer(user_dir, admin_token=nr_token, env={"FLOW_GITOPS_URL": proxy.url_for("http"),
                                                                "FLOW_GITOPS_TOKEN_FILE": str(token_file)}).start()
        try:
            remote = repos.create("flows")
            remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
            running_sidecar(nr, remote.file_url, extra={"api": {"http_listen": f"127.0.0.1:{http_port}"}})
            for text in (False, True):
                proxy.mode = None
                stream = GrpcWebClient(nr.url + "/gitops/rpc", nr_token, text=text).stream(
                    "WatchStatus", pb.WatchStatusRequest(), pb.WatchStatusResponse, timeout=30)
                assert next(stream).WhichOneof("event") == "snapshot"
                proxy.set_mode("reset_after", after_bytes=0)  # the relay's connection to the sidecar is reset
                with pytest.raises(GrpcWebError) as err:
                    for _ in stream:
                        pass
                assert err.value.status == 14 and "connection to the GitOps sidecar was lost" in err.value.message
        finally:
            nr.stop()
