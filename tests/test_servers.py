"""Self-tests for the loopback git servers in tests/servers/ (real git, no mocks)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

# tests/ is not a package and pyproject sets no pytest `pythonpath`, so make
# the repository root importable for `tests.servers` (no-op once it is).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.servers.common import make_tls_cert
from tests.servers.githttp import GitHttpServer
from tests.servers.gitrepo import GitRepoFactory, hermetic_git_env
from tests.servers.sshgit import SshGitServer, make_askpass_script, make_client_key

USER, TOKEN = "alice", "tok-3f9a1c"
PASSPHRASE = "correct horse battery staple"

# Inline credential helper (TESTBED §1, option B): nothing in argv or the URL.
CRED_HELPER = ('!f() { test "$1" = get && '
               'printf "username=%s\\npassword=%s\\n" "$GIT_USERNAME" "$GIT_PASSWORD"; }; f')


# -- fixtures -----------------------------------------------------------------
@pytest.fixture(scope="session")
def client_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("client-home")


@pytest.fixture(scope="session")
def repos(tmp_path_factory) -> GitRepoFactory:
    return GitRepoFactory(tmp_path_factory.mktemp("remotes"))


@pytest.fixture(scope="session")
def seeded(repos):
    """A remote with one commit on main, shared by read-only tests."""
    repo = repos.create("seeded")
    repo.commit({"flows.json": '[{"id": "n1"}]\n', "README.md": "hi\n"}, "initial flows")
    return repo


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[str, str]:
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def https_server(repos, tls_cert):
    certfile, keyfile = tls_cert
    with GitHttpServer(repos.root, USER, TOKEN, certfile, keyfile) as srv:
        yield srv


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory, repos):
    with SshGitServer(tmp_path_factory.mktemp("sshd"), repos.root) as srv:
        yield srv


@pytest.fixture(scope="session")
def ssh_client(tmp_path_factory, ssh_server):
    """Keys (plain and encrypted), authorized on the server, and a known_hosts file."""
    d = tmp_path_factory.mktemp("ssh-client")
    plain_key, plain_pub = make_client_key(d / "plain")
    enc_key, enc_pub = make_client_key(d / "enc", passphrase=PASSPHRASE)
    ssh_server.add_client_key(plain_pub)
    ssh_server.add_client_key(enc_pub)
    known_hosts = d / "known_hosts"
    known_hosts.write_text(ssh_server.host_key_line() + "\n")
    return {"dir": d, "plain": plain_key, "enc": enc_key, "known_hosts": known_hosts,
            "askpass": make_askpass_script(d)}


# -- helpers ------------------------------------------------------------------
def git(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run git like the sidecar would: no tty, own session, hermetic env."""
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, timeout=30)


def https_env(home: Path, cafile: str, password: str) -> dict[str, str]:
    # This sandbox exports GIT_SSL_CAINFO globally; hermetic_git_env drops it
    # and we set our own (an env var beats -c http.sslCAInfo).
    return hermetic_git_env(
        home, GIT_SSL_CAINFO=cafile, GIT_USERNAME=USER, GIT_PASSWORD=password,
        GIT_CONFIG_COUNT="2",
        GIT_CONFIG_KEY_0="credential.helper", GIT_CONFIG_VALUE_0="",
        GIT_CONFIG_KEY_1="credential.helper", GIT_CONFIG_VALUE_1=CRED_HELPER,
        GIT_HTTP_LOW_SPEED_LIMIT="1000", GIT_HTTP_LOW_SPEED_TIME="5",
    )


def ssh_env(home: Path, client: dict, key: str, known_hosts: Path | None = None,
            askpass: bool = False) -> dict[str, str]:
    cmd = (f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o IdentityAgent=none "
           f"-o UserKnownHostsFile={known_hosts or client['known_hosts']} "
           "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "
           "-o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=2")
    extra = {}
    if askpass:
        cmd += " -o NumberOfPasswordPrompts=1"
        extra = {"SSH_ASKPASS": client["askpass"], "SSH_ASKPASS_REQUIRE": "force",
                 "SSH_KEY_PASSPHRASE": PASSPHRASE}
    else:
        cmd += " -o BatchMode=yes"
    env = hermetic_git_env(home, GIT_SSH_COMMAND=cmd, **extra)
    env.pop("DISPLAY", None)
    return env


