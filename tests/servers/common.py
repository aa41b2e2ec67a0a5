"""Small helpers shared by the loopback test servers.

Everything here is stdlib only and binds/talks to 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["free_port", "die_with_parent", "wait_port", "make_tls_cert"]

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago.

    For servers that need a concrete port on the command line (sshd).  There
    is a small race between closing the probe socket and the server binding
    it; callers should retry on a failed start.  In-process servers should
    bind port 0 instead.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """``preexec_fn`` for server children: SIGKILL the child when we die.

    Uses ``prctl(PR_SET_PDEATHSIG)`` so a pytest killed by a timeout (which
    skips fixture teardown) does not leak daemons.  Note: the signal fires
    when the *thread* that forked the child exits, so start servers from a
    long-lived thread (the main thread, as pytest fixtures do).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def wait_port(host: str, port: int, timeout: float = 5.0) -> None:
    """Block until ``host:port`` accepts a TCP connection.

    Raises ``TimeoutError`` after ``timeout`` seconds.  "Accepting" is not
    always "ready" (see TESTBED.md), but it is for sshd and the git servers.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{host}:{port} not accepting after {timeout}s") from None
            time.sleep(0.01)


def make_tls_cert(directory: str | os.PathLike[str]) -> tuple[str, str]:
    """Create a self-signed EC P-256 certificate for 127.0.0.1/localhost.

    Returns ``(certfile, keyfile)`` as strings.  The certificate is its own
    CA, so clients trust it with ``GIT_SSL_CAINFO=certfile``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return str(cert), str(key)
