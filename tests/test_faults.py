"""Faults × components (issue #9): what a sync does when Git, the Flow App or the npm
registry misbehaves, and when the data directory fills up.

Every case runs the real thing: a running sidecar (its own service loop) against Git
over HTTPS (git http-backend behind TLS) and over SSH (sshd), a real Node-RED and a
real npm registry, with `tests.servers.faultproxy.FaultProxy` on 127.0.0.1 between the
sidecar and the component. For each fault × component cell the test proves:

1. the sidecar stays up: the failing sync is a `failed` job and the loop thread lives on;
2. the Flow App keeps its last good flows: same `rev`, same flows, and they still run
   (a heartbeat inject every 0.1 s keeps counting, from the last good revision);
3. the status names the fault (reason code and a message with the host, "timed out",
   "connection refused", "HTTP 500" ...) and the backoff retry is scheduled 30 s out;
4. the job records it (status, error code, error message);
5. when the fault clears, the loop's own scheduled retry (a `timer` job that nobody
   triggered: the test only lets the 30 s backoff elapse on the loop's clock) applies
   the commit.

"slow" is 30–100 ms added to every chunk in both directions: the sync succeeds, slower,
within the same short timeouts (a slow server is not a dead one); a server that stops
answering is the "hang" and "blackhole" columns and is stopped by those timeouts.
Timeouts are short so every case ends in seconds: git 3 s, Admin API 2 s, npm install
4 s (2 attempts, D4).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from sidecar.adapters.store import Job
from sidecar.core.errors import RECOVERY_FAILED_MESSAGE
from tests import flowgen
from tests.conftest import sidecar_config
from tests.constants import CANARY, GIT_USER
from tests.servers.common import die_with_parent, free_port, make_tls_cert
from tests.servers.faultproxy import FaultProxy
from tests.servers.githttp import GitHttpServer
from tests.servers.gitrepo import GitRepoFactory, RemoteRepo
from tests.servers.sshgit import SshGitServer, make_client_key
from tests.waiting import wait_for

GIT_TIMEOUT = 3.0
NODERED_TIMEOUT = 2.0
NPM_TIMEOUT = 4.0
NPM_ATTEMPTS = 2
BACKOFF = 30.0  # the first retry after a failure (core.schedule.FIRST_RETRY)
BIG = 512 * 1024  # an incompressible file in the new commit: a fetch that takes many packets
MID_TRANSFER = 20_000  # bytes server → client before a hang/reset: well into the pack
CLI = [sys.executable, "-m", "sidecar"]
ROOT = Path(__file__).resolve().parents[1]


# --- the matrix ---------------------------------------------------------------------------

@dataclass
class Cell:
    column: str
    mode: str | None = None  # FaultProxy mode; None: the fault is made another way (see the test)
    params: dict = field(default_factory=dict)
    code: str = ""  # the reason code the failed job and the status carry ("" = the sync succeeds)
    words: tuple[str, ...] = ()  # each must be in the message (case-insensitive); a tuple inside = any of
    max_seconds: float = 15.0  # wall clock from the trigger to the failed job
    min_seconds: float = 0.0  # (slow) at least this long: the delay was really there


def case(row: str, cell: Cell, expect: str):
    return pytest.param(cell, id=cell.column.replace(" ", "-"),
                        marks=pytest.mark.matrix("faults", row, cell.column, expect=expect))


HTTPS = "Git over HTTPS"
SSH = "Git over SSH"
NODERED = "Node-RED Admin API"
NPM = "npm registry"

HTTPS_CASES = [
    case(HTTPS, Cell("refuse", "refuse", code="git_unreachable", words=("{server}", "connection refused"), max_seconds=5),
         "fails at once: git_unreachable naming host:port and 'connection refused'; last flows keep running; the retry applies the commit"),
    case(HTTPS, Cell("blackhole", "blackhole", code="git_timeout", words=("{server}", "timed out", "3 s"), max_seconds=GIT_TIMEOUT + 4),
         "stopped by the 3 s timeout: git_timeout naming host:port; last flows keep running; the retry applies the commit"),
    case(HTTPS, Cell("hang mid-transfer", "hang_after", {"after_bytes": MID_TRANSFER}, code="git_timeout",
                     words=("git fetch", "{server}", "timed out", "3 s"), max_seconds=GIT_TIMEOUT + 4),
         "the fetch stalls after 20 kB and is killed at 3 s: git_timeout naming host:port; no partial objects kept; the retry applies the commit"),
    case(HTTPS, Cell("reset mid-transfer", "reset_after", {"after_bytes": MID_TRANSFER}, code="git_unreachable",
                     words=("{server}", "connection reset"), max_seconds=5),
         "RST after 20 kB of the pack: git_unreachable naming host:port and 'Connection reset'; no partial objects kept; the retry applies the commit"),
    case(HTTPS, Cell("slow", "latency", {"latency": 0.03}, min_seconds=0.3),
         "30 ms per chunk each way: the sync succeeds, slower, within the 3 s git timeout"),
    case(HTTPS, Cell("HTTP 500", None, code="git_unreachable", words=("{server}", "HTTP 500"), max_seconds=5),
         "the server answers HTTP 500: git_unreachable naming host:port and 'HTTP 500'; last flows keep running; the retry applies the commit"),
]

SSH_CASES = [
    case(SSH, Cell("refuse", "refuse", code="git_unreachable", words=("{server}", "connection refused"), max_seconds=5),
         "fails at once: git_unreachable quoting ssh's 'connect to host 127.0.0.1 port N: Connection refused'; the retry applies the commit"),
    case(SSH, Cell("blackhole", "blackhole", code="git_timeout", words=("git ls-remote", "{server}", "timed out", "3 s"),
                   max_seconds=GIT_TIMEOUT + 4),
         "no SSH banner: git ls-remote stopped by the 3 s timeout (git_timeout naming host:port); the retry applies the commit"),
    case(SSH, Cell("hang mid-transfer", "hang_after", {"after_bytes": MID_TRANSFER}, code="git_timeout",
                   words=("git fetch", "{server}", "timed out", "3 s"), max_seconds=GIT_TIMEOUT + 4),
         "the fetch stalls after 20 kB and is killed at 3 s: git_timeout naming host:port; the retry applies the commit"),
    case(SSH, Cell("reset mid-transfer", "reset_after", {"after_bytes": MID_TRANSFER}, code="git_unreachable",
                   words=("{server}", ("broken pipe", "connection reset", "closed by remote host")), max_seconds=5),
         "RST after 20 kB of the pack: git_unreachable naming host:port and ssh's 'Broken pipe'; no partial objects kept; the retry applies the commit"),
    case(SSH, Cell("slow", "latency", {"latency": 0.03}, min_seconds=0.3),
         "30 ms per chunk each way: the sync succeeds, slower, within the 3 s git timeout"),
    case(SSH, Cell("HTTP 500", "garbage", code="git_unreachable", words=("{server}", "connection closed"), max_seconds=5),
         "HTTP 500 has no SSH form; its equivalent, an HTTP 500 answer instead of an SSH banner, fails at once "
         "(git_unreachable naming host:port, 'Connection closed'); the retry applies the commit"),
]

NODERED_CASES = [
    case(NODERED, Cell("refuse", "refuse", code="nodered_unreachable", words=("{url}", "connection refused"), max_seconds=5),
         "fails at once: nodered_unreachable naming the URL and 'connection refused'; nothing deployed; the retry deploys"),
    case(NODERED, Cell("blackhole", "blackhole", code="nodered_unreachable", words=("{url}", "GET /flows", "timed out", "2 s"),
                       max_seconds=NODERED_TIMEOUT + 4),
         "stopped by the 2 s Admin API timeout: nodered_unreachable naming the URL, 'GET /flows' and 'timed out'; the retry deploys"),
    case(NODERED, Cell("hang mid-transfer", "hang_after", {"after_bytes": 1500}, code="nodered_unreachable",
                       words=("{url}", "GET /flows", "timed out", "2 s"), max_seconds=NODERED_TIMEOUT + 4),
         "GET /flows stalls mid-body and is stopped at 2 s: nodered_unreachable, 'timed out'; nothing deployed; the retry deploys"),
    case(NODERED, Cell("reset mid-transfer", "reset_after", {"after_bytes": 1500}, code="nodered_unreachable",
                       words=("{url}", "GET /flows", "connection reset"), max_seconds=5),
         "RST mid-way through GET /flows: nodered_unreachable naming the URL and 'connection reset'; nothing deployed; the retry deploys"),
    case(NODERED, Cell("slow", "latency", {"latency": 0.05}, min_seconds=0.5),
         "50 ms per chunk each way (API and comms websocket): the deploy succeeds and is confirmed, within the 2 s timeout"),
    case(NODERED, Cell("HTTP 500", "http500", code="nodered_unreachable", words=("HTTP 500", "GET /flows"), max_seconds=5),
         "every Admin API call answers 500: nodered_unreachable 'answered HTTP 500 on GET /flows'; nothing deployed; the retry deploys"),
]

NPM_CASES = [
    case(NPM, Cell("refuse", "refuse", code="recovery_failed", words=("ECONNREFUSED",), max_seconds=10),
         "both install attempts fail (ECONNREFUSED); status: the D4 message with the module; last flows keep running; the retry installs and deploys"),
    pytest.param(Cell("blackhole", "blackhole", code="recovery_failed", words=("{registry}", "timed out"),
                      max_seconds=NPM_ATTEMPTS * (NPM_TIMEOUT + 2) + 4), id="blackhole",
                 marks=[pytest.mark.slow, pytest.mark.matrix(
                     "faults", NPM, "blackhole", expect="each attempt is stopped by the 4 s install timeout "
                     "('the registry 127.0.0.1:N timed out'), then D4; last flows keep running; the retry installs and deploys")]),
    case(NPM, Cell("hang mid-transfer", "hang_after", {"after_bytes": 400}, code="recovery_failed", words=("{registry}", "timed out"),
                   max_seconds=NPM_ATTEMPTS * (NPM_TIMEOUT + 2) + 4),
         "the packument stalls mid-body; each attempt is stopped at 4 s ('timed out'), then D4; the retry installs and deploys"),
    case(NPM, Cell("reset mid-transfer", "reset_after", {"after_bytes": 400}, code="recovery_failed", words=("ECONNRESET",), max_seconds=10),
         "RST mid-way through the packument: both attempts fail with ECONNRESET, then D4; the retry installs and deploys"),
    case(NPM, Cell("slow", "latency", {"latency": 0.1}, min_seconds=0.4),
         "100 ms per chunk each way: the install succeeds, slower, within the 4 s install timeout, and the flows deploy"),
    case(NPM, Cell("HTTP 500", "http500", code="recovery_failed", words=("E500",), max_seconds=10),
         "the registry answers 500: both attempts fail with E500, then D4; last flows keep running; the retry installs and deploys"),
]


# --- flows that show they run --------------------------------------------------------------

def flows(variant: str, extra: list[dict] | None = None) -> list[dict]:
    """The example flows plus a heartbeat: every 0.1 s it counts `hb` and stores its variant."""
    beat = f"global.set('hb_variant', {json.dumps(variant)}); global.set('hb', (global.get('hb') || 0) + 1); return null;"
    return flowgen.example(variant=variant) + [
        {"id": "hb", "type": "tab", "label": "Heartbeat", "disabled": False, "info": ""},
        {"id": "hbi", "type": "inject", "z": "hb", "name": "beat", "props": [{"p": "payload"}], "repeat": "0.1", "crontab": "",
         "once": True, "onceDelay": 0.1, "topic": "", "payload": "", "payloadType": "date", "x": 120, "y": 60, "wires": [["hbf"]]},
        {"id": "hbf", "type": "function", "z": "hb", "name": "count", "func": beat, "outputs": 1, "initialize": "",
         "finalize": "", "libs": [], "x": 300, "y": 60, "wires": [[]]},
    ] + (extra or [])


def files(variant: str, big: bool = False, extra: list[dict] | None = None) -> dict:
    out: dict = {"flows.json": flowgen.dumps(flows(variant, extra))}
    if big:
        out["assets/big.bin"] = os.urandom(BIG)
    return out


def assert_runs(nr, variant: str) -> None:
    """Node-RED runs `variant`: its heartbeat reports that variant and keeps counting."""
    wait_for(lambda: nr.global_value("hb_variant") == variant, what=f"flows {variant!r} to run")
    before = nr.global_value("hb")
    wait_for(lambda: (nr.global_value("hb") or 0) >= before + 2, timeout=5, what="the heartbeat to advance")
    assert nr.global_value("hb_variant") == variant


# --- the running sidecar --------------------------------------------------------------------

_names = itertools.count(1)


def new_remote(remotes: GitRepoFactory) -> RemoteRepo:
    return remotes.create(f"faults-{next(_names)}")


def job_after(app, after_id: int, timeout: float = 60.0) -> Job:
    """The first job after `after_id` once it has finished."""
    def done():
        jobs = [j for j in app.store.jobs(20) if j.id > after_id]
        return jobs and jobs[-1].status != "running" and jobs[-1]
    return wait_for(done, timeout=timeout, what=f"a job after #{after_id} to finish")


@dataclass
class Baseline:
    job: Job
    sha: str
    rev: str
    flows: list


def start(app, nr, sha: str) -> Baseline:
    """Start the sidecar (API-less: App + its loop); the startup sync applies `sha`."""
    app.start()
    job = job_after(app, 0)
    assert app.service.wait_idle(30)
    assert job.status == "succeeded" and job.trigger == "startup", (job.error_code, job.error_message)
    assert app.board.current()["local"]["sha"] == sha
    assert_runs(nr, "v1")
    current, rev = nr.flows()
    return Baseline(job, sha, rev, current)


def fire_scheduled_retry(app) -> None:
    """Let the backoff elapse on the loop's own clock and wake it: the loop then starts the
    retry it scheduled (a `timer` job); the test triggers nothing."""
    due = app.board.current()["next_sync_at"]
    skew = due - time.time() + 0.5
    app.service.now = lambda: time.time() + skew
    app.service.wake()  # now, rather than at the loop's next 5 s tick


def sync_under_fault(app, base: Baseline) -> tuple[Job, float]:
    t0 = time.monotonic()
    app.service.trigger("webhook")  # a push was announced: the loop runs a sync
    job = job_after(app, base.job.id)
    elapsed = time.monotonic() - t0
    assert app.service.wait_idle(30)  # the loop has taken note of the result and scheduled the next check
    return job, elapsed


def check_failed(app, nr, base: Baseline, job: Job, elapsed: float, cell: Cell, subs: dict) -> dict:
    """1–4: the loop lives, the Flow App is untouched and running, status and job name the fault."""
    print(f"\n{cell.column}: {job.error_code}: {job.error_message} ({elapsed:.1f} s)")
    assert job.status == "failed", (job.status, job.error_code, job.error_message)
    assert job.trigger == "webhook"
    assert elapsed <= cell.max_seconds, f"the failed sync took {elapsed:.1f} s (limit {cell.max_seconds} s)"
    assert app.service.running, "the service loop died"
    assert job.error_code == cell.code, (job.error_code, job.error_message)
    message = job.error_message.lower()
    for word in cell.words:
        options = word if isinstance(word, tuple) else (word,)
        assert any(o.format(**subs).lower() in message for o in options), f"{options} not in {job.error_message!r}"
    snap = app.board.current()
    assert snap["state"] == "error"
    assert (snap["reason_code"], snap["reason_message"]) == (job.error_code, job.error_message)
    assert snap["local"]["sha"] == base.sha and snap["consecutive_failures"] == 1
    # the loop scheduled its retry with the first backoff step (30 s), not a full interval
    delay = snap["next_sync_at"] - job.finished_at
    assert BACKOFF - 2 <= delay <= BACKOFF + 2, delay
    current, rev = nr.flows()
    assert rev == base.rev and current == base.flows  # not a node changed
    assert_runs(nr, "v1")  # ... and the last good flows still run
    return snap


def check_recovers(app, nr, failed: Job, sha: str, variant: str = "v2") -> Job:
    """5: once the fault is gone, the loop's own scheduled retry applies the commit."""
    fire_scheduled_retry(app)
    job = job_after(app, failed.id)
    assert job.trigger == "timer", job.trigger  # started by the loop's schedule, not by the test
    assert job.status == "succeeded" and job.to_commit == sha, (job.status, job.error_code, job.error_message)
    snap = wait_for(lambda: (s := app.board.current())["state"] == "in_sync" and s, what="the status to say in_sync")
    assert snap["local"]["sha"] == sha
    assert snap["reason_code"] == "" and snap["consecutive_failures"] == 0
    assert_runs(nr, variant)
    assert app.service.running
    return job


