"""Dependency recovery against a real npm registry on loopback, real npm and a real Node-RED."""
from __future__ import annotations

import pytest

import json
import time
from pathlib import Path


from sidecar.core.catalog import Catalog
from sidecar.core.schedule import Trigger
from tests import flowgen

ROOT = Path(__file__).resolve().parents[1]


def consumer_flows(types: list[str], tag: str = "") -> list[dict]:
    """inject(once) → each type in a chain → function storing the result in global `seen`."""
    nodes = [{"id": "rt", "type": "tab", "label": "Recovered"}]
    chain = [f"n{i}" for i in range(len(types))]
    nodes.append({"id": "inj", "type": "inject", "z": "rt", "once": True, "onceDelay": 0.1, "repeat": "", "props": [{"p": "payload"}],
                  "payload": tag or "hello", "payloadType": "str", "x": 100, "y": 100, "wires": [[chain[0]] if chain else ["store"]]})
    for i, t in enumerate(types):
        nxt = chain[i + 1] if i + 1 < len(chain) else "store"
        nodes.append({"id": chain[i], "type": t, "z": "rt", "name": "", "x": 200 + 100 * i, "y": 100, "wires": [[nxt]]})
    nodes.append({"id": "store", "type": "function", "z": "rt", "func": "global.set('seen', msg.payload); return msg;",
                  "outputs": 1, "x": 600, "y": 100, "wires": [[]]})
    return nodes


def recovery_extra(registry, test_catalog, nr, **deps):
    return {"flow_app": {"user_dir": str(nr.user_dir)},
            "dependencies": {"registry": registry.url, "catalog": str(test_catalog), "retry_backoff": 0.2, **deps}}


def wait_value(nr, key, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = nr.global_value(key)
        if v is not None:
            return v
        time.sleep(0.05)
    return None


def run(app, kind="force"):
    return app.store.job(app.engine.run(Trigger(kind)))


def test_a_new_type_is_installed_from_the_catalog_loaded_and_running(nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": json.dumps(consumer_flows(["fg-alpha", "fg-delta"]))}, "Use two new node types")
    app = make_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    progress = []
    app.board.subscribe(lambda s: s["progress"] and progress.append((s["state"], s["progress"])))
    registry.requests.clear()
    job = run(app)
    assert job.status == "succeeded", (job.error_code, job.error_message, job.detail.get("install_log"))
    assert {i["module"] for i in job.detail["dependencies"]["installs"]} == {"node-red-contrib-fg-alpha", "@fg-test/node-red-delta"}
    assert job.detail["installed"] == ["@fg-test/node-red-delta@1.0.0", "node-red-contrib-fg-alpha@1.1.0"]
    # progress with the wrench state, "installing k of n"
    assert ("recovering", "installing 1 of 2: @fg-test/node-red-delta") in progress
    assert ("recovering", "installing 2 of 2: node-red-contrib-fg-alpha") in progress
    # installed as the palette manager does, from our registry, and loaded without a restart
    pkg = json.loads((nr.user_dir / "package.json").read_text())
    assert pkg["dependencies"]["node-red-contrib-fg-alpha"] == "~1.1.0"
    assert registry.requests.count("GET", "node-red-contrib-fg-alpha") >= 1
    assert "already installed; loading it without npm" in nr.log_path.read_text()
    seen = wait_value(nr, "seen")
    assert seen == {"from": "fg-delta", "payload": {"from": "fg-alpha", "payload": "hello"}}
    snap = app.board.current()
    assert snap["state"] == "in_sync" and snap["local"]["sha"] == sha
    assert snap["recovery"]["installed"] == job.detail["installed"]
    # the repository's package.json is never written in PULL mode (D6)
    assert remote.head() == sha


def test_package_json_upgrade_is_installed_and_reported_as_restart_required(nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-alpha"])),
                   "package.json": json.dumps({"name": "x", "dependencies": {"node-red-contrib-fg-alpha": "1.0.0"}})}, "Pin 1.0.0")
    app = make_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    job = run(app)
    assert job.status == "succeeded", job.error_message
    assert job.detail["installed"] == ["node-red-contrib-fg-alpha@1.0.0"]
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-alpha"], tag="v2")),
                   "package.json": json.dumps({"name": "x", "dependencies": {"node-red-contrib-fg-alpha": "~1.1.0"}})}, "Want ~1.1.0")
    job = run(app)
    assert job.status == "succeeded", job.error_message
    installs = job.detail["dependencies"]["installs"]
    assert installs == [{"module": "node-red-contrib-fg-alpha", "spec": "~1.1.0", "reason": "package.json",
                         "installed": "1.0.0", "restart_required": True}]
    assert job.detail["restart_required"] == ["node-red-contrib-fg-alpha@1.1.0"]
    assert json.loads((nr.user_dir / "node_modules" / "node-red-contrib-fg-alpha" / "package.json").read_text())["version"] == "1.1.0"
    assert app.board.current()["recovery"]["restart_required"] == ["node-red-contrib-fg-alpha@1.1.0"]
    # the running Flow App still uses the loaded 1.0.0 until a restart — reported, never hidden
    assert app.flowapp.inventory()[1]["node-red-contrib-fg-alpha"] == "1.0.0"


