"""Bi-directional mode: deploys are pushed, repository changes are imported, our own
commits are never imported back."""
from __future__ import annotations

import json

import pytest

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


@pytest.mark.matrix('inputs', 'an invalid flow file committed in bidirectional mode', '',
                    expect='an import error; the Flow App keeps its flows')
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


@pytest.mark.matrix('inputs', 'split-layout files: invalid JSON, not an array of nodes, a badly named file (real Git, real Node-RED)', '',
                    expect='every file listed as an import error with its problem; nothing applied; the list clears once a fix is imported')
def test_import_errors_name_every_bad_file_and_clear_once_a_fix_is_imported(flowapp, repos, running_sidecar, tmp_path, secrets_dir):
    from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
    from sidecar.app import App
    from sidecar.core.config import from_dict
    from tests.conftest import sidecar_config

    remote = repos.create("flows")
    flowapp.deploy(flowgen.example(tabs=3), "full")
    rs = running_sidecar(flowapp, remote.file_url, extra={"mode": "bidirectional", "repository": {"layout": "split"},
                                                          "sync": {"paused": True}})  # jobs run only when the test says
    app = rs.app
    assert run(app, "push").status == "succeeded"
    _, rev = flowapp.flows()
    flow1, flow2 = json.loads(remote.read("test/flows/flow-1.json")), remote.read("test/flows/flow-2.json")
    added = [{"id": "t9", "type": "tab", "label": "Added in Git"},
             {"id": "c9", "type": "comment", "z": "t9", "name": "from git", "info": "", "x": 120, "y": 60, "wires": []}]

    # two files that do not parse or validate, and a flow file with an invalid name
    remote.commit({"test/flows/flow-1.json": "[{ not json",
                   "test/flows/flow-2.json": json.dumps({"id": "t2", "type": "tab"}),
                   "test/flows/Added In Git.json": json.dumps(added),
                   "test/flows/.gitkeep": "", "test/README.md": "flows of the test environment"},
                  "Three files that cannot be imported", author=("Grace Hopper", "grace@example.com"))
    job = run(app, "force")
    assert job.status == "failed" and job.error_code == "flows_invalid"
    errors = {e["path"]: e["message"] for e in app.board.current()["import_errors"]}
    assert sorted(errors) == ["test/flows/Added In Git.json", "test/flows/flow-1.json", "test/flows/flow-2.json"]
    assert errors["test/flows/flow-1.json"].startswith("not valid JSON")
    assert errors["test/flows/flow-2.json"] == "must be a JSON array of nodes, found dict"
    assert errors["test/flows/Added In Git.json"].startswith("invalid file name") and "added-in-git.json" in errors["test/flows/Added In Git.json"]
    assert all(path in job.error_message for path in errors) and job.error_message.startswith("3 files under test/ cannot be imported")
    assert app.board.current()["reason_code"] == "flows_invalid"
    assert flowapp.flows()[1] == rev  # nothing applied: the Flow App keeps running its last good flows
    assert not any(n["id"] == "t9" for n in flowapp.flows()[0])

    # the API carries them, over native gRPC and gRPC-web alike
    status = rs.stub.GetStatus(pb.GetStatusRequest(), metadata=rs.md).status
    assert [(e.path, e.message) for e in status.import_errors] == sorted(errors.items())
    assert rs.web.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse).status.import_errors == status.import_errors

    # they survive a restart (a read-only App on the same data directory loads them)
    other = App(from_dict(sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, extra={
        "mode": "bidirectional", "repository": {"layout": "split"}})), watch_deploys=False, exclusive=False)
    try:
        assert other.board.current()["import_errors"] == app.board.current()["import_errors"]
    finally:
        other.close()

    # the fix: flow 1 valid again (with an edit), flow 2 restored, the new flow under a slug name
    flow1[0]["label"] = "Flow 1 (fixed in Git)"
    fixed = remote.commit({"test/flows/flow-1.json": json.dumps(flow1, indent=4),
                           "test/flows/flow-2.json": flow2, "test/flows/Added In Git.json": None,
                           "test/flows/added-in-git.json": json.dumps(added, indent=4)}, "Fix the files")
    job = run(app, "force")
    assert job.status == "succeeded", job.error_message
    assert app.board.current()["import_errors"] == []
    assert list(rs.stub.GetStatus(pb.GetStatusRequest(), metadata=rs.md).status.import_errors) == []
    flows, _ = flowapp.flows()
    assert next(n for n in flows if n["id"] == "t9")["label"] == "Added in Git"
    assert next(n for n in flows if n["id"] == "t1")["label"] == "Flow 1 (fixed in Git)"
    assert any(n["id"] == "t2" for n in flows)
    assert app.board.current()["local"]["sha"] == fixed


@pytest.mark.matrix('inputs', 'flow file names: 60-character slugs, a non-ASCII name Git would quote', '',
                    expect='names the writer makes are read back; a quoted name is an import error, its flow never silently dropped')
def test_long_labels_round_trip_and_non_ascii_file_names_are_import_errors_not_dropped(flowapp, repos, make_sidecar):
    """Names the writer makes are names the reader takes (a long label cut at 60 characters never
    leaves a trailing '-'); a file Git lists with a quoted, non-ASCII name is reported, never skipped."""
    from sidecar.core import layout

    long_label = "a" * 59 + " bcd"  # cut at 60 characters, the slug would end in "-"
    nodes = [{"id": "t1", "type": "tab", "label": long_label}, {"id": "t2", "type": "tab", "label": long_label}]
    names = sorted(layout.split_files(nodes, "prod", {}).files)
    assert layout.split_candidates(names, "prod")[1] == []
    assert not any(n.rsplit("/", 1)[-1].startswith("-") or "-.json" in n or "--" in n for n in names)

    remote = repos.create("flows")
    flowapp.deploy(flowgen.example(tabs=2), "full")
    app = bidi(make_sidecar, flowapp, remote)
    assert run(app, "push").status == "succeeded"
    _, rev = flowapp.flows()
    flow1 = remote.read("test/flows/flow-1.json")
    remote.commit({"test/flows/flow-1.json": None, "test/flows/café.json": flow1}, "Rename a file by hand",
                  author=("Grace Hopper", "grace@example.com"))
    job = run(app, "force")
    assert job.status == "failed" and job.error_code == "flows_invalid"
    assert [e["path"] for e in app.board.current()["import_errors"]] == ["test/flows/café.json"]
    assert flowapp.flows()[1] == rev  # flow 1 is still there: its file was not silently dropped