def check_slow(app, nr, job: Job, elapsed: float, cell: Cell, sha: str, proxy: FaultProxy, seen_before: int) -> None:
    print(f"\n{cell.column}: {job.status} in {elapsed:.2f} s")
    assert job.status == "succeeded" and job.to_commit == sha, (job.error_code, job.error_message)
    assert elapsed >= cell.min_seconds, f"{elapsed:.2f} s: the delay did not apply"
    assert proxy.connections > seen_before  # the traffic went through the slowed proxy
    assert app.board.current()["state"] == "in_sync"
    assert_runs(nr, "v2")


def assert_no_partial_fetch(app, sha: str) -> None:
    """A fetch cut off mid-transfer leaves nothing behind: not the new commit without its files
    (later syncs would skip the fetch and fail to read it), not a half-written pack."""
    assert not app.git.has_commit(sha)
    assert not list((app.data_dir / "repo.git" / "objects").rglob("tmp_*"))


def inject(proxy: FaultProxy, cell: Cell) -> None:
    proxy.set_mode(cell.mode, **cell.params)
    proxy.disconnect_all()  # kept-alive connections go, as when a server dies; byte counts start afresh


def clear(proxy: FaultProxy) -> None:
    proxy.set_mode(None)
    proxy.disconnect_all()