def test_ambiguous_type_follows_package_json_then_mapping_then_downloads(nr_with_plugin, registry, test_catalog, repos, make_sidecar, tmp_path):
    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-shared"])),
                   "package.json": json.dumps({"name": "x", "dependencies": {"node-red-contrib-fg-shared-b": "^1.0.0"}})}, "Shared, b named")
    app = make_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    job = run(app)
    assert job.status == "succeeded", job.error_message
    assert job.detail["installed"] == ["node-red-contrib-fg-shared-b@1.0.0"]
    assert job.detail["dependencies"]["ambiguous"] == {"fg-shared": ["node-red-contrib-fg-shared-a", "node-red-contrib-fg-shared-b"]}
    # the rule without package.json, checked on the catalog itself
    cat = Catalog.from_json(json.loads(test_catalog.read_text()))
    assert cat.resolve(["fg-shared"]).by_type == {"fg-shared": "node-red-contrib-fg-shared-a"}  # tie: name order
    cat.modules["node-red-contrib-fg-shared-b"].downloads = 500
    cat._index = None
    assert cat.resolve(["fg-shared"]).by_type == {"fg-shared": "node-red-contrib-fg-shared-b"}  # most downloaded
    assert cat.resolve(["fg-shared"], mapping={"fg-shared": "node-red-contrib-fg-shared-a"}).reason == {"fg-shared": "mapping"}


def test_unmapped_type_under_hold_keeps_the_old_flows(nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    good = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Good")
    app = make_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    assert run(app).status == "succeeded"
    _, rev = nr.flows()
    remote.commit({"flows.json": json.dumps(consumer_flows(["totally-unknown-type", "fg-gamma"]))}, "Unknown type")
    job = run(app)
    assert job.status == "failed" and job.error_code == "node_types_missing"
    assert "totally-unknown-type" in job.error_message and "policy: hold" in job.error_message
    assert nr.flows()[1] == rev  # not deployed; the last good flows still run
    assert nr.global_value("starts_t0f0") == 1
    snap = app.board.current()
    assert snap["state"] == "error" and snap["local"]["sha"] == good
    assert snap["recovery"]["unresolved_types"] == ["totally-unknown-type"]
    assert not (nr.user_dir / "node_modules" / "node-red-contrib-fg-gamma").exists()  # nothing half-done


def test_unmapped_type_under_deploy_policy_is_deployed_and_reported(nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-gamma"]) + [
        {"id": "unk", "type": "totally-unknown-type", "z": "rt", "x": 1, "y": 1, "wires": []}])}, "Unknown type, deploy anyway")
    extra = recovery_extra(registry, test_catalog, nr)
    extra["sync"] = {"dependency_policy": "deploy"}
    app = make_sidecar(nr, remote.file_url, extra=extra)
    job = run(app)
    assert job.status == "succeeded", job.error_message
    assert job.detail["unknown_types"] == ["totally-unknown-type"]
    assert job.detail["dependencies"]["unresolved_types"] == ["totally-unknown-type"]
    assert job.detail["installed"] == ["node-red-contrib-fg-gamma@0.3.0"]  # what could be resolved was installed
    flows, _ = nr.flows()
    assert any(n["type"] == "totally-unknown-type" for n in flows)  # deployed anyway: an unknown node in the editor


def test_registry_errors_three_attempts_then_the_exact_message_then_recovers(nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Good")
    app = make_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    assert run(app).status == "succeeded"
    _, rev = nr.flows()
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-beta-in"]))}, "Needs fg-beta")
    registry.fault = {"status": 500}
    try:
        t0 = time.monotonic()
        job = run(app)
        elapsed = time.monotonic() - t0
    finally:
        registry.fault = None
    assert job.status == "failed" and job.error_code == "recovery_failed"
    assert job.error_message == "Recovery retried multiple times and still failed."
    attempts = [line for line in job.detail["install_log"] if line["target"] == "node-red-contrib-fg-beta"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3] and all(a["rc"] != 0 for a in attempts)
    assert job.detail["recovery_failed"][0]["reason"].startswith("E500")
    assert elapsed < 20
    snap = app.board.current()
    assert snap["reason_message"] == "Recovery retried multiple times and still failed."
    assert snap["recovery"]["failed_modules"] == ["node-red-contrib-fg-beta"]
    assert snap["recovery"]["unresolved_types"] == ["fg-beta-in"]
    assert nr.flows()[1] == rev  # nothing else broken
    job = run(app)  # the registry is back: the next sync recovers
    assert job.status == "succeeded", job.error_message
    assert app.board.current()["recovery"]["failed_modules"] == []


@pytest.mark.matrix('attacks', 'a .npmrc in the repository pointing npm at another registry', 'npm',
                    expect='ignored: modules come from the configured registry only')
def test_a_hostile_npmrc_in_the_repository_is_ignored(nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-gamma"])),
                   ".npmrc": "registry=http://127.0.0.1:9/\n@fg-test:registry=http://127.0.0.1:9/\n//127.0.0.1:9/:_authToken=stolen\n",
                   "package.json": json.dumps({"name": "x", "dependencies": {"@fg-test/node-red-delta": "1.0.0"}})}, "Hostile npmrc")
    # even an .npmrc that sits in the userDir itself cannot redirect our installs
    (nr.user_dir / ".npmrc").write_text("registry=http://127.0.0.1:9/\n@fg-test:registry=http://127.0.0.1:9/\n")
    app = make_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    registry.requests.clear()
    job = run(app)
    assert job.status == "succeeded", (job.error_message, job.detail.get("install_log"))
    assert set(job.detail["installed"]) == {"node-red-contrib-fg-gamma@0.3.0", "@fg-test/node-red-delta@1.0.0"}
    assert registry.requests.count("GET", "node-red-delta") >= 1
    assert not (nr.user_dir / ".npmrc").read_text().count("stolen")


