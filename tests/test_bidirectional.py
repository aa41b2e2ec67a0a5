"""Bi-directional mode: deploys are pushed, repository changes are imported, our own
commits are never imported back."""
from __future__ import annotations

import json

from sidecar.core.schedule import Trigger
from tests import flowgen


def bidi(make_sidecar, flowapp, remote):
    return make_sidecar(flowapp, remote.file_url, extra={"mode": "bidirectional", "repository": {"layout": "split"}})


def run(app, kind):
    return app.store.job(app.engine.run(Trigger(kind)))


def test_push_then_import_a_change_made_in_git_and_never_reimport_our_own(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    flowapp.deploy(flowgen.example(tabs=3), "full")
    app = bidi(make_sidecar, flowapp, remote)
    assert run(app, "push").status == "succeeded"
    ours = remote.head()
    assert "Flow-App-Origin: test/" in remote.factory.git("log", "-1", "--format=%B", cwd=remote.path).stdout

    # the poll sees our own commit: nothing imported, nothing deployed
    _, rev = flowapp.flows()
    job = run(app, "force")
    assert job.status in ("noop", "succeeded") and flowapp.flows()[1] == rev

    # someone edits flow 1's file in Git and deletes flow 2's file → imported
    tab1 = json.loads(remote.read("test/flows/flow-1.json"))
    tab1[0]["label"] = "Edited in Git"
    for n in tab1:
        if n.get("type") == "function":
            n["func"] = "// from git\nreturn msg;"
    theirs = remote.commit({"test/flows/flow-1.json": json.dumps(tab1, indent=4), "test/flows/flow-2.json": None},
                           "Edit flow 1, drop flow 2", author=("Grace Hopper", "grace@example.com"))
    assert theirs != ours
    job = run(app, "force")
    assert job.status == "succeeded", job.error_message
    flows, _ = flowapp.flows()
    assert next(n for n in flows if n["id"] == "t1")["label"] == "Edited in Git"
    assert not any(n["id"] == "t2" or n.get("z") == "t2" for n in flows)  # the removed file removed the flow
    assert any(n["id"] == "t0" for n in flows)  # untouched flows stay
    assert app.board.current()["local"]["sha"] == theirs

    # a later deploy in the editor is pushed on top, keeping the Git edit
    flows, _ = flowapp.flows()
    flowapp.deploy([dict(n, label="Flow 0 (edited in the editor)") if n["id"] == "t0" else n for n in flows], "flows")
    assert run(app, "push").status == "succeeded"
    assert remote.factory.git("rev-parse", "main~1", cwd=remote.path).stdout.strip() == theirs
    assert json.loads(remote.read("test/flows/flow-0.json"))[0]["label"] == "Flow 0 (edited in the editor)"
    assert json.loads(remote.read("test/flows/flow-1.json"))[0]["label"] == "Edited in Git"


def test_an_invalid_file_in_git_is_an_import_error_and_keeps_the_flows(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    flowapp.deploy(flowgen.example(tabs=2), "full")
    app = bidi(make_sidecar, flowapp, remote)
    assert run(app, "push").status == "succeeded"
    _, rev = flowapp.flows()
    remote.commit({"test/flows/flow-1.json": "[{ not json"}, "Broken file", author=("Grace Hopper", "grace@example.com"))
    job = run(app, "force")
    assert job.status == "failed" and job.error_code == "flows_invalid"
    assert "test/flows/flow-1.json" in job.error_message
    assert flowapp.flows()[1] == rev