# --- servers shared by the module ---------------------------------------------------------

@pytest.fixture(scope="module")
def remotes(tmp_path_factory) -> GitRepoFactory:
    return GitRepoFactory(tmp_path_factory.mktemp("fault-remotes"))


@pytest.fixture(scope="module")
def https_server(tmp_path_factory, remotes):
    cert, key = make_tls_cert(tmp_path_factory.mktemp("fault-tls"))
    srv = GitHttpServer(remotes.root, GIT_USER, CANARY, certfile=cert, keyfile=key).start()
    srv.cafile = cert
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory, remotes):
    srv = SshGitServer(tmp_path_factory.mktemp("fault-sshd"), remotes.root).start()
    key, pub = make_client_key(tmp_path_factory.mktemp("fault-key"))
    srv.add_client_key(pub)
    srv.client_key = Path(key).read_text()
    yield srv
    srv.stop()


def git_extra(**repository) -> dict:
    return {"repository": {"timeout": GIT_TIMEOUT, **repository}}


# --- Git over HTTPS -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", HTTPS_CASES)
def test_git_over_https(cell, flowapp, remotes, https_server, make_sidecar):
    remote = new_remote(remotes)
    sha1 = remote.commit(files("v1"), "v1")
    with FaultProxy("127.0.0.1", https_server.port) as proxy:
        if cell.mode is None:  # HTTP 500 comes from the HTTPS server itself (the proxy cannot see into TLS)
            url = https_server.url_for(remote.name)
        else:
            url = f"{proxy.url_for('https')}/{remote.name}.git"
        server = f"127.0.0.1:{urlsplit(url).port}"
        app = make_sidecar(flowapp, url, "https", extra=git_extra(
            username="global.SECRETS.git.username", password="global.SECRETS.git.token", ca_file=https_server.cafile))
        base = start(app, flowapp, sha1)
        sha2 = remote.commit(files("v2", big=True), "v2 with a large file")
        seen = proxy.connections
        if cell.mode is None:
            https_server.fault = {"status": 500}
        else:
            inject(proxy, cell)
        try:
            job, elapsed = sync_under_fault(app, base)
        finally:
            https_server.fault = None
            clear(proxy)
        if not cell.code:
            check_slow(app, flowapp, job, elapsed, cell, sha2, proxy, seen)
            return
        check_failed(app, flowapp, base, job, elapsed, cell, {"server": server})
        assert CANARY not in job.error_message
        assert_no_partial_fetch(app, sha2)
        check_recovers(app, flowapp, job, sha2)