# -- file:// and the repo factory --------------------------------------------
def test_file_clone_sees_committed_files(seeded, client_home, tmp_path):
    r = git("clone", "-q", seeded.file_url, str(tmp_path / "c"), env=hermetic_git_env(client_home))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "flows.json").read_text() == '[{"id": "n1"}]\n'
    head = git("rev-parse", "HEAD", cwd=tmp_path / "c", env=hermetic_git_env(client_home))
    assert head.stdout.strip() == seeded.head("main")
    branch = git("symbolic-ref", "--short", "HEAD", cwd=tmp_path / "c",
                 env=hermetic_git_env(client_home))
    assert branch.stdout.strip() == "main"


def test_commit_deletes_sets_author_and_refuses_noop(repos):
    repo = repos.create("factory")
    first = repo.commit({"a.txt": "1", "dir/b.bin": b"\x00\x01"}, "add", author=("Grace", "g@x.org"))
    second = repo.commit({"a.txt": None}, "delete a")
    assert repo.head() == second != first
    assert repo.read("dir/b.bin") == b"\x00\x01"
    files = repos.git("ls-tree", "-r", "--name-only", "main", cwd=repo.path).stdout.split()
    assert files == ["dir/b.bin"]
    author = repos.git("log", "-1", "--format=%an <%ae>", first, cwd=repo.path).stdout.strip()
    assert author == "Grace <g@x.org>"
    with pytest.raises(ValueError):
        repo.commit({"dir/b.bin": b"\x00\x01"}, "no change")
    assert repo.head() == second
    assert repo.head("nope") is None


def test_force_push_rewrite_makes_non_descendant_head(repos):
    repo = repos.create("rewritten")
    base = repo.commit({"flows.json": "[1]"}, "base")
    old = repo.commit({"flows.json": "[2]"}, "to be dropped")
    new = repo.force_push_rewrite({"flows.json": "[3]"}, "rewritten")
    assert repo.head() == new not in (old, base)
    is_anc = repos.git("merge-base", "--is-ancestor", old, new, cwd=repo.path, check=False)
    assert is_anc.returncode == 1  # old head is NOT an ancestor of the new one
    assert repos.git("rev-parse", f"{new}^", cwd=repo.path).stdout.strip() == base
    assert repo.read("flows.json") == b"[3]"
    # a root-only history is rewritten into an unrelated root commit
    lone = repos.create("lone")
    root = lone.commit({"x": "1"}, "root")
    orphan = lone.force_push_rewrite({"y": "2"}, "orphan")
    assert repos.git("rev-list", "--count", orphan, cwd=lone.path).stdout.strip() == "1"
    assert repos.git("merge-base", "--is-ancestor", root, orphan, cwd=lone.path,
                     check=False).returncode == 1


# -- HTTPS --------------------------------------------------------------------
def test_https_clone_with_credential_helper(https_server, seeded, tls_cert, client_home, tmp_path):
    assert https_server.url.startswith("https://127.0.0.1:")
    before = https_server.requests.count("POST", "git-upload-pack")
    env = https_env(client_home, tls_cert[0], TOKEN)
    r = git("clone", "-q", https_server.url_for("seeded"), str(tmp_path / "c"), env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "README.md").read_text() == "hi\n"
    assert https_server.requests.count("POST", "git-upload-pack") > before
    assert TOKEN not in (tmp_path / "c" / ".git" / "config").read_text()


def test_https_wrong_token_fails(https_server, seeded, tls_cert, client_home):
    env = https_env(client_home, tls_cert[0], "wrong-token")
    r = git("ls-remote", https_server.url_for("seeded"), env=env)
    assert r.returncode == 128
    assert "Authentication failed" in r.stderr


def test_https_without_our_ca_fails_verification(https_server, seeded, tls_cert, client_home):
    env = https_env(client_home, "/etc/ssl/certs/ca-certificates.crt", TOKEN)
    r = git("ls-remote", https_server.url_for("seeded"), env=env)
    assert r.returncode != 0
    assert "certificate" in r.stderr.lower()


