"""PULL mode against a real Node-RED and real Git (file://): the core scenarios."""
from __future__ import annotations

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