# --- Git over SSH ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", SSH_CASES)
def test_git_over_ssh(cell, flowapp, remotes, ssh_server, make_sidecar, secrets_dir):
    remote = new_remote(remotes)
    sha1 = remote.commit(files("v1"), "v1")
    with FaultProxy("127.0.0.1", ssh_server.port) as proxy:
        # the sidecar connects to the proxy's port: known_hosts names that address
        (secrets_dir / "git" / "ssh_key").write_text(ssh_server.client_key)
        line = ssh_server.host_key_line().replace(f"]:{ssh_server.port} ", f"]:{proxy.port} ")
        (secrets_dir / "git" / "known_hosts").write_text(line + "\n")
        url = ssh_server.url_for(remote.name).replace(f":{ssh_server.port}/", f":{proxy.port}/")
        app = make_sidecar(flowapp, url, "ssh", extra=git_extra(
            ssh_key="global.SECRETS.git.ssh_key", known_hosts="global.SECRETS.git.known_hosts"))
        base = start(app, flowapp, sha1)
        sha2 = remote.commit(files("v2", big=True), "v2 with a large file")
        seen = proxy.connections
        inject(proxy, cell)
        try:
            job, elapsed = sync_under_fault(app, base)
        finally:
            clear(proxy)
        if not cell.code:
            check_slow(app, flowapp, job, elapsed, cell, sha2, proxy, seen)
            return
        check_failed(app, flowapp, base, job, elapsed, cell, {"server": f"127.0.0.1:{proxy.port}"})
        assert "PRIVATE KEY" not in job.error_message
        assert_no_partial_fetch(app, sha2)
        check_recovers(app, flowapp, job, sha2)


