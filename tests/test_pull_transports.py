"""Git over HTTPS (basic auth through git http-backend) and SSH (sshd, encrypted key,
strict known hosts), plus the cheap no-change poll."""
from __future__ import annotations

import os
import time

import pytest

from sidecar.core.schedule import Trigger
from tests import flowgen
from tests.constants import CANARY
from tests.servers.sshgit import SshGitServer, make_client_key




def https_extra(srv) -> dict:
    return {"repository": {"username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token", "ca_file": srv.cafile}}


def test_https_with_basic_auth_and_cheap_no_change_poll(flowapp, repos, https_git, make_sidecar):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows over HTTPS")
    app = make_sidecar(flowapp, https_git.url_for("flows"), protocol="https", extra=https_extra(https_git))
    job = app.store.job(app.engine.run(Trigger("startup")))
    assert job.status == "succeeded", job.error_message
    assert app.board.current()["local"]["sha"] == sha
    # the token is nowhere in the local repository's config
    assert CANARY not in (app.data_dir / "repo.git" / "config").read_text()

    # A timer check with nothing new: one round trip to the remote, nothing fetched,
    # no call to the Flow App, no deploy.
    https_git.requests.clear()
    app.git.round_trips = 0
    app.flowapp.calls = 0
    objects_before = sorted(p.name for p in (app.data_dir / "repo.git" / "objects").rglob("*"))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    job = app.store.job(app.engine.run(Trigger("timer")))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert job.status == "noop"
    assert app.git.round_trips == 1
    assert app.flowapp.calls == 0
    served = https_git.requests.snapshot()
    assert all("git-receive-pack" not in path for _, path in served)
    # ls-remote over protocol v2: one ref advertisement + one ls-refs command, no fetch
    assert len([1 for m, p in served if m == "POST" and "git-upload-pack" in p]) <= 1
    assert sorted(p.name for p in (app.data_dir / "repo.git" / "objects").rglob("*")) == objects_before
    print(f"\nno-change poll over HTTPS: wall {wall * 1000:.1f} ms, sidecar CPU {cpu * 1000:.1f} ms")


def test_https_wrong_token_is_a_clear_error(flowapp, repos, https_git, make_sidecar, secrets_dir):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    (secrets_dir / "git" / "wrong").write_text("not-the-token")
    extra = https_extra(https_git)
    extra["repository"]["password"] = "global.SECRETS.git.wrong"
    app = make_sidecar(flowapp, https_git.url_for("flows"), protocol="https", extra=extra)
    job = app.store.job(app.engine.run(Trigger("force")))
    assert job.status == "failed" and job.error_code == "git_auth_failed"
    assert app.board.current()["reason_message"] == "the Git server refused the credentials"
    assert flowapp.flows()[0] == []
    # rotation: fix the secret file, no restart, the next sync works
    (secrets_dir / "git" / "wrong").write_text(CANARY)
    job = app.store.job(app.engine.run(Trigger("force")))
    assert job.status == "succeeded", job.error_message


@pytest.fixture
def ssh_git(tmp_path, repos):
    srv = SshGitServer(tmp_path / "sshd", repos.root).start()
    yield srv
    srv.stop()


def ssh_secrets(secrets_dir, tmp_path, srv, passphrase: str | None):
    key_path, pub = make_client_key(tmp_path / "client-key", passphrase=passphrase)
    srv.add_client_key(pub)
    (secrets_dir / "git" / "ssh_key").write_text(open(key_path).read())
    os.unlink(key_path)  # the sidecar only ever sees the secret source
    if passphrase:
        (secrets_dir / "git" / "ssh_passphrase").write_text(passphrase)
    (secrets_dir / "git" / "known_hosts").write_text(srv.host_key_line() + "\n")
    extra = {"repository": {"ssh_key": "global.SECRETS.git.ssh_key", "known_hosts": "global.SECRETS.git.known_hosts"}}
    if passphrase:
        extra["repository"]["ssh_passphrase"] = "global.SECRETS.git.ssh_passphrase"
    return extra


