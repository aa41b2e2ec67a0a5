"""The one way the sidecar runs programs (git, ssh-add, npm).

Every run has a wall-clock timeout (the whole process group is killed when it
expires), captured output, secrets redacted from that output and from the log
line, and an exit status turned into a result the caller inspects. Arguments
never carry secrets: callers pass them through the environment or stdin.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

log = logging.getLogger("flow_gitops.run")

REDACTED = "***"

# Children die with the sidecar: after a `kill -9` of the sidecar no git fetch or npm install
# may live on and race the restarted sidecar over refs or the userDir. util-linux's setpriv
# sets the parent-death signal before exec (no preexec_fn in a threaded process). Linux ties
# that signal to the *thread* that started the child: runs come from long-lived threads (the
# sync loop, the API's worker pool), which end only when the process does.
# Only the child itself: what it forks (npm scripts, git helpers) is not covered by the signal.


@functools.cache
def die_with_parent(signame: str = "KILL") -> tuple[str, ...]:
    """The argv prefix that gives a child the parent-death signal `signame`; () without a
    setpriv that supports it. Probed once, at the first run (not at import)."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return ()
    try:  # present is not supported: util-linux < 2.33 and BusyBox lack --pdeathsig
        ok = subprocess.run([setpriv, "--pdeathsig", signame, "--", "true"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (setpriv, "--pdeathsig", signame, "--") if ok else ()


def redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, REDACTED)
    return text


@dataclass
class RunResult:
    argv: list[str]
    returncode: int  # -9 after a timeout
    stdout: bytes
    stderr: str  # decoded and redacted
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class Runner:
    """Runs commands with a base environment; `calls` counts runs per program (for tests/metrics)."""

    def __init__(self, base_env: Mapping[str, str] | None = None) -> None:
        self.base_env = dict(base_env if base_env is not None else os.environ)
        self.calls: dict[str, int] = {}

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
        secrets: Iterable[str] = (),
        unset: Iterable[str] = (),
    ) -> RunResult:
        full_env = dict(self.base_env)
        for key in unset:
            full_env.pop(key, None)
        full_env.update(env or {})
        secrets = [s for s in secrets if s]
        program = os.path.basename(argv[0])
        self.calls[program] = self.calls.get(program, 0) + 1
        prefix = die_with_parent()
        if prefix and shutil.which(argv[0], path=full_env.get("PATH")) is None:
            raise FileNotFoundError(2, "No such file or directory", argv[0])  # as without the wrapper
        started = time.monotonic()
        proc = subprocess.Popen(
            [*prefix, *argv],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no controlling terminal: nothing can prompt
        )
        timed_out = False
        try:
            out, err = proc.communicate(input=stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
        duration = time.monotonic() - started
        stderr = redact(err.decode("utf-8", "replace"), secrets)
        result = RunResult(list(argv), -9 if timed_out else proc.returncode, out, stderr, duration, timed_out)
        shown = redact(" ".join(argv[:4]), secrets)
        log.debug("ran %s rc=%s in %.3fs%s", shown, result.returncode, duration, " (timed out)" if timed_out else "")
        return result