# --- the Node-RED Admin API -----------------------------------------------------------------

@pytest.mark.parametrize("cell", NODERED_CASES)
def test_nodered_admin_api(cell, flowapp, repos, make_sidecar):
    remote = repos.create("flows")
    sha1 = remote.commit(files("v1"), "v1")
    with FaultProxy("127.0.0.1", urlsplit(flowapp.url).port) as proxy:
        url = proxy.url_for("http")  # the Admin API and its comms websocket, both through the proxy
        app = make_sidecar(flowapp, remote.file_url, extra={"flow_app": {"url": url, "timeout": NODERED_TIMEOUT}})
        base = start(app, flowapp, sha1)
        sha2 = remote.commit(files("v2"), "v2")
        seen = proxy.connections
        inject(proxy, cell)
        try:
            job, elapsed = sync_under_fault(app, base)
        finally:
            clear(proxy)
        if not cell.code:
            check_slow(app, flowapp, job, elapsed, cell, sha2, proxy, seen)
            return
        assert job.phase == "plan" and job.to_commit == sha2  # Git was fine; the Flow App was not
        check_failed(app, flowapp, base, job, elapsed, cell, {"url": url})
        assert "nr-admin-" not in job.error_message  # the admin token is never shown
        check_recovers(app, flowapp, job, sha2)


