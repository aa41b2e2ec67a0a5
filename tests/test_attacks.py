"""Hostile repositories and a canary secret through the API: what the suite lists under
"Attacks" in docs/SECURITY.md beyond the tests that live beside each feature."""
from __future__ import annotations

import json
import os
import threading
import time

import grpc
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.adapters.secrets import DirSecretSource
from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from sidecar.core import secretpath
from sidecar.core.config import from_dict, validate
from sidecar.core.schedule import Trigger
from tests import flowgen
from tests.constants import CANARY


def force(app):
    return app.store.job(app.engine.run(Trigger("force")))


def commit_symlink(remote, link: str, target: str, message: str) -> str:
    """A commit whose `link` is a symbolic link (mode 120000) to `target`."""
    remote._checkout("main")
    path = remote._work / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.symlink(target, path)
    return remote._commit_and_push({}, message, ("Mallory", "mallory@example.invalid"), "main", force=False)


def assert_last_good_flows_kept(flowapp, rev_before):
    flows, rev = flowapp.flows()
    assert rev == rev_before
    assert {n["id"] for n in flows} == {n["id"] for n in flowgen.example()}


@pytest.mark.matrix("attacks", "a committed symbolic link in place of the flows file (to /etc/passwd)", "repository as data",
                    expect="refused as path_unsafe naming the link; the link is never followed; the last good flows keep running")
def test_a_symlinked_flows_file_is_refused_and_never_followed(flowapp, repos, make_sidecar):
    remote = repos.create("links")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Good flows")
    app = make_sidecar(flowapp, remote.file_url)
    assert force(app).status == "succeeded"
    _, rev = flowapp.flows()
    commit_symlink(remote, "flows.json", "/etc/passwd", "Point the flows at the host")
    job = force(app)
    assert job.status == "failed" and job.error_code == "path_unsafe"
    assert "'flows.json' is a symbolic link" in job.error_message
    assert "root:" not in json.dumps(job.detail)
    assert_last_good_flows_kept(flowapp, rev)
    assert app.board.current()["reason_code"] == "path_unsafe"


@pytest.mark.matrix("attacks", "a split-layout flow file that is a symbolic link (to ../../outside)", "repository as data",
                    expect="the import is refused naming the file; nothing applied")
def test_a_symlinked_split_file_is_refused(flowapp, repos, make_sidecar):
    from sidecar.core import layout

    remote = repos.create("split-links")
    files = layout.split_files(flowgen.example(), "dev", {}).files
    remote.commit(files, "Split flows")
    app = make_sidecar(flowapp, remote.file_url, extra={"repository": {"layout": "split"}, "environment": "dev"})
    assert force(app).status == "succeeded"
    _, rev = flowapp.flows()
    commit_symlink(remote, "dev/flows/zz-evil.json", "../../../../etc/passwd", "Sneak a link in")
    job = force(app)
    assert job.status == "failed" and job.error_code == "path_unsafe", job.error_message
    assert "dev/flows/zz-evil.json" in job.error_message
    assert_last_good_flows_kept(flowapp, rev)


@pytest.mark.matrix("attacks", "package.json naming an absolute flowFile (/etc/passwd)", "repository as data",
                    expect="refused as path_unsafe before anything is read")
def test_an_absolute_flow_file_is_refused(flowapp, repos, make_sidecar):
    remote = repos.create("abs")
    remote.commit({"package.json": json.dumps({"name": "x", "node-red": {"settings": {"flowFile": "/etc/passwd"}}}),
                   "flows.json": "[]"}, "Absolute flow file")
    job = force(make_sidecar(flowapp, remote.file_url))
    assert job.status == "failed" and job.error_code == "path_unsafe"
    assert "outside the repository" in job.error_message


@pytest.mark.matrix("attacks", "a 17 MiB flows file and a 2 MiB package.json", "repository as data",
                    expect="refused by size from the object header (file_too_large) without reading the content; flows kept")
def test_oversized_files_in_a_commit_are_refused_by_size(flowapp, repos, make_sidecar):
    remote = repos.create("huge")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Good flows")
    app = make_sidecar(flowapp, remote.file_url)
    assert force(app).status == "succeeded"
    _, rev = flowapp.flows()
    remote.commit({"flows.json": b"[" + b" " * (17 * 1024 * 1024) + b"]"}, "Huge flows")
    job = force(app)
    assert job.status == "failed" and job.error_code == "file_too_large"
    assert "flows.json is 17825794 bytes" in job.error_message
    assert [e["path"] for e in app.board.current()["import_errors"]] == ["flows.json"]
    remote.commit({"flows.json": flowgen.dumps(flowgen.example()), "package.json": b"{" + b" " * (2 * 1024 * 1024) + b"}"}, "Huge package")
    job = force(app)
    assert job.status == "failed" and job.error_code == "file_too_large" and "package.json" in job.error_message
    assert_last_good_flows_kept(flowapp, rev)


@pytest.mark.matrix("attacks", "a canary secret through every API surface while syncs succeed and fail", "secrets",
                    expect="the canary appears in no event, status, job, config, plan, recovery, webhook answer, error or metric")
