"""PULL mode against a real Node-RED and real Git (file://): the core scenarios."""
from __future__ import annotations

import pytest

from sidecar.core.schedule import Trigger
from tests import flowgen


def force(app):
    job_id = app.engine.run(Trigger("force"))
    return app.store.job(job_id)


def test_first_commit_is_deployed_and_running(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Add example flows\n\nThree tabs, a subflow and a config node.")
    app = make_sidecar(flowapp, remote.file_url)
    job = force(app)
    assert job.status == "succeeded", job.error_message
    flows, rev = flowapp.flows()
    assert {n["id"] for n in flows} == {n["id"] for n in flowgen.example()}
    # the function nodes really started: each counted one start
    assert flowapp.global_value("starts_t0f0") == 1
    snap = app.board.current()
    assert snap["state"] == "in_sync"
    assert snap["local"]["sha"] == sha and snap["remote"]["sha"] == sha
    assert snap["local"]["author"] == "Ada Lovelace"
    assert snap["local"]["subject"] == "Add example flows"
    assert snap["local"]["body"] == "Three tabs, a subflow and a config node."
    assert app.store.get("applied")["rev"] == rev


def test_first_configuration_starts_paused_until_resume(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Initial flows")
    app = make_sidecar(flowapp, remote.file_url, extra={"sync": {"paused": True}})
    app.start()
    assert app.service.wait_idle(10)
    snap = app.board.current()
    assert snap["state"] == "paused"
    assert snap["next_sync_at"] is None
    assert flowapp.flows()[0] == []  # nothing applied while paused
    app.service.resume()
    assert app.service.wait_idle(30)
    snap = app.board.current()
    assert snap["state"] == "in_sync", snap
    assert snap["local"]["sha"] == sha
    assert len(flowapp.flows()[0]) == len(flowgen.example())
    # the next timer check is scheduled: interval + 0–60 s jitter
    assert snap["next_sync_at"] is not None
    delay = snap["next_sync_at"] - snap["last_sync_at"]
    assert 119 <= delay <= 181
    # the pause switch persists across restarts
    assert app.store.get("paused") is False


def test_new_commit_restarts_only_the_changed_flow(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example(tabs=4, chains=2))}, "Four tabs")
    app = make_sidecar(flowapp, remote.file_url)
    assert force(app).status == "succeeded"
    starts_before = {f"t{t}f{c}": flowapp.global_value(f"starts_t{t}f{c}") for t in range(4) for c in range(2)}
    assert set(starts_before.values()) == {1}
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example(tabs=4, chains=2, variant="v2"))}, "Change tab 0")
    job = force(app)
    assert job.status == "succeeded", job.error_message
    assert job.detail["plan"]["changes"] == [{"kind": "flow", "id": "t0", "label": "Flow 0", "action": "changed"}]
    after = {k: flowapp.global_value(f"starts_{k}") for k in starts_before}
    assert after["t0f0"] == 2 and after["t0f1"] == 2  # the changed tab restarted
    assert all(after[f"t{t}f{c}"] == 1 for t in (1, 2, 3) for c in range(2))  # others untouched
    assert app.board.current()["local"]["sha"] == sha
    code = next(n for n in flowapp.flows()[0] if n["id"] == "t0f0")["func"]
    assert code.startswith("// v2")


@pytest.mark.matrix('inputs', 'an invalid flows file in a commit (real Node-RED)', '',
                    expect='the last good flows keep running; the next good commit applies')
def test_invalid_flows_keep_the_last_good_flows_and_recover(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    good = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Good flows")
    app = make_sidecar(flowapp, remote.file_url)
    assert force(app).status == "succeeded"
    _, rev_good = flowapp.flows()
    remote.commit({"flows.json": '[{"id": "a", "type": "tab"}, {"id": "a", "type": "inject"'}, "Broken JSON")
    job = force(app)
    assert job.status == "failed"
    assert job.error_code == "flows_invalid"
    assert "not valid JSON" in job.error_message and "line" in job.error_message
    snap = app.board.current()
    assert snap["state"] == "error" and snap["reason_code"] == "flows_invalid"
    assert snap["local"]["sha"] == good  # still the last good revision
    assert flowapp.flows()[1] == rev_good  # the Flow App was not touched
    remote.commit({"flows.json": '[{"id": "a", "type": "tab"}, {"id": "a", "type": "inject"}]'}, "Duplicate id")
    job = force(app)
    assert job.error_code == "flows_invalid" and "'a' appears more than once" in job.error_message
    fixed = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="fixed"))}, "Fix flows")
    job = force(app)
    assert job.status == "succeeded"
    snap = app.board.current()
    assert snap["state"] == "in_sync" and snap["local"]["sha"] == fixed and snap["reason_code"] == ""