# --- the npm registry -----------------------------------------------------------------------

MODULE, TYPE = "node-red-contrib-fg-gamma", "fg-gamma"


def with_gamma() -> list[dict]:
    """A tab using fg-gamma, a node type the Flow App lacks until its module is installed."""
    return [{"id": "dep", "type": "tab", "label": "Needs fg-gamma", "disabled": False, "info": ""},
            {"id": "depi", "type": "inject", "z": "dep", "props": [{"p": "payload"}], "repeat": "", "once": True,
             "onceDelay": 0.1, "payload": "hello", "payloadType": "str", "x": 100, "y": 60, "wires": [["depn"]]},
            {"id": "depn", "type": TYPE, "z": "dep", "name": "", "x": 300, "y": 60, "wires": [["depf"]]},
            {"id": "depf", "type": "function", "z": "dep", "func": "global.set('gamma', msg.payload); return null;",
             "outputs": 1, "x": 500, "y": 60, "wires": [[]]}]


@pytest.mark.parametrize("cell", NPM_CASES)
def test_npm_registry(cell, nr_with_plugin, registry, test_catalog, repos, make_sidecar):
    nr = nr_with_plugin
    remote = repos.create("flows")
    sha1 = remote.commit(files("v1"), "v1")
    with FaultProxy("127.0.0.1", registry.port) as proxy:
        extra = {"flow_app": {"user_dir": str(nr.user_dir)},
                 "dependencies": {"registry": proxy.url_for("http") + "/", "catalog": str(test_catalog), "retry_backoff": 0.2,
                                  "attempts": NPM_ATTEMPTS, "install_timeout": NPM_TIMEOUT}}
        app = make_sidecar(nr, remote.file_url, extra=extra)
        base = start(app, nr, sha1)
        sha2 = remote.commit(files("v2", extra=with_gamma()), "v2 needs fg-gamma")
        seen = proxy.connections
        inject(proxy, cell)
        try:
            job, elapsed = sync_under_fault(app, base)
        finally:
            clear(proxy)
        if not cell.code:
            check_slow(app, nr, job, elapsed, cell, sha2, proxy, seen)
            assert job.detail["installed"] == [f"{MODULE}@0.3.0"]
            wait_for(lambda: nr.global_value("gamma"), what="the fg-gamma node to run")
            return
        # D4: the status says the exact words; the job keeps every attempt and the reason, which names the fault
        check_failed(app, nr, base, job, elapsed, replace(cell, words=()), {})
        assert job.error_message == RECOVERY_FAILED_MESSAGE
        attempts = [a for a in job.detail["install_log"] if a["target"] == MODULE]
        assert [a["attempt"] for a in attempts] == list(range(1, NPM_ATTEMPTS + 1)) and all(a["rc"] != 0 for a in attempts)
        (failure,) = job.detail["recovery_failed"]
        print(f"  reason: {failure['reason']}")
        assert failure["module"] == MODULE and failure["types"] == [TYPE]
        for word in cell.words:
            assert word.format(registry=f"127.0.0.1:{proxy.port}").lower() in failure["reason"].lower(), failure["reason"]
        snap = app.board.current()
        assert snap["recovery"]["failed_modules"] == [MODULE] and snap["recovery"]["unresolved_types"] == [TYPE]
        assert not (nr.user_dir / "node_modules" / MODULE).exists()  # nothing half-installed
        job = check_recovers(app, nr, job, sha2)
        assert job.detail["installed"] == [f"{MODULE}@0.3.0"]
        wait_for(lambda: nr.global_value("gamma"), what="the fg-gamma node to run")


# --- a full disk in data_dir ----------------------------------------------------------------

