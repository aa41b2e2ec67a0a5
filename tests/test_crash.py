"""kill -9 of the sidecar at every phase of a sync, then a restart: consistent state,
the commit applied exactly once, no job lost or duplicated (O4, issue #9 "Crashes").

Two ways to crash it at a precise spot:
- a fault proxy holding `POST /flows` (the deploy in flight, delivered or not);
- failpoints (sidecar/failpoints.py): the sidecar is started with
  `FLOW_GITOPS_FAILPOINTS=<name>:pause`, writes a marker when it reaches the spot and
  sleeps there; the test waits for the marker and sends SIGKILL.

"Applied exactly once" is read from Node-RED itself: every function node of
tests/flowgen.py counts its starts in global context.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from sidecar import failpoints
from tests import flowgen
from tests.conftest import sidecar_config
from tests.servers.faultproxy import FaultProxy
from tests.test_recovery import consumer_flows, recovery_extra, wait_value

CLI = [sys.executable, "-m", "sidecar"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_GITOPS_FAILPOINT")}


def cli(*args):
    return subprocess.run([*CLI, *args], check=False, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)


@pytest.mark.parametrize("forward", [
    pytest.param("before", id="killed-before-nodered-saw-it", marks=pytest.mark.matrix(
        "crashes", row="deploy (POST /flows in flight, never delivered)", column="kill -9",
        expect="job interrupted, old flows whole; the restart applies the commit once")),
    pytest.param("after", id="killed-after-nodered-applied-it", marks=pytest.mark.matrix(
        "crashes", row="deploy (POST /flows applied, answer lost)", column="kill -9",
        expect="job settled as succeeded on restart; the commit is not deployed again")),
])
def test_kill_9_during_deploy_then_restart(flowapp, repos, secrets_dir, tmp_path, forward):
    port = urlsplit(flowapp.url).port
    with FaultProxy("127.0.0.1", port) as proxy:
        remote = repos.create("flows")
        first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
        data = sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url, "file")
        data["flow_app"]["url"] = proxy.url_for("http")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump(data))
        assert cli("sync", "--once", "--config", str(cfg)).returncode == 0
        assert flowapp.global_value("starts_t0f0") == 1
        _, rev_first = flowapp.flows()

        second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="second"))}, "Second")
        proxy.hold(b"POST /flows", 5.0, forward=forward)
        proc = subprocess.Popen([*CLI, "sync", "--once", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=CLEAN_ENV)
        assert proxy.held.wait(30), "the sidecar never posted the flows"
        if forward == "after":
            deadline = time.monotonic() + 10  # Node-RED takes the deploy while the answer is held back
            while flowapp.flows()[1] == rev_first and time.monotonic() < deadline:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
        proxy.clear_hold()
        time.sleep(0.5)
        flows, rev = flowapp.flows()
        if forward == "before":
            assert rev == rev_first  # the held request was never delivered: old flows, whole
        else:
            assert rev != rev_first  # Node-RED applied the new flows, whole
            assert "second" in next(n for n in flows if n["id"] == "t0f0")["func"]

        # restart: the interrupted job is settled, the commit is applied exactly once
        res = cli("sync", "--once", "--config", str(cfg), "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        jobs = json.loads(cli("jobs", "--config", str(cfg), "--json").stdout)
        assert [j["id"] for j in jobs] == [3, 2, 1]  # nothing lost, nothing duplicated
        killed = jobs[1]
        assert killed["to_commit"] == second
        if forward == "before":
            assert killed["status"] == "interrupted" and killed["error_code"] == "interrupted"
            assert "during the deploy step" in killed["error_message"]
        else:
            assert killed["status"] == "succeeded"
            assert killed["detail"]["note"] == "deploy confirmed after a restart"
        assert jobs[0]["status"] == "succeeded" and jobs[0]["to_commit"] == second
        assert all(j["status"] != "running" for j in jobs)
        status = json.loads(cli("status", "--config", str(cfg), "--json").stdout)["status"]
        assert status["local"]["sha"] == second and status["state"] == "in_sync"
        # the new flows started exactly once: one start for the first deploy, one for the second
        assert flowapp.global_value("starts_t0f0") == 2
        assert flowapp.global_value("starts_t1f0") == 1  # an untouched tab never restarted
        assert status["local"]["sha"] != first


# --- failpoints ------------------------------------------------------------------

def test_failpoints_are_inert_unless_armed_and_refuse_a_malformed_setting():
    assert os.environ.get(failpoints.ENV) is None
    failpoints.failpoint("deploy")  # not armed: returns at once
    assert failpoints.parse("deploy:pause, plan,") == {"deploy": "pause", "plan": "pause"}
    for bad in ("deploy:explode", ":pause"):
        with pytest.raises(ValueError):
            failpoints.parse(bad)


class Sidecar:
    """`flow-gitops sync --once` as separate processes over one configuration and data directory."""

    def __init__(self, cfg: Path, workdir: Path) -> None:
        self.cfg = cfg
        self.markers = workdir / "failpoints"
        self.markers.mkdir(parents=True)
        self.logs = workdir / "logs"
        self.logs.mkdir()
        self.runs = 0  # sync processes started (each makes exactly one job)

    def sync(self) -> dict:
        self.runs += 1
        res = cli("sync", "--once", "--config", str(self.cfg), "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(res.stdout)

    def kill_at(self, point: str, command: str = "sync", timeout: float = 60.0) -> None:
        """Start a sync (`sync --once`, or `serve` and its startup sync) armed at failpoint
        `point`, wait until it sits there, kill -9 it."""
        self.runs += 1
        marker = self.markers / point
        marker.unlink(missing_ok=True)
        env = dict(CLEAN_ENV, FLOW_GITOPS_FAILPOINTS=f"{point}:pause", FLOW_GITOPS_FAILPOINT_DIR=str(self.markers))
        log_path = self.logs / f"run{self.runs}-{point}.log"
        args = ["sync", "--once"] if command == "sync" else ["serve"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*CLI, *args, "--config", str(self.cfg)], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while not marker.exists():
                if proc.poll() is not None:
                    pytest.fail(f"the sidecar exited ({proc.returncode}) before failpoint {point!r}:\n{log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"failpoint {point!r} not reached in {timeout:g} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.02)
            assert int(marker.read_text()) == proc.pid
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL

    def serve_until_settled(self, timeout: float = 60.0) -> dict:
        """Start `serve` (no failpoints), wait for its startup job to finish, stop it with SIGTERM."""
        self.runs += 1
        log_path = self.logs / f"run{self.runs}-serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*CLI, "serve", "--config", str(self.cfg)], env=CLEAN_ENV,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                jobs = self.jobs()
                if len(jobs) == self.runs and jobs[0]["status"] != "running":
                    break
                assert time.monotonic() < deadline, f"serve did not finish its startup job:\n{log_path.read_text()[-3000:]}"
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, log_path.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return jobs[0]

    def stored_jobs(self) -> list[tuple[int, str, str]]:
        """(id, status, phase) of every job, newest first, read from the state database as it is
        (read-only, no sidecar process): what a kill left behind."""
        db = Path(yaml.safe_load(self.cfg.read_text())["data_dir"]) / "state.db"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT id, status, phase FROM jobs ORDER BY id DESC").fetchall()

    def jobs(self) -> list[dict]:
        res = cli("jobs", "--config", str(self.cfg), "--json", "--limit", "1000")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def status(self) -> dict:
        res = cli("status", "--config", str(self.cfg), "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)["status"]


def start_with_first_commit(nr, repos, secrets_dir, tmp_path, extra: dict | None = None) -> tuple[Sidecar, object, str]:
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "First")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(sidecar_config(tmp_path, nr, secrets_dir, remote.file_url, "file", extra)))
    sc = Sidecar(cfg, tmp_path)
    assert sc.sync()["status"] == "succeeded"
    assert nr.global_value("starts_t0f0") == 1
    return sc, remote, nr.flows()[1]


def second_flows(with_module: bool) -> list[dict]:
    """The first tab changed; with a module: a new tab using fg-alpha, a type only the test registry has."""
    return flowgen.example(variant="second") + (consumer_flows(["fg-alpha"]) if with_module else [])


def assert_consistent(sc: Sidecar, nr, target: str, with_module: bool = False) -> list[dict]:
    """After a clean run: the Flow App runs `target`, applied once; one job per run, none left running."""
    jobs = sc.jobs()
    assert [j["id"] for j in jobs] == list(range(sc.runs, 0, -1)), "a job was lost or duplicated"
    assert [j["status"] for j in jobs if j["status"] not in ("succeeded", "noop", "interrupted")] == []
    assert jobs[-1]["to_commit"] != target and all(j["to_commit"] == target for j in jobs[:-1])
    status = sc.status()
    assert status["state"] == "in_sync", status
    assert status["local"]["sha"] == target and status["remote"]["sha"] == target
    assert not status["reason_code"]
    flows, _ = nr.flows()
    assert "second" in next(n for n in flows if n["id"] == "t0f0")["func"]
    # exactly once: one start for the first commit, one for the second; the untouched tab never restarted
    # (after a kill at "confirm" the flows may still be starting: every deploy itself is long done)
    deadline = time.monotonic() + 5
    while nr.global_value("starts_t0f0") != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nr.global_value("starts_t0f0") == 2
    assert nr.global_value("starts_t1f0") == 1
    if with_module:
        assert wait_value(nr, "seen") == {"from": "fg-alpha", "payload": "hello"}
    # the sidecar never took its own deploy for someone else's (no drift backup of our flows)
    assert not any("drift_backup" in j["detail"] for j in jobs[:-1])
    return jobs


# failpoint → (what the Flow App runs right after the kill, how the restart settles the killed job)
INTERRUPTED = "interrupted"
CONFIRMED = "deploy confirmed after a restart"
CRASH_POINTS = {
    "fetch": ("old", INTERRUPTED, "fetch"),
    "plan": ("old", INTERRUPTED, "plan"),
    "recover": ("old", INTERRUPTED, "recover"),
    "install": ("old", INTERRUPTED, "recover"),
    "deploy": ("old", INTERRUPTED, "deploy"),
    "confirm": ("new", CONFIRMED, "deploy"),
    "record": ("new", CONFIRMED, "record"),
    "recorded": ("new", "succeeded", "record"),
}
EXPECT = {
    "fetch": "job interrupted before fetching; the restart fetches and applies the commit once",
    "plan": "job interrupted, old flows untouched; the restart applies the commit once",
    "recover": "job interrupted before npm ran; the restart installs, loads and applies the commit once",
    "install": "module on disk, never loaded: job interrupted; the restart installs it in place, loads it, applies the commit once",
    "deploy": "job interrupted before POST /flows; the restart applies the commit once",
    "confirm": "Node-RED runs the commit: the job is settled as succeeded, never deployed again",
    "record": "deployed, not recorded: the restart records it once, never deploys again",
    "recorded": "recorded before the kill: the restart finds nothing to settle or deploy",
}


WITH_MODULE = ("recover", "install")  # the second commit needs a module from the test npm registry
ROWS = {"recover": "install (phase start, before npm)", "install": "install (module on disk, not yet loaded)"}


def _case(point: str):
    fixture = "nr_with_plugin" if point in WITH_MODULE else "flowapp"
    return pytest.param(point, fixture, id=point,
                        marks=pytest.mark.matrix("crashes", row=ROWS.get(point, point), column="kill -9", expect=EXPECT[point]))


@pytest.mark.parametrize("point,nr_fixture", [_case(p) for p in CRASH_POINTS])
def test_kill_9_at_a_phase_then_restart(point, nr_fixture, request, repos, secrets_dir, tmp_path):
    with_module = point in WITH_MODULE
    nr = request.getfixturevalue(nr_fixture)
    extra = recovery_extra(request.getfixturevalue("registry"), request.getfixturevalue("test_catalog"), nr) if with_module else None
    sc, remote, rev_first = start_with_first_commit(nr, repos, secrets_dir, tmp_path, extra)
    second = remote.commit({"flows.json": json.dumps(second_flows(with_module))}, "Second")

    sc.kill_at(point)
    running_after_kill, settled, phase = CRASH_POINTS[point]
    flows, rev = nr.flows()
    if running_after_kill == "old":
        assert rev == rev_first  # nothing reached the Flow App: the old flows run, whole
    else:
        assert "second" in next(n for n in flows if n["id"] == "t0f0")["func"]  # Node-RED took the new flows, whole
    if point == "install":  # the kill came between npm and Node-RED: on disk, not loaded
        assert (nr.user_dir / "node_modules" / "node-red-contrib-fg-alpha" / "package.json").exists()
        assert "fg-alpha" not in {t for s in _node_sets(nr) for t in s.get("types", [])}
    # as the kill left it: still running, except after "recorded" (job and commit were committed together)
    assert sc.stored_jobs()[0] == (2, "succeeded" if point == "recorded" else "running", phase)

    restart = sc.sync()  # settles the killed job, then syncs
    assert restart["status"] == "succeeded" and restart["to_commit"] == second
    jobs = assert_consistent(sc, nr, second, with_module)
    assert len(jobs) == 3
    killed = jobs[1]
    if settled == INTERRUPTED:
        assert killed["status"] == "interrupted" and killed["error_code"] == "interrupted"
        assert f"during the {phase} step" in killed["error_message"]
        assert restart["attempts"] == 2  # the restart's job is the second attempt at the commit
        assert restart["detail"]["plan"]["changes"]  # and it did the deploy
    else:
        assert killed["status"] == "succeeded" and killed["to_commit"] == second
        assert killed["detail"].get("note") == (CONFIRMED if settled == CONFIRMED else None)
        assert restart["attempts"] == 1 and restart["detail"]["plan"]["changes"] == []  # nothing to deploy again
    if with_module:
        assert any(i.startswith("node-red-contrib-fg-alpha@") for i in restart["detail"]["installed"])


def _node_sets(nr) -> list[dict]:
    return nr.session.get(nr.url + "/nodes", headers=nr.headers({"Accept": "application/json"}), timeout=10).json()


EVERY_POINT = ["fetch", "plan", "recover", "install", "deploy", "confirm", "record", "recorded"]


@pytest.mark.matrix("crashes", row="every phase in turn", column="kill -9 repeated",
                    expect="killed at each of 8 points on one commit, then a clean run: applied once, one job per run, none running")
def test_kill_9_at_every_phase_in_turn_on_one_commit(nr_with_plugin, registry, test_catalog, repos, secrets_dir, tmp_path):
    nr = nr_with_plugin
    sc, remote, _ = start_with_first_commit(nr, repos, secrets_dir, tmp_path, recovery_extra(registry, test_catalog, nr))
    second = remote.commit({"flows.json": json.dumps(second_flows(with_module=True))}, "Second")
    for point in EVERY_POINT:  # each start settles the job the previous kill left, then dies at the next spot
        sc.kill_at(point)
        assert [j for j in sc.stored_jobs()[1:] if j[1] == "running"] == []  # the start settled the previous one
    last = sc.sync()
    assert last["status"] == "succeeded" and last["detail"]["plan"]["changes"] == []
    jobs = assert_consistent(sc, nr, second, with_module=True)
    assert len(jobs) == 2 + len(EVERY_POINT)
    by_point = dict(zip(EVERY_POINT, reversed(jobs[1:-1])))
    for point in ("fetch", "plan", "recover", "install", "deploy"):
        assert by_point[point]["status"] == "interrupted", (point, by_point[point])
    assert by_point["confirm"]["status"] == "succeeded" and by_point["confirm"]["detail"]["note"] == CONFIRMED
    # the record-step job came after the confirmed one: Node-RED already ran the commit, it deployed nothing
    assert by_point["record"]["status"] == "succeeded" and by_point["record"]["detail"]["plan"]["changes"] == []
    assert by_point["record"]["detail"]["note"] == "recorded after a restart (no flow changes to deploy)"
    assert by_point["recorded"]["status"] == "succeeded" and "note" not in by_point["recorded"]["detail"]
    # attempts count up over the interrupted jobs and start over after the first success
    assert [by_point[p]["attempts"] for p in EVERY_POINT] == [1, 2, 3, 4, 5, 6, 1, 1]


@pytest.mark.parametrize("point", [
    pytest.param(p, id=p, marks=pytest.mark.matrix("crashes", row=p, column="kill -9 of serve, serve restarted", expect=e))
    for p, e in (("deploy", "the restarted service's startup sync applies the commit once"),
                 ("confirm", "settled as succeeded on start; the startup check finds nothing to do"))
])
def test_kill_9_of_serve_then_restart_serve(point, flowapp, repos, secrets_dir, tmp_path):
    sc, remote, _ = start_with_first_commit(flowapp, repos, secrets_dir, tmp_path)
    second = remote.commit({"flows.json": json.dumps(second_flows(False))}, "Second")
    sc.kill_at(point, command="serve")
    restart = sc.serve_until_settled()
    jobs = assert_consistent(sc, flowapp, second)
    killed = jobs[1]
    assert killed["trigger"] == restart["trigger"] == "startup"
    if point == "deploy":
        assert killed["status"] == "interrupted" and restart["status"] == "succeeded" and restart["attempts"] == 2
    else:  # the restart recorded the deploy it found running, so the cheap startup check has nothing to do
        assert killed["status"] == "succeeded" and killed["detail"]["note"] == CONFIRMED
        assert restart["status"] == "noop"


@pytest.mark.matrix("crashes", "a git or npm child running", "kill -9",
                    expect="the git or npm process the sidecar started dies with it (setpriv --pdeathsig); what that process "
                           "itself forked is not covered")
def test_children_die_with_the_sidecar(tmp_path):
    marker = tmp_path / "child.pid"
    code = (
        "import threading, sys\n"
        "from sidecar.adapters.runner import Runner\n"
        f"t = threading.Thread(target=lambda: Runner().run(['sh', '-c', 'echo $$ > {marker}; exec sleep 60'], timeout=120))\n"
        "t.start(); t.join()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while not (marker.exists() and marker.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    child = int(marker.read_text())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived a kill -9 of the sidecar"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_job_killed_while_recording_a_commit_without_flow_changes_is_not_called_a_deploy(flowapp, repos, make_sidecar):
    """The settle note says what happened: nothing was deployed for a commit that changed no flow."""
    from sidecar.core import flows as flowlib
    from sidecar.core.schedule import Trigger

    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    app = make_sidecar(flowapp, remote.file_url)
    assert app.store.job(app.engine.run(Trigger("force"))).status == "succeeded"
    readme = remote.commit({"README.md": "docs only"}, "Docs only")
    current, _ = flowapp.flows()
    job = app.store.start_job("timer", readme)  # as a kill in the record step of that commit leaves it
    app.store.update_job(job.id, to_commit=readme, phase="record",
                         detail={"plan": {"changes": []}, "target_digest": flowlib.flows_digest(current)})
    assert app.engine.reconcile_after_crash() == [job.id]
    settled = app.store.job(job.id)
    assert settled.status == "succeeded"
    assert settled.detail["note"] == "recorded after a restart (no flow changes to deploy)"