def test_ssh_with_an_encrypted_key_and_strict_host_keys(flowapp, repos, ssh_git, make_sidecar, secrets_dir, tmp_path):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows over SSH")
    extra = ssh_secrets(secrets_dir, tmp_path, ssh_git, passphrase=CANARY)
    app = make_sidecar(flowapp, ssh_git.url_for("flows"), protocol="ssh", extra=extra)
    job = app.store.job(app.engine.run(Trigger("force")))
    assert job.status == "succeeded", job.error_message
    assert app.board.current()["local"]["sha"] == sha
    # no key material was written by the sidecar
    for p in app.data_dir.rglob("*"):
        if p.is_file():
            assert b"PRIVATE KEY" not in p.read_bytes(), p
    for p in app.runtime_dir.rglob("*"):
        if p.is_file() and not p.is_socket():
            assert b"PRIVATE KEY" not in p.read_bytes(), p


@pytest.mark.matrix('attacks', 'an SSH server with an unknown host key (man in the middle)', 'Git transport',
                    expect='refused with a clear error; nothing fetched')
def test_ssh_wrong_host_key_is_refused_with_a_clear_error(flowapp, repos, ssh_git, make_sidecar, secrets_dir, tmp_path):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    extra = ssh_secrets(secrets_dir, tmp_path, ssh_git, passphrase=None)
    # a known_hosts entry for this address with a different key
    other = SshGitServer(tmp_path / "other-sshd", repos.root)
    other.workdir.mkdir(parents=True)
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other.host_key)], check=True)
    keytype, blob = other.host_key.with_suffix(".pub").read_text().split()[:2]
    (secrets_dir / "git" / "known_hosts").write_text(f"[127.0.0.1]:{ssh_git.port} {keytype} {blob}\n")
    app = make_sidecar(flowapp, ssh_git.url_for("flows"), protocol="ssh", extra=extra)
    job = app.store.job(app.engine.run(Trigger("force")))
    assert job.status == "failed"
    assert job.error_code == "git_host_key_rejected"
    assert "host key" in job.error_message
    assert flowapp.flows()[0] == []


def test_ssh_wrong_passphrase_is_a_clear_error(flowapp, repos, ssh_git, make_sidecar, secrets_dir, tmp_path):
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    extra = ssh_secrets(secrets_dir, tmp_path, ssh_git, passphrase="right-passphrase")
    (secrets_dir / "git" / "ssh_passphrase").write_text("wrong-passphrase")
    app = make_sidecar(flowapp, ssh_git.url_for("flows"), protocol="ssh", extra=extra)
    job = app.store.job(app.engine.run(Trigger("force")))
    assert job.status == "failed" and job.error_code == "git_auth_failed"
    assert "passphrase" in job.error_message


def test_every_git_call_has_a_wall_clock_timeout(flowapp, repos, ssh_git, make_sidecar, secrets_dir, tmp_path):
    """A server that accepts and then says nothing: ssh's own timeouts are long; ours stops git."""
    from tests.servers.faultproxy import FaultProxy

    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    extra = ssh_secrets(secrets_dir, tmp_path, ssh_git, passphrase=None)
    with FaultProxy("127.0.0.1", ssh_git.port) as proxy:
        # the proxy listens on another port: known_hosts must name that address
        line = ssh_git.host_key_line().replace(f"]:{ssh_git.port} ", f"]:{proxy.port} ")
        (secrets_dir / "git" / "known_hosts").write_text(line + "\n")
        url = ssh_git.url_for("flows").replace(f":{ssh_git.port}/", f":{proxy.port}/")
        extra["repository"]["timeout"] = 2
        app = make_sidecar(flowapp, url, protocol="ssh", extra=extra)
        assert app.store.job(app.engine.run(Trigger("force"))).status == "succeeded"  # through the proxy, working
        proxy.mode = "blackhole"
        t0 = time.monotonic()
        job = app.store.job(app.engine.run(Trigger("force")))
        elapsed = time.monotonic() - t0
    assert job.status == "failed" and job.error_code == "git_timeout"
    assert "longer than 2 s" in job.error_message
    assert elapsed < 6
