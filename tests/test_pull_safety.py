"""Drift, approval, and a Flow App that is down while applying."""
from __future__ import annotations

import time

import pytest

from sidecar.core.schedule import Trigger
from tests import flowgen
from tests.servers.nodered import NodeRedServer
from tests.waiting import wait_for


def run(app, kind="force"):
    return app.store.job(app.engine.run(Trigger(kind)))


def edit_in_editor(flowapp, label="Edited by hand"):
    flows, _ = flowapp.flows()
    edited = [dict(n, label=label) if n["id"] == "t1" else n for n in flows]
    edited.append({"id": "hand1", "type": "comment", "z": "t1", "name": "added in the editor", "x": 100, "y": 300, "wires": []})
    return flowapp.deploy(edited, "flows"), edited


def test_drift_is_detected_backed_up_then_overwritten(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    app = make_sidecar(flowapp, remote.file_url, watch=True)
    assert run(app).status == "succeeded"
    app.deploy_watcher.start()
    time.sleep(0.3)  # the watcher connects and sees the retained (our) revision
    assert app.board.current()["drift"] is None

    rev_edit, edited = edit_in_editor(flowapp)
    drift = wait_for(lambda: app.board.current()["drift"], what="drift to be reported")
    assert drift["rev"] == rev_edit

    job = run(app, "timer")  # drift makes the timer sync do real work
    assert job.status == "succeeded", job.error_message
    backup_id = job.detail["drift_backup"]
    saved = app.store.backup_flows(backup_id)
    assert any(n["id"] == "hand1" for n in saved)  # the person's edit is kept
    assert app.store.backups()[0]["reason"] == "drift"
    flows, _ = flowapp.flows()
    assert not any(n["id"] == "hand1" for n in flows)  # the repository won
    snap = app.board.current()
    assert snap["drift"] is None and snap["state"] == "in_sync" and snap["local"]["sha"] == sha


def test_approval_gate_holds_new_revisions_until_approved(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
    app = make_sidecar(flowapp, remote.file_url, extra={"sync": {"require_approval": True}})
    job = run(app, "timer")
    assert job.status == "pending_approval"
    snap = app.board.current()
    assert snap["state"] == "pending_approval" and snap["pending_commit"] == first
    assert flowapp.flows()[0] == []  # nothing deployed yet
    # asking again does not create another request
    assert run(app, "timer").status == "noop"
    assert len(app.store.pending_jobs()) == 1

    job = run(app, "approve")
    assert job.status == "succeeded", job.error_message
    assert app.board.current()["state"] == "in_sync"
    assert len(flowapp.flows()[0]) == len(flowgen.example())
    assert app.store.job(1).status == "approved"

    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    assert run(app, "timer").status == "pending_approval"
    assert app.engine.reject() is not None
    assert app.board.current()["pending_commit"] == ""
    assert run(app, "timer").status == "noop"  # a rejected revision is not asked again
    assert app.board.current()["local"]["sha"] == first
    assert app.board.current()["remote"]["sha"] == second
    assert app.board.current()["behind"] is True


def test_drift_under_approval_is_held_not_overwritten(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    app = make_sidecar(flowapp, remote.file_url, extra={"sync": {"require_approval": True}}, watch=True)
    assert run(app, "timer").status == "pending_approval"
    assert run(app, "approve").status == "succeeded"
    app.deploy_watcher.start()
    time.sleep(0.3)
    edit_in_editor(flowapp)
    wait_for(lambda: app.board.current()["drift"], what="drift")
    job = run(app, "timer")
    assert job.status == "pending_approval"
    assert any(n["id"] == "hand1" for n in flowapp.flows()[0])  # the edit still runs
    assert app.store.backups(), "a backup is taken as soon as drift is seen by a sync"
    assert run(app, "approve").status == "succeeded"
    assert not any(n["id"] == "hand1" for n in flowapp.flows()[0])


@pytest.fixture
def own_nodered(tmp_path, nr_token):
    srv = NodeRedServer(tmp_path / "nr", admin_token=nr_token).start()
    yield srv
    srv.stop()


@pytest.mark.matrix('faults', 'Node-RED (the Flow App)', 'restart mid-deploy',
                    expect='the deploy is retried when it is back; nothing partial runs')
def test_flow_app_down_during_apply_is_retried_and_nothing_is_partial(own_nodered, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
    app = make_sidecar(own_nodered, remote.file_url)
    assert run(app).status == "succeeded"
    old_flows, old_rev = own_nodered.flows()
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(tabs=5, variant="two"))}, "Second")
    own_nodered.stop()
    app.start()  # the loop: a startup sync fails, then a retry is scheduled with backoff
    app.service.trigger("force")
    assert app.service.wait_idle(30)
    snap = wait_for(lambda: (s := app.board.current())["state"] == "error" and s, what="error state")
    assert snap["reason_code"] == "nodered_unreachable"
    assert "unreachable" in snap["reason_message"]
    assert snap["local"]["sha"] != second
    # backoff: the next attempt is 30 s after a first failure, not a full interval
    delay = snap["next_sync_at"] - snap["last_sync_at"]
    assert 25 <= delay <= 65, delay
    own_nodered.start()
    flows, rev = own_nodered.flows()
    assert rev == old_rev  # the Flow App came back with the old flows, whole
    app.service.trigger("force")
    assert app.service.wait_idle(30)
    snap = app.board.current()
    assert snap["state"] == "in_sync" and snap["local"]["sha"] == second
    assert len(own_nodered.flows()[0]) == len(flowgen.example(tabs=5))
    jobs = [j.status for j in app.store.jobs()]
    assert "failed" in jobs and jobs[0] == "succeeded"


def test_failed_job_can_be_retried_and_attempts_are_counted(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": "{not json"}, "Broken")
    app = make_sidecar(flowapp, remote.file_url)
    first = run(app)
    second = run(app, "timer")
    assert (first.status, first.attempts) == ("failed", 1)
    assert (second.status, second.attempts) == ("failed", 2)
    noop = app.store.start_job("force", "")
    app.store.finish_job(noop.id, "noop")
    with pytest.raises(ValueError):
        app.service.retry(noop.id)  # only failed or interrupted jobs can be retried
    with pytest.raises(LookupError):
        app.service.retry(999)
    fixed = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Fixed")
    app.start()
    assert app.service.retry(second.id) in ("queued", "coalesced")
    assert app.service.wait_idle(30)
    retried = next(j for j in app.store.jobs() if j.retry_of == second.id)
    assert retried.trigger == "retry" and retried.status == "succeeded" and retried.to_commit == fixed


@pytest.mark.matrix('faults', 'sync loop', '30 racing triggers',
                    expect='one sync runs, one waits; the commit is applied once')
def test_racing_triggers_coalesce_into_at_most_one_running_and_one_waiting_sync(flowapp, repos, make_sidecar):
    import threading

    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    app = make_sidecar(flowapp, remote.file_url)
    app.start()
    assert app.service.wait_idle(30)
    before = len(app.store.jobs(100))
    remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="race"))}, "Race")
    with app.engine.lock:  # hold the engine so every trigger arrives while one job is pending
        results = []
        threads = [threading.Thread(target=lambda k=k: results.append(app.service.trigger(k)))
                   for k in ["force", "timer", "webhook", "force", "resume", "force"] * 5]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert app.service.wait_idle(30)
    new_jobs = app.store.jobs(100)[: len(app.store.jobs(100)) - before]
    assert 1 <= len(new_jobs) <= 2, [j.trigger for j in new_jobs]  # 30 triggers → one runs, one waits
    assert results.count("queued") <= 2 and results.count("coalesced") >= 28
    assert any(j.trigger == "force" for j in new_jobs)  # the strongest waiting trigger won
    assert app.board.current()["local"]["sha"] == remote.head()
