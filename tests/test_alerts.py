"""Alerts (V8) posted as JSON to configured URLs: drift_detected, recovery_failed, git_sync_failed."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sidecar.core.schedule import Trigger
from tests import flowgen
from tests.constants import CANARY


@pytest.fixture
def receiver():
    got: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.got = got
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    yield srv
    srv.shutdown()


def wait(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_drift_and_git_sync_failed_alerts(flowapp, repos, make_sidecar, receiver, tmp_path):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    app = make_sidecar(flowapp, remote.file_url, extra={"alerts": {"urls": receiver.url}}, watch=True)
    assert app.store.job(app.engine.run(Trigger("force"))).status == "succeeded"
    app.deploy_watcher.start()
    time.sleep(0.3)
    flows, _ = flowapp.flows()
    flowapp.deploy([dict(n, label="edited") if n["id"] == "t1" else n for n in flows], "flows")
    assert wait(lambda: any(a["alert"] == "drift_detected" for a in receiver.got))
    alert = next(a for a in receiver.got if a["alert"] == "drift_detected")
    assert alert["environment"] == "test" and alert["local_commit"] == remote.head()
    # git_sync_failed after the push retries are spent (the service's alert hook)
    app.service.on_alert("git_sync_failed", app.board.current())
    assert wait(lambda: any(a["alert"] == "git_sync_failed" for a in receiver.got))
    assert CANARY not in json.dumps(receiver.got)


def test_recovery_failed_alert(nr_with_plugin, registry, test_catalog, repos, make_sidecar, receiver):
    from tests.test_recovery import consumer_flows, recovery_extra

    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-beta-in"]))}, "Needs fg-beta")
    extra = recovery_extra(registry, test_catalog, nr, attempts=1)
    extra["alerts"] = {"urls": receiver.url}
    app = make_sidecar(nr, remote.file_url, extra=extra)
    registry.fault = {"status": 500}
    try:
        assert app.store.job(app.engine.run(Trigger("force"))).error_code == "recovery_failed"
    finally:
        registry.fault = None
    assert wait(lambda: any(a["alert"] == "recovery_failed" for a in receiver.got))
    alert = next(a for a in receiver.got if a["alert"] == "recovery_failed")
    assert alert["reason_message"] == "Recovery retried multiple times and still failed."
    assert alert["recovery"]["failed_modules"] == ["node-red-contrib-fg-beta"]
