"""A private ssh-agent that holds the repository key, so no key is ever written to disk.

The key (and its optional passphrase) come from the secret source at use time and
reach `ssh-add` on stdin and through an askpass helper reading the environment:
nothing secret appears in process arguments or files. A changed key or passphrase
(rotation) is noticed by its fingerprint and reloaded.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

from ..core.errors import GIT_AUTH, GIT_ERROR, SyncError
from .runner import Runner, die_with_parent

_ASKPASS = """#!/bin/sh
# Answers ssh-add's passphrase prompt from the environment; any other prompt is refused.
# A second prompt ("Bad passphrase, try again") means the first answer was wrong: give up.
case "$1" in
  *"try again"*|*Bad*|*bad*) exit 1 ;;
  *assphrase*) printf '%s\\n' "$FLOW_GITOPS_SSH_PASSPHRASE" ;;
  *) exit 1 ;;
esac
"""


class SshAgent:
    def __init__(self, runtime_dir: Path, runner: Runner) -> None:
        self.dir = runtime_dir
        self.runner = runner
        self.sock = runtime_dir / "agent.sock"
        self.askpass = runtime_dir / "askpass.sh"
        self._proc: subprocess.Popen | None = None
        self._loaded = ""

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.askpass.exists():
            self.askpass.write_text(_ASKPASS)
            self.askpass.chmod(0o700)
        if self.sock.exists():
            self.sock.unlink()
        self._proc = subprocess.Popen(
            [*die_with_parent("TERM"), "ssh-agent", "-D", "-a", str(self.sock)],  # TERM: it removes its socket
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not self.sock.exists():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise SyncError(GIT_ERROR, "could not start ssh-agent")
            time.sleep(0.01)
        self._loaded = ""

    def ensure_key(self, key: str, passphrase: str, timeout: float = 20.0) -> str:
        """Load `key` into the agent unless it is already there; returns the socket path."""
        self._start()
        fingerprint = hashlib.sha256(f"{key}\0{passphrase}".encode()).hexdigest()
        if fingerprint == self._loaded:
            return str(self.sock)
        env = {
            "SSH_AUTH_SOCK": str(self.sock),
            "SSH_ASKPASS": str(self.askpass),
            "SSH_ASKPASS_REQUIRE": "force",
            "FLOW_GITOPS_SSH_PASSPHRASE": passphrase,
            "DISPLAY": "none",
        }
        self.runner.run(["ssh-add", "-D"], timeout=timeout, env=env)
        data = key if key.endswith("\n") else key + "\n"
        res = self.runner.run(["ssh-add", "-q", "-"], timeout=timeout, env=env, stdin=data.encode(), secrets=[key, passphrase])
        if res.timed_out:
            raise SyncError(GIT_AUTH, "loading the SSH key timed out", retryable=True)
        if not res.ok:
            err = res.stderr.lower()
            if "passphrase" in err or "incorrect" in err or "bad pass" in err or (passphrase and not err.strip()):
                raise SyncError(GIT_AUTH, "the SSH key could not be unlocked: check the passphrase secret", retryable=False)
            if "invalid format" in err or "error loading key" in err:
                raise SyncError(GIT_AUTH, "the SSH key secret is not a valid private key", retryable=False)
            raise SyncError(GIT_AUTH, f"ssh-add failed: {res.stderr.strip()[:200]}", retryable=False)
        self._loaded = fingerprint
        return str(self.sock)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        for p in (self.sock,):
            try:
                os.unlink(p)
            except OSError:
                pass
