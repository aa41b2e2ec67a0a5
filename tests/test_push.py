"""PUSH mode: deploys in a real Node-RED become commits in a real Git repository."""
from __future__ import annotations

import json
import time

from sidecar.core.schedule import Trigger
from tests import flowgen
from tests.waiting import wait_for


def push_app(make_sidecar, flowapp, remote, layout="single", watch=False, url=None, protocol="file", extra=None):
    cfg = {"mode": "push", "repository": {"layout": layout}, **(extra or {})}
    cfg["repository"] = {**cfg["repository"], **(extra or {}).get("repository", {})}
    return make_sidecar(flowapp, url or remote.file_url, protocol=protocol, extra=cfg, watch=watch)


def run(app, kind="push"):
    return app.store.job(app.engine.run(Trigger(kind)))


def git_log(remote):
    return remote.factory.git("log", "--format=%H%x00%an%x00%B%x01", "main", cwd=remote.path).stdout.split("\x01")


def tree(remote):
    return remote.factory.git("ls-tree", "-r", "--name-only", "main", cwd=remote.path).stdout.split()


def test_a_deploy_becomes_a_commit_single_layout(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    remote.commit({"README.md": "flows of the test environment"}, "Start")
    rev = flowapp.deploy(flowgen.example(), "full")
    app = push_app(make_sidecar, flowapp, remote)
    job = run(app)
    assert job.status == "succeeded", job.error_message
    pushed = json.loads(remote.read("flows.json"))
    assert pushed == flowapp.flows()[0]
    pkg = json.loads(remote.read("package.json"))
    assert pkg["dependencies"] == {}  # core nodes only: nothing to declare
    head = git_log(remote)[0]
    sha, author, message = head.strip("\n").split("\x00")
    assert author == "flow-gitops" and sha == remote.head()
    assert message.startswith("Deploy from test: added ")
    assert f"Flow-App-Origin: test/{rev}" in message
    assert remote.read("README.md") == b"flows of the test environment"  # other files untouched
    # nothing new deployed → nothing pushed
    assert run(app).status == "noop"
    assert remote.head() == sha


def test_split_layout_stable_paths_rename_and_delete(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    flowapp.deploy(flowgen.example(tabs=3), "full")
    app = push_app(make_sidecar, flowapp, remote, layout="split")
    assert run(app).status == "succeeded"
    files = tree(remote)
    assert sorted(files) == ["package.json", "test/config-nodes.json", "test/flows/flow-0.json", "test/flows/flow-1.json",
                             "test/flows/flow-2.json", "test/subflows/double-it.json"]
    tab1 = json.loads(remote.read("test/flows/flow-1.json"))
    assert tab1[0]["id"] == "t1" and tab1[0]["type"] == "tab" and all(n["z"] == "t1" for n in tab1[1:])
    # rename flow 1: its file keeps its path
    flows, _ = flowapp.flows()
    renamed = [dict(n, label="Renamed by a person") if n["id"] == "t1" else n for n in flows]
    flowapp.deploy(renamed, "flows")
    job = run(app)
    assert job.status == "succeeded", (job.detail, app.store.get("pushed"), flowapp.flows()[1])
    assert json.loads(remote.read("test/flows/flow-1.json"))[0]["label"] == "Renamed by a person"
    assert not any("renamed-by-a-person" in f for f in tree(remote))
    # delete flow 2: its file is removed
    flows, _ = flowapp.flows()
    flowapp.deploy([n for n in flows if n["id"] != "t2" and n.get("z") != "t2"], "flows")
    job = run(app)
    assert job.status == "succeeded", (job.detail, app.store.get("pushed"), flowapp.flows()[1])
    files = tree(remote)
    assert "test/flows/flow-2.json" not in files and "test/flows/flow-1.json" in files
    assert "removed Flow 2" in git_log(remote)[0]


def test_deploys_in_the_editor_are_pushed_automatically(flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    app = push_app(make_sidecar, flowapp, remote, watch=True)
    app.start()
    app.service.resume()
    deadline = time.monotonic() + 20
    rev = flowapp.deploy(flowgen.example(tabs=2), "full")
    while time.monotonic() < deadline and f"test/{rev}" not in (git_log(remote)[0] if remote.head() else ""):
        time.sleep(0.1)
    assert f"Flow-App-Origin: test/{rev}" in git_log(remote)[0]
    assert json.loads(remote.read("flows.json")) == flowapp.flows()[0]


def test_git_failures_never_touch_the_flow_app_and_a_retry_pushes_the_newest_content(flowapp, repos, make_sidecar, tmp_path):
    remote = repos.create("flows")
    broken_url = f"file://{tmp_path}/does-not-exist.git"
    app = push_app(make_sidecar, flowapp, remote, url=broken_url)
    flowapp.deploy(flowgen.example(variant="A"), "full")
    job = run(app)
    assert job.status == "failed"
    _, rev_b = flowapp.flows()
    flowapp.deploy(flowgen.example(variant="B"), "full")  # a newer deploy while Git is down
    _, rev_b = flowapp.flows()
    assert run(app, "push_retry").status == "failed"
    assert flowapp.flows()[1] == rev_b  # the Flow App keeps what the person deployed
    # Git is back: the retry pushes what runs now (B), never the older A
    app.cfg.repository.url = remote.file_url
    app.git.cfg.url = remote.file_url
    job = run(app, "push_retry")
    assert job.status == "succeeded", job.error_message
    code = next(n for n in json.loads(remote.read("flows.json")) if n["id"] == "t0f0")["func"]
    assert code.startswith("// B")
    assert f"Flow-App-Origin: test/{rev_b}" in git_log(remote)[0]


class FakeClock:
    """The service's clock, moved by the test; moving it wakes the loop."""

    def __init__(self, service, t: float = 1_800_000_000.0) -> None:
        self.t, self.service = t, service
        service.now = self.now

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.service.wake()


def test_push_retry_schedule_30s_2min_10min_then_the_alert_under_a_controlled_clock(flowapp, repos, make_sidecar, tmp_path):
    """The real sync loop, its clock driven by the test: retries fall due exactly 30 s, 2 min and
    10 min after each failure and not a second earlier; then one git_sync_failed alert; when Git is
    back, the next push sends what runs now."""
    remote = repos.create("flows")
    app = push_app(make_sidecar, flowapp, remote, url=f"file://{tmp_path}/gone.git")
    clock = FakeClock(app.service)
    alerts = []
    app.service.on_alert = lambda name, status: alerts.append((name, status["reason_code"]))
    flowapp.deploy(flowgen.example(variant="A"), "full")
    assert not app.board.current()["paused"]
    app.start()  # push mode: the startup job pushes what runs; Git is gone, so it fails

    def jobs():
        return app.store.jobs(50)

    def settled(n):
        return len(jobs()) == n and all(j.status not in ("running", "queued") for j in jobs()) and app.board.facts().running == ""

    expected_due = clock.t + 30
    wait_for(lambda: settled(1) and app.board.current()["next_sync_at"] == expected_due)
    for n, delay in ((2, 120), (3, 600)):
        clock.advance((30 if n == 2 else 120) - 1)  # one second early: nothing happens
        time.sleep(0.3)
        assert len(jobs()) == n - 1 and app.board.current()["next_sync_at"] == expected_due
        if n == 3:  # a newer deploy while Git is down: the retry must carry it, never older content
            flowapp.deploy(flowgen.example(variant="B"), "full")
            rev_b = flowapp.flows()[1]
        clock.advance(1)
        expected_due = clock.t + delay
        wait_for(lambda n=n, due=expected_due: settled(n) and app.board.current()["next_sync_at"] == due)
        assert jobs()[0].status == "failed" and jobs()[0].trigger == "push_retry"
        assert alerts == []
    clock.advance(600)
    wait_for(lambda: settled(4) and alerts)
    assert alerts == [("git_sync_failed", "git_sync_failed")]
    assert app.board.current()["reason_code"] == "git_sync_failed"
    assert flowapp.flows()[1] == rev_b  # a failing Git never touched the Flow App
    # Git is back: the safety-net push at the next regular check sends B
    app.cfg.repository.url = remote.file_url
    app.git.cfg.url = remote.file_url
    due = app.board.current()["next_sync_at"]
    assert due - clock.t >= app.cfg.sync.interval * 0.5
    clock.advance(due - clock.t)
    wait_for(lambda: settled(5))
    assert jobs()[0].status == "succeeded", jobs()[0].error_message
    code = next(n for n in json.loads(remote.read("flows.json")) if n["id"] == "t0f0")["func"]
    assert code.startswith("// B") and f"Flow-App-Origin: test/{rev_b}" in git_log(remote)[0]
    assert app.board.current()["reason_code"] == "" and alerts == [("git_sync_failed", "git_sync_failed")]


def test_a_non_fast_forward_push_is_redone_on_the_new_head(flowapp, repos, make_sidecar):
    """Someone pushes between our fetch and our push: git rejects ours; we redo it on top.
    (Plain HTTP so the fault proxy can see the request it holds.)"""
    import threading

    from tests.constants import CANARY, GIT_USER
    from tests.servers.faultproxy import FaultProxy
    from tests.servers.githttp import GitHttpServer

    remote = repos.create("flows")
    remote.commit({"README.md": "start"}, "Start")
    server = GitHttpServer(repos.root, GIT_USER, CANARY).start()
    with server, FaultProxy("127.0.0.1", server.port) as proxy:
        url = server.url_for("flows").replace(f":{server.port}/", f":{proxy.port}/")
        app = push_app(make_sidecar, flowapp, remote, url=url, protocol="https", extra={"repository": {
            "username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token"}})
        flowapp.deploy(flowgen.example(), "full")
        proxy.hold(b"GET /flows.git/info/refs?service=git-receive-pack", 1.5, forward="before")
        result = {}
        t = threading.Thread(target=lambda: result.update(job=run(app)))
        t.start()
        assert proxy.held.wait(20), "the push never started"
        theirs = remote.commit({"docs/notes.md": "written meanwhile"}, "A colleague's commit")
        proxy.clear_hold()
        t.join(60)
    job = result["job"]
    assert job.status == "succeeded", job.error_message
    assert job.detail["rebased"] == 1  # the first push was rejected and redone
    assert remote.factory.git("rev-parse", "main~1", cwd=remote.path).stdout.strip() == theirs
    assert remote.read("docs/notes.md") == b"written meanwhile"  # nothing of theirs lost
    assert json.loads(remote.read("flows.json")) == flowapp.flows()[0]
