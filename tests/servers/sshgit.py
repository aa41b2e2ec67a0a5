"""Git-over-SSH test server: a private ``/usr/sbin/sshd -D`` on 127.0.0.1.

::

    key, pub = make_client_key(tmp / "keys")
    with SshGitServer(tmp / "sshd", repo_root) as srv:
        srv.add_client_key(pub)
        known_hosts.write_text(srv.host_key_line() + "\\n")
        url = srv.url_for("flows")   # ssh://root@127.0.0.1:PORT/<repo_root>/flows.git

Recipe from TESTBED.md §2: the login user is root, every session is forced
through ``git-shell -c "$SSH_ORIGINAL_COMMAND"`` (only git-upload-pack /
git-receive-pack / git-upload-archive are accepted), authorized keys carry
``restrict``, ``SetEnv HOME=<workdir>`` keeps root's ``~/.bashrc`` out of the
session (bash sources it under sshd), and ``KexAlgorithms curve25519-sha256``
avoids the slower default post-quantum kex.

URL forms: git-shell receives the path verbatim, so repositories are
addressed by absolute path.  ``url_for`` gives ``ssh://root@127.0.0.1:PORT/abs/path``.
The classic scp form ``root@host:/path`` cannot carry a port; git's
bracketed variant ``[root@127.0.0.1:PORT]:/abs/path`` can, and
``scp_url_for`` returns it (verified by tests/test_servers.py with git
2.39; other URL parsers, e.g. in the sidecar, may not understand it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from .common import die_with_parent, free_port, wait_port

__all__ = ["SshGitServer", "make_client_key", "make_askpass_script"]

SSHD = "/usr/sbin/sshd"  # absolute path: sshd re-execs itself


def make_askpass_script(directory: str | os.PathLike[str],
                        env_var: str = "SSH_KEY_PASSPHRASE") -> str:
    """Write an ``SSH_ASKPASS`` program that answers passphrase prompts from ``$env_var``.

    Any other prompt (e.g. a host-key confirmation) gets no answer (exit 1).
    The passphrase travels only through the environment, never argv or disk.
    Use with ``SSH_ASKPASS_REQUIRE=force``, stdin ``/dev/null`` and
    ``start_new_session=True`` (no controlling tty); not with ``BatchMode=yes``.
    """
    if not env_var.replace("_", "").isalnum():
        raise ValueError(f"bad variable name {env_var!r}")
    path = Path(directory) / f"askpass-{env_var.lower()}.sh"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$1" in
          *assphrase*) printf '%s\\n' "${env_var}" ;;
          *) exit 1 ;;
        esac
        """))
    path.chmod(0o700)
    return str(path)


def make_client_key(directory: str | os.PathLike[str], passphrase: str | None = None,
                    name: str = "id_ed25519") -> tuple[str, str]:
    """Generate an ed25519 client key; return ``(private_key_path, public_key_text)``.

    With a ``passphrase`` the key is encrypted by ``ssh-keygen`` itself, which
    reads the passphrase through an askpass helper fed from the environment,
    so it never appears in any process's argv (``ssh-keygen -N`` would put it
    there).  No third-party crypto package is needed.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = d / name
    for p in (key, key.with_name(name + ".pub")):
        p.unlink(missing_ok=True)
    cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-C", "flow-gitops-test", "-f", str(key)]
    env = dict(os.environ)
    if passphrase is None:
        cmd[1:1] = ["-N", ""]
    else:
        if not passphrase or "\n" in passphrase:
            raise ValueError("passphrase must be non-empty and single-line")
        env.update(SSH_ASKPASS=make_askpass_script(d, "FIXTURE_KEYGEN_PASSPHRASE"),
                   SSH_ASKPASS_REQUIRE="force", FIXTURE_KEYGEN_PASSPHRASE=passphrase)
    subprocess.run(cmd, env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   start_new_session=True, timeout=30)
    return str(key), key.with_name(name + ".pub").read_text().strip()


class SshGitServer:
    """A private sshd serving git repositories under ``repo_root`` via git-shell.

    ``workdir`` holds the config, host key, authorized_keys and log
    (``sshd.log``, useful when a test fails).  ``port`` is set by ``start()``.
    """

    def __init__(self, workdir: str | os.PathLike[str], repo_root: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir).resolve()
        self.repo_root = Path(repo_root).resolve()
        self.port: int | None = None
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.authorized_keys = self.workdir / "authorized_keys"
        self.log = self.workdir / "sshd.log"
        self._proc: subprocess.Popen | None = None

    # -- client-facing helpers ------------------------------------------
    def add_client_key(self, pubkey_text: str) -> None:
        """Authorize a public key (takes effect for the next connection)."""
        line = pubkey_text.strip()
        if "\n" in line or not line.startswith("ssh-"):
            raise ValueError("expected one OpenSSH public key line")
        with self.authorized_keys.open("a") as f:
            f.write(f"restrict {line}\n")

    def host_key_line(self) -> str:
        """known_hosts line for this server: ``[127.0.0.1]:PORT ssh-ed25519 AAAA...``."""
        keytype, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self._port()} {keytype} {blob}"

    def repo_path(self, name: str) -> Path:
        return self.repo_root / (name if name.endswith(".git") else f"{name}.git")

    def url_for(self, name: str) -> str:
        """``ssh://root@127.0.0.1:PORT/<absolute path of repo_root/name.git>``."""
        return f"ssh://root@127.0.0.1:{self._port()}{self.repo_path(name)}"

    def scp_url_for(self, name: str) -> str:
        """git's bracketed scp-like form ``[root@127.0.0.1:PORT]:/abs/path``."""
        return f"[root@127.0.0.1:{self._port()}]:{self.repo_path(name)}"

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 5.0) -> "SshGitServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privsep dir
        if not self.host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-host",
                            "-f", str(self.host_key)], check=True,
                           stdin=subprocess.DEVNULL, capture_output=True)
        self.authorized_keys.touch()
        last_error = ""
        for _ in range(3):  # free_port() can race with other processes
            self.port = free_port()
            config = self._write_config()
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-f", str(config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=die_with_parent, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    wait_port("127.0.0.1", self.port, timeout=0.2)
                    return self
                except TimeoutError:
                    continue
            last_error = self._stop_proc()
        self.port = None
        raise RuntimeError(f"sshd did not start: {last_error}")

    def stop(self) -> None:
        self._stop_proc()

    def __enter__(self) -> "SshGitServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------
    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError("server not started")
        return self.port

    def _write_config(self) -> Path:
        config = self.workdir / "sshd_config"
        config.write_text(textwrap.dedent(f"""\
            Port {self.port}
            ListenAddress 127.0.0.1
            HostKey {self.host_key}
            PidFile none
            AuthorizedKeysFile {self.authorized_keys}
            AllowUsers root
            PermitRootLogin prohibit-password
            AuthenticationMethods publickey
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            UseDNS no
            PermitTTY no
            PrintMotd no
            AllowTcpForwarding no
            AllowStreamLocalForwarding no
            AllowAgentForwarding no
            X11Forwarding no
            PermitTunnel no
            KexAlgorithms curve25519-sha256
            SetEnv HOME={self.workdir}
            ForceCommand /usr/bin/git-shell -c "$SSH_ORIGINAL_COMMAND"
            LogLevel VERBOSE
            """))
        return config

    def _stop_proc(self) -> str:
        """Kill sshd and its per-connection children; return its stderr."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return (err or b"").decode(errors="replace") + log