def test_https_push(https_server, repos, tls_cert, client_home, tmp_path):
    remote = repos.create("pushed")
    remote.commit({"flows.json": "[]"}, "init")
    env = https_env(client_home, tls_cert[0], TOKEN)
    work = tmp_path / "w"
    assert git("clone", "-q", https_server.url_for("pushed"), str(work), env=env).returncode == 0
    (work / "flows.json").write_bytes(os.urandom(2 << 20))  # > http.postBuffer: sent chunked
    commit_env = dict(env, GIT_AUTHOR_NAME="T", GIT_AUTHOR_EMAIL="t@x",
                      GIT_COMMITTER_NAME="T", GIT_COMMITTER_EMAIL="t@x")
    assert git("commit", "-qam", "update", cwd=work, env=commit_env).returncode == 0
    r = git("push", "-q", "origin", "main", cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    local = git("rev-parse", "HEAD", cwd=work, env=env).stdout.strip()
    assert remote.head() == local
    assert https_server.requests.count("POST", "git-receive-pack") >= 1


def test_https_fault_injection(https_server, seeded, tls_cert, client_home):
    env = https_env(client_home, tls_cert[0], TOKEN)
    https_server.fault = {"status": 500, "paths": "git-upload-pack"}
    try:
        r = git("ls-remote", https_server.url_for("seeded"), env=env)
    finally:
        https_server.fault = None
    assert r.returncode != 0
    assert "500" in r.stderr
    ok = git("ls-remote", https_server.url_for("seeded"), env=env)
    assert ok.returncode == 0 and seeded.head() in ok.stdout


# -- SSH ----------------------------------------------------------------------
def test_ssh_ls_remote_with_plain_key(ssh_server, ssh_client, seeded, client_home):
    env = ssh_env(client_home, ssh_client, ssh_client["plain"])
    r = git("ls-remote", ssh_server.url_for("seeded"), env=env)
    assert r.returncode == 0, r.stderr
    assert f"{seeded.head()}\trefs/heads/main" in r.stdout


def test_ssh_bracketed_scp_url(ssh_server, ssh_client, seeded, client_home):
    env = ssh_env(client_home, ssh_client, ssh_client["plain"])
    r = git("ls-remote", ssh_server.scp_url_for("seeded"), env=env)
    assert r.returncode == 0, r.stderr
    assert seeded.head() in r.stdout


def test_ssh_wrong_host_key_is_rejected(ssh_server, ssh_client, seeded, client_home, tmp_path):
    _, other_pub = make_client_key(tmp_path, name="impostor")  # any ed25519 key will do
    blob = other_pub.split()[1]
    bad = tmp_path / "known_hosts"
    bad.write_text(f"[127.0.0.1]:{ssh_server.port} ssh-ed25519 {blob}\n")
    env = ssh_env(client_home, ssh_client, ssh_client["plain"], known_hosts=bad)
    r = git("ls-remote", ssh_server.url_for("seeded"), env=env)
    assert r.returncode == 128
    assert ("REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr
            or "Host key verification failed" in r.stderr)


def test_ssh_encrypted_key_via_askpass(ssh_server, ssh_client, seeded, client_home):
    # The key really is encrypted (bcrypt KDF) ...
    pem = Path(ssh_client["enc"]).read_text().splitlines()
    blob = base64.b64decode("".join(pem[1:-1]))
    assert b"bcrypt" in blob and b"aes256-ctr" in blob
    # ... refused without the passphrase ...
    no_pass = ssh_env(client_home, ssh_client, ssh_client["enc"])
    r = git("ls-remote", ssh_server.url_for("seeded"), env=no_pass)
    assert r.returncode != 0
    # ... and accepted with it, supplied by SSH_ASKPASS from the environment.
    env = ssh_env(client_home, ssh_client, ssh_client["enc"], askpass=True)
    r = git("ls-remote", ssh_server.url_for("seeded"), env=env)
    assert r.returncode == 0, r.stderr
    assert seeded.head() in r.stdout


def test_ssh_forced_git_shell_rejects_other_commands(ssh_server, ssh_client):
    r = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", ssh_client["plain"], "-o", "IdentitiesOnly=yes",
         "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={ssh_client['known_hosts']}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
         "-p", str(ssh_server.port), "root@127.0.0.1", "id"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert r.returncode != 0
    assert "uid=" not in r.stdout
    assert "unrecognized command" in r.stderr