def test_catalog_import_of_the_community_excerpt_handles_junk_and_ambiguity(tmp_path):
    import subprocess
    import sys

    excerpt = ROOT.parent / "shared" / "data" / "catalogue-excerpt.json"
    if not excerpt.exists():
        excerpt = Path("/work/shared/data/catalogue-excerpt.json")
    out = tmp_path / "cat.json"
    res = subprocess.run([sys.executable, "-m", "sidecar", "catalog", "import", str(excerpt), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    raw = json.loads(excerpt.read_text())["modules"]
    with_types = [m for m in raw if any(isinstance(t, str) and not t.startswith("__") for t in (m.get("types") or []))]
    assert len(data["modules"]) == len({m["id"] for m in with_types})  # empty type lists are ignored
    assert not any(t.startswith("__") for m in data["modules"].values() for t in m["types"])  # junk dropped
    cat = Catalog.from_json(data)
    claims: dict[str, list[dict]] = {}
    for m in raw:
        for t in m.get("types") or []:
            if isinstance(t, str) and not t.startswith("__"):
                claims.setdefault(t, []).append(m)
    shared = {t: ms for t, ms in claims.items() if len({m["id"] for m in ms}) > 1}
    assert shared, "the excerpt has types several modules claim"
    for t, ms in shared.items():
        best = max(ms, key=lambda m: ((m.get("downloads") or {}).get("week", 0), [-ord(c) for c in m["id"]]))
        assert cat.resolve([t]).by_type[t] == best["id"], t


def test_recovery_over_the_api_stream_progress_and_get_recovery(nr_with_plugin, registry, test_catalog, repos, running_sidecar):
    import threading

    import requests

    from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb

    nr = nr_with_plugin
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Good")
    rs = running_sidecar(nr, remote.file_url, extra=recovery_extra(registry, test_catalog, nr))
    rs.app.service.wait_idle(30)
    events: list = []
    call = rs.stub.WatchStatus(pb.WatchStatusRequest(), metadata=rs.md)

    def collect():
        try:
            for m in call:
                events.append(m)
        except Exception:
            pass

    t = threading.Thread(target=collect, daemon=True)
    t.start()
    remote.commit({"flows.json": json.dumps(consumer_flows(["fg-beta-out", "fg-gamma", "fg-epsilon"]))}, "Three new packages")
    t0 = time.monotonic()
    rs.stub.ForcePull(pb.ForcePullRequest(), metadata=rs.md)
    seen = wait_value(nr, "seen", timeout=60)
    commit_to_running = time.monotonic() - t0
    assert seen is not None and seen["from"] == "fg-epsilon"
    rs.app.service.wait_idle(30)
    call.cancel()
    t.join(5)
    states = [(m.status.state, m.status.progress) for m in events if m.WhichOneof("event") == "status"]
    assert (pb.SYNC_STATE_RECOVERING, "installing 1 of 3: node-red-contrib-fg-beta") in states
    assert (pb.SYNC_STATE_RECOVERING, "installing 3 of 3: node-red-contrib-fg-gamma") in states
    rec = rs.stub.GetRecovery(pb.GetRecoveryRequest(), metadata=rs.md).recovery
    assert sorted(rec.installed) == ["node-red-contrib-fg-beta@2.0.0", "node-red-contrib-fg-epsilon@1.0.0", "node-red-contrib-fg-gamma@0.3.0"]
    assert list(rec.failed_modules) == [] and list(rec.unresolved_types) == []
    metrics = requests.get(rs.http_url + "/metrics").text
    assert 'flow_gitops_installs_total{result="success"} 3.0' in metrics
    print(f"\ncommit → running with three new packages: {commit_to_running:.2f} s")