def test_force_push_is_followed_and_reported(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "One")
    old = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Two")
    app = make_sidecar(flowapp, remote.file_url)
    assert force(app).status == "succeeded"
    new = remote.force_push_rewrite({"flows.json": flowgen.dumps(flowgen.example(variant="rewritten"))}, "Rewritten two")
    job = force(app)
    assert job.status == "succeeded"
    assert job.detail["history_rewritten"]["from"] == old and job.detail["history_rewritten"]["to"] == new
    snap = app.board.current()
    assert snap["history_rewritten"]["to"] == new
    assert snap["local"]["sha"] == new
    code = next(n for n in flowapp.flows()[0] if n["id"] == "t0f0")["func"]
    assert "rewritten" in code


def test_project_layout_flow_file_from_package_json(flowapp, repos, make_sidecar):
    remote = repos.create("project")
    package = {"name": "demo", "version": "0.0.1", "dependencies": {},
               "node-red": {"settings": {"flowFile": "my-flows.json", "credentialsFile": "my-flows_cred.json"}}}
    import json
    remote.commit({"apps/demo/package.json": json.dumps(package), "apps/demo/my-flows.json": flowgen.dumps(flowgen.example(tabs=2)),
                   "apps/demo/flows.json": "not the one"}, "Project layout")
    app = make_sidecar(flowapp, remote.file_url, extra={"repository": {"path": "apps/demo"}})
    job = force(app)
    assert job.status == "succeeded", job.error_message
    assert job.detail["flow_file"] == "apps/demo/my-flows.json"
    assert len(flowapp.flows()[0]) == len(flowgen.example(tabs=2))


@pytest.mark.matrix('attacks', "package.json flowFile '../../etc/passwd'", 'repository as data',
                    expect='refused as path_unsafe; nothing read')
def test_flow_file_outside_the_repository_is_refused(flowapp, repos, make_sidecar):
    import json
    remote = repos.create("evil")
    package = {"name": "x", "node-red": {"settings": {"flowFile": "../../etc/passwd"}}}
    remote.commit({"package.json": json.dumps(package), "flows.json": "[]"}, "Escape attempt")
    app = make_sidecar(flowapp, remote.file_url)
    job = force(app)
    assert job.status == "failed" and job.error_code == "path_unsafe"
    assert "outside the repository" in job.error_message


def test_nodered_without_admin_auth(flowapp_open, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example(tabs=2))}, "Flows")
    app = make_sidecar(flowapp_open, remote.file_url)
    job = force(app)
    assert job.status == "succeeded", job.error_message
    assert flowapp_open.global_value("starts_t1f0") == 1


def test_a_commit_without_flow_changes_records_without_deploying(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    app = make_sidecar(flowapp, remote.file_url)
    assert force(app).status == "succeeded"
    _, rev = flowapp.flows()
    sha = remote.commit({"README.md": "docs only"}, "Docs")
    job = force(app)
    assert job.status == "succeeded" and job.detail["plan"]["changes"] == []
    assert flowapp.flows()[1] == rev
    assert flowapp.global_value("starts_t0f0") == 1  # nothing restarted
    assert app.board.current()["local"]["sha"] == sha


def test_nodered_sees_the_same_secrets_as_the_sidecar(tmp_path, nr_token):
    """deploy/node-red/settings.js exposes the sidecar's secret directory as global.SECRETS."""
    from tests.servers.nodered import NodeRedServer

    secrets = tmp_path / "secrets"
    (secrets / "git").mkdir(parents=True)
    (secrets / "git" / "token").write_text("t0k3n\n")
    (secrets / "..data").mkdir()  # Kubernetes' bookkeeping entries are skipped
    with NodeRedServer(tmp_path / "nr", admin_token=nr_token, secrets_dir=secrets) as nr:
        assert nr.global_value("SECRETS.git.token") == "t0k3n"