def test_a_canary_secret_never_reaches_the_api(flowapp, repos, https_git, secrets_dir, running_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    extra = {"repository": {"username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token",
                            "ca_file": https_git.cafile}, "webhooks": {"enabled": True, "secret": "global.SECRETS.git.token"}}
    rs = running_sidecar(flowapp, https_git.url_for("flows"), "https", extra)
    events, stop = [], threading.Event()

    def watch():
        try:
            for msg in rs.stub.WatchStatus(pb.WatchStatusRequest(), metadata=rs.md, timeout=30):
                events.append(msg)
                if stop.is_set():
                    return
        except grpc.RpcError as exc:  # the deadline ends the stream; what it carried is what we check
            events.append(exc)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    rs.stub.ForcePull(pb.ForcePullRequest(), metadata=rs.md)
    deadline = time.monotonic() + 20
    while rs.app.board.current()["state"] != "in_sync" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rs.app.board.current()["state"] == "in_sync"
    # a failing sync: the token rotates to a wrong value that contains the canary
    (secrets_dir / "git" / "token").write_text("wrong-" + CANARY)
    remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="second"))}, "Second")
    rs.stub.ForcePull(pb.ForcePullRequest(), metadata=rs.md)
    deadline = time.monotonic() + 20
    while rs.app.board.current()["reason_code"] != "git_auth_failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rs.app.board.current()["reason_code"] == "git_auth_failed"
    stop.set()
    rs.stub.Pause(pb.PauseRequest(), metadata=rs.md)  # one more event ends the watcher
    watcher.join(10)

    answers = [str(e) for e in events]
    answers += [str(rs.stub.GetStatus(pb.GetStatusRequest(), metadata=rs.md)),
                str(rs.stub.ListJobs(pb.ListJobsRequest(), metadata=rs.md)),
                str(rs.stub.GetConfig(pb.GetConfigRequest(), metadata=rs.md)),
                str(rs.stub.GetRecovery(pb.GetRecoveryRequest(), metadata=rs.md)),
                str(rs.stub.GetWebhook(pb.GetWebhookRequest(reveal_secret=True), metadata=rs.md)),
                str(rs.stub.SuggestSecretPaths(pb.SuggestSecretPathsRequest(prefix="global.SECRETS."), metadata=rs.md))]
    with pytest.raises(grpc.RpcError) as failed_plan:  # the plan needs Git: the wrong token fails it
        rs.stub.GetPlan(pb.GetPlanRequest(), metadata=rs.md)
    answers.append(str(failed_plan.value))
    answers.append(requests.get(rs.http_url + "/metrics").text)
    answers.append(requests.post(rs.http_url + "/webhooks/github", data=b"{}", headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "1", "X-Hub-Signature-256": "sha256=" + "0" * 64}).text)
    assert len(events) > 3 and any("git_auth_failed" in a for a in answers)
    for text in answers:
        assert CANARY not in text


_segment = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_segment, max_size=5), st.sampled_from(["global.SECRETS.", "", "global.", "../", "/", "global.SECRETS"]))
@pytest.mark.matrix("inputs", "secret paths (hypothesis: any unicode segments, traversal, separators)",
                    expect="either a well-formed path or a message naming what is wrong, never echoing the value; never resolves outside the secret root")
def test_secret_paths_are_accepted_or_refused_with_a_reason(tmp_path_factory, segments, prefix):
    value = prefix + ".".join(segments)
    problem = secretpath.format_error(value)
    if problem is None:
        assert secretpath.is_secret_path(value)
        assert all(s and ".." not in s and "/" not in s and "\x00" not in s for s in secretpath.segments(value))
    else:
        assert not secretpath.is_secret_path(value)
        # the message depends on the kind of mistake only, never on the value: nothing echoed
        assert problem in {"is empty", secretpath.format_error("x"), secretpath.format_error("global.SECRETS.?")}
    # through the configuration: a field holding it is valid or named with that message
    cfg = from_dict({"repository": {"url": "file:///tmp/x.git", "protocol": "file", "password": value}})
    named = [v for v in validate(cfg, lambda p: True) if v.field == "repository.password"]
    assert (named == []) == (problem is None or value == "")
    # a directory source never answers from outside its root
    root = tmp_path_factory.mktemp("secrets")
    (root.parent / "outside").write_text("leak")
    source = DirSecretSource(root)
    assert source.get(value) in (None, "")


@pytest.mark.matrix("attacks", "an HTTPS Git server whose certificate is not trusted (man in the middle)", "Git transport",
                    expect="refused: 'TLS certificate is not trusted'; no credential sent, nothing fetched")
def test_an_untrusted_https_certificate_is_refused(flowapp, repos, https_git, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    extra = {"repository": {"username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token"}}
    app = make_sidecar(flowapp, https_git.url_for("flows"), "https", extra)
    _, rev = flowapp.flows()
    job = force(app)
    assert job.status == "failed" and job.error_code == "git_unreachable"
    assert "TLS certificate is not trusted" in job.error_message
    assert CANARY not in job.error_message
    assert flowapp.flows()[1] == rev and app.store.get("applied") is None
    assert https_git.requests.count() == 0  # the TLS handshake failed: no request, so no credential, was sent
