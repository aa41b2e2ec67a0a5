"""Small helpers shared by the loopback test servers.

Everything here is stdlib only and binds/talks to 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "die_with_parent", "wait_port", "make_tls_cert", "RequestLog"]

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


class RequestLog:
    """Thread-safe list of ``(method, path)`` tuples, one per HTTP request, recorded on
    arrival (so rejected and faulted requests count too). ``path`` is the raw request
    target, query string included; matching also tries the percent-decoded path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[str, str]] = []

    def append(self, item: tuple[str, str]) -> None:
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._items)

    def count(self, method: str | None = None, contains: str | None = None) -> int:
        """Requests matching ``method`` whose path (raw or percent-decoded) contains ``contains``."""
        return sum(
            1 for m, p in self.snapshot()
            if (method is None or m == method)
            and (contains is None or contains in p or contains in urllib.parse.unquote(p))
        )

    def paths(self, method: str | None = "GET") -> list[str]:
        """Percent-decoded paths, in arrival order."""
        return [urllib.parse.unquote(p) for m, p in self.snapshot() if method is None or m == method]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.snapshot())

    def __contains__(self, item: object) -> bool:
        return item in self.snapshot()

    def __repr__(self) -> str:
        return f"RequestLog({self.snapshot()!r})"