class MountNamespace:
    """A private mount namespace (TESTBED.md §5, "Full disk for one directory"), kept alive by
    a `sleep` so several runs of the sidecar CLI can share one tiny tmpfs over data_dir.
    Nothing of it is visible outside: the host's mount table and directories are untouched."""

    def __init__(self) -> None:
        self.userns = os.getuid() != 0  # unprivileged: map ourselves to root in a user namespace
        argv = ["unshare", *(["--user", "--map-root-user"] if self.userns else []), "--mount", "--propagation", "private",
                "sleep", "600"]
        mine = os.readlink("/proc/self/ns/mnt")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=die_with_parent)  # noqa: PLW1509 - TESTBED: never outlive pytest

        def entered():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return os.readlink(f"/proc/{self.proc.pid}/ns/mnt") != mine and \
                    Path(f"/proc/{self.proc.pid}/comm").read_text().strip() == "sleep"
            except OSError:
                return False
        if wait_for(entered, timeout=10, what="unshare") == "exited":
            raise RuntimeError(f"unshare failed: {self.proc.stderr.read().decode(errors='replace')}")

    def argv(self, *cmd: str) -> list[str]:
        return ["nsenter", "-t", str(self.proc.pid), *(["-U", "--preserve-credentials"] if self.userns else []), "-m", *cmd]

    def run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*cmd), check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.run(*CLI, *args, timeout=timeout)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture
def mount_ns():
    # The full-disk cases are part of the matrix: a machine that cannot run them fails them
    # (util-linux is essential on Debian; unprivileged user namespaces cover non-root runs).
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.fail("unshare/nsenter (util-linux) are not installed: the full-disk cases cannot run")
    try:
        ns = MountNamespace()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"no private mount namespace here, so the full-disk cases cannot run: {exc}")
    yield ns
    ns.close()


def tiny_data_dir(ns: MountNamespace, tmp_path: Path, flowapp, secrets_dir, url: str, extra: dict | None = None) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    res = ns.run("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(data))
    assert res.returncode == 0, res.stderr
    cfg = tmp_path / "sidecar.yaml"
    cfg.write_text(yaml.safe_dump(sidecar_config(tmp_path, flowapp, secrets_dir, url, "file", extra)))
    return data, cfg


def integrity(ns: MountNamespace, data: Path) -> str:
    code = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])"
    res = ns.run(sys.executable, "-c", code, str(data / "state.db"))
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.mark.matrix("faults", "data_dir", "full disk", expect=(
    "`sync --once` fails (exit 1, no traceback) with git_error 'no space left on device' in job and status; last flows keep "
    "running; the state DB passes integrity_check; once there is room the next sync applies the commit"))
def test_data_dir_full_during_fetch(mount_ns, flowapp, repos, secrets_dir, tmp_path):
    ns = mount_ns
    remote = repos.create("flows")
    sha1 = remote.commit(files("v1"), "v1")
    data, cfg = tiny_data_dir(ns, tmp_path, flowapp, secrets_dir, remote.file_url)
    res = ns.cli("sync", "--once", "--config", str(cfg), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["to_commit"] == sha1
    assert_runs(flowapp, "v1")
    good_flows, good_rev = flowapp.flows()

    # a commit with 2 MiB of incompressible data: the fetch cannot fit into the 1 MiB data_dir
    sha2 = remote.commit({**files("v2"), "assets/big.bin": os.urandom(2 * 1024 * 1024)}, "v2 with a 2 MiB file")
    res = ns.cli("sync", "--once", "--config", str(cfg), "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    job = json.loads(res.stdout)
    assert (job["status"], job["error_code"], job["phase"], job["to_commit"]) == ("failed", "git_error", "fetch", sha2), job
    assert "no space left on device" in job["error_message"] and "data_dir" in job["error_message"], job["error_message"]
    # the Flow App was not touched, and its flows still run
    assert flowapp.flows() == (good_flows, good_rev)
    assert_runs(flowapp, "v1")
    # the state database is whole and says what happened; the half-written pack was removed
    assert integrity(ns, data) == "ok"
    status = json.loads(ns.cli("status", "--config", str(cfg), "--json").stdout)
    assert status["status"]["state"] == "error" and status["status"]["reason_code"] == "git_error"
    assert "no space left on device" in status["status"]["reason_message"]
    assert status["status"]["local"]["sha"] == sha1
    jobs = json.loads(ns.cli("jobs", "--config", str(cfg), "--json").stdout)
    assert [(j["id"], j["status"]) for j in jobs] == [(2, "failed"), (1, "succeeded")]
    leftovers = ns.run("find", str(data / "repo.git" / "objects"), "-name", "tmp_*")
    assert leftovers.returncode == 0 and leftovers.stdout.strip() == "", leftovers.stdout

    # room again (the volume grows): the next sync fetches and applies the commit
    res = ns.run("mount", "-o", "remount,size=16m", str(data))
    assert res.returncode == 0, res.stderr
    res = ns.cli("sync", "--once", "--config", str(cfg), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    job = json.loads(res.stdout)
    assert job["status"] == "succeeded" and job["to_commit"] == sha2 and job["attempts"] == 2
    assert_runs(flowapp, "v2")
    jobs = json.loads(ns.cli("jobs", "--config", str(cfg), "--json").stdout)
    assert [(j["id"], j["status"]) for j in jobs] == [(3, "succeeded"), (2, "failed"), (1, "succeeded")]
    assert integrity(ns, data) == "ok"


@pytest.mark.matrix("faults", "data_dir", "full disk", expect=(
    "a running sidecar whose data_dir is 100% full: the sync fails, the loop lives on and the status names the full "
    "disk; last flows keep running; after space is freed a Force Pull applies the commit; no job left running"))
def test_data_dir_full_while_running(mount_ns, flowapp, repos, secrets_dir, tmp_path):
    ns = mount_ns
    remote = repos.create("flows")
    remote.commit(files("v1"), "v1")
    address = f"127.0.0.1:{free_port()}"
    api = {"api": {"grpc_listen": address, "http_listen": f"127.0.0.1:{free_port()}"}}
    data, cfg = tiny_data_dir(ns, tmp_path, flowapp, secrets_dir, remote.file_url, api)
    remote_cli = ("--address", address, "--token-file", str(data / "api-token"))
    with open(tmp_path / "serve.log", "wb") as log:
        serve = subprocess.Popen(ns.argv(*CLI, "serve", "--config", str(cfg)), cwd=ROOT, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=die_with_parent)  # noqa: PLW1509 - TESTBED: never outlive pytest
    try:
        assert_runs(flowapp, "v1")  # the startup sync
        good_flows, good_rev = flowapp.flows()

        def status() -> dict:
            res = ns.cli("status", *remote_cli, "--json")
            return json.loads(res.stdout) if res.returncode == 0 else {}
        wait_for(lambda: status().get("state") == "SYNC_STATE_IN_SYNC", what="in_sync over the API")

        sha2 = remote.commit(files("v2"), "v2")
        ns.run("sh", "-c", f'cat /dev/zero > "{data}/filler"')  # fails once the disk is full: that is the point
        assert ns.run("df", "--output=avail", str(data)).stdout.split()[-1] == "0"
        assert json.loads(ns.cli("pull", *remote_cli, "--json").stdout)["result"] == "queued"
        snap = wait_for(lambda: (s := status()).get("reason_code") and s, timeout=30, what="the failure in the status")
        text = snap["reason_message"].lower()
        assert any(w in text for w in ("no space left on device", "database or disk is full", "disk i/o error")), snap
        assert serve.poll() is None, "the sidecar exited"
        assert flowapp.flows() == (good_flows, good_rev)
        assert_runs(flowapp, "v1")

        assert ns.run("rm", "-f", str(data / "filler")).returncode == 0
        res = ns.cli("pull", *remote_cli, "--wait", "--wait-timeout", "30", "--json")  # the same loop does the work
        assert res.returncode == 0, res.stdout + res.stderr
        job = json.loads(res.stdout)
        assert job["to_commit"] == sha2
        assert_runs(flowapp, "v2")
        wait_for(lambda: status().get("state") == "SYNC_STATE_IN_SYNC", what="in_sync after the disk has room")
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    jobs = json.loads(ns.cli("jobs", "--config", str(cfg), "--json").stdout)
    assert jobs[0]["status"] == "succeeded" and jobs[0]["to_commit"] == sha2
    assert all(j["status"] != "running" for j in jobs), jobs
    assert integrity(ns, data) == "ok"


@pytest.mark.matrix("faults", "data_dir", "full disk", expect=(
    "data_dir already full when the CLI starts: exit 1 with one line naming the data directory, no traceback; "
    "the Flow App untouched; once there is room the sync applies the commit"))
def test_data_dir_full_before_start(mount_ns, flowapp, repos, secrets_dir, tmp_path):
    ns = mount_ns
    remote = repos.create("flows")
    sha = remote.commit(files("v1"), "v1")
    data, cfg = tiny_data_dir(ns, tmp_path, flowapp, secrets_dir, remote.file_url)
    before = flowapp.flows()
    ns.run("sh", "-c", f'cat /dev/zero > "{data}/filler"')
    assert ns.run("df", "--output=avail", str(data)).stdout.split()[-1] == "0"
    res = ns.cli("sync", "--once", "--config", str(cfg), "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith(f"error: the data directory {data} cannot be used: "), res.stderr
    assert flowapp.flows() == before
    assert ns.run("rm", "-f", str(data / "filler")).returncode == 0
    res = ns.cli("sync", "--once", "--config", str(cfg), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["to_commit"] == sha
    assert_runs(flowapp, "v1")
    assert integrity(ns, data) == "ok"
