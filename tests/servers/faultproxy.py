"""Fault-injecting TCP proxy for loopback tests (stdlib only).

Sits on ``127.0.0.1:<port 0>`` in front of one upstream ``host:port`` and
forwards bytes both ways, so it works for any protocol (HTTP, TLS, SSH,
git://, websockets)::

    with FaultProxy("127.0.0.1", upstream_port) as px:
        url = px.url_for("http")                 # http://127.0.0.1:PORT
        px.set_mode("reset_after", after_bytes=20_000)
        px.mode = None                           # back to pass-through
        px.hold(b"POST /flows", 2.0, forward="after")
        assert px.held.wait(5)                   # a matching request was seen

Design (TESTBED.md §5): one daemon thread accepts, and every accepted
connection gets **one** daemon thread that drives both sockets with
``select()`` semantics over non-blocking sockets (implemented with ``poll()``
so descriptors >= 1024 work).  (A two-threads-per-connection design
did not deliver RSTs: ``close()`` while another thread sits in ``recv()``
sends nothing.)  Each direction has a queue of chunks with a *release time*,
which implements latency, bandwidth and the ``hold()`` gates; flow control
is by backpressure (a source is not read while its queue holds > 256 KiB).
``TCP_NODELAY`` is set on both legs (Nagle + delayed ACK would add 40 ms).

Modes (``.mode``, runtime-mutable; ``after_bytes``/``latency``/``bandwidth``
are read live, so set them *before* the mode, or use :meth:`set_mode`):

``None``
    pass-through.  Half-closes (FIN) and resets (RST) are propagated.
``"refuse"``
    the listening socket is **closed** (the accept thread does it; the setter
    waits until it is done), so new connects get ``ECONNREFUSED`` exactly as
    for a server that is down.  Setting any other mode re-binds the *same*
    port (``SO_REUSEADDR``; a foreign process could grab the port in between,
    which is unlikely on loopback).  Existing connections are left alone.
``"reset"``
    (extra) accept, then close at once with RST (``SO_LINGER`` 0): the
    connect succeeds and the first read/write fails with ``ECONNRESET``.
    New connections only.
``"blackhole"``
    accept, read and discard whatever the client sends, never answer, never
    contact upstream.  On an existing connection: client data is discarded
    from then on and server→client forwarding stalls.
``"reset_after"`` / ``"close_after"`` / ``"hang_after"``
    after ``after_bytes`` bytes server→client (counted from the start of the
    connection) send RST / send FIN / stop forwarding server→client while
    keeping the connection open.  ``after_bytes=0`` resets/closes a connection
    right away.  Applies to existing connections too: one that already got
    more than ``after_bytes`` is reset/closed/stalled immediately.
    ``hang_after`` *stalls* (upstream data stays queued and, once the queue is
    full, upstream is no longer read), so switching the mode back to ``None``
    resumes the stream without loss.  Client→server keeps flowing.
``"latency"``
    every forwarded chunk, in **both** directions, is delayed by ``latency``
    seconds after the previous chunk of that direction was released
    (sequential, like TESTBED's "0.2 s/chunk": throughput drops too).
``"bandwidth"``
    (extra) both directions are paced to ``bandwidth`` bytes per second.
``"http500"``
    answer any request (read up to the blank line) with ``HTTP/1.1 500`` and
    ``Connection: close``, then close; upstream is never contacted.  New
    connections only.
``"garbage"``
    (extra) a server speaking the wrong protocol: send ``garbage`` bytes (by
    default an HTTP 500 response) at once, without reading anything, then
    close.  For protocols where the server talks first (SSH), this is what
    "http500" means.  New connections only.

:meth:`disconnect_all` closes every current connection (FIN, as a server
closing idle keep-alive connections): faults that count bytes then start
from zero on the client's next, fresh connection.

HTTP hold hook (for crash tests), see :meth:`hold`:

* A connection is treated as HTTP until proven otherwise.  The *first*
  client→server chunk, and the first chunk after any server→client data
  (i.e. after the previous response started), is taken to be the start of a
  request and compared with ``prefix`` (a short chunk that is a prefix of
  ``prefix`` is buffered until it can be decided).  Body chunks sent before
  the response never match.  Detection is switched off for the connection if
  the first chunk does not look like an HTTP request line (TLS, SSH ...) or
  once a ``101`` response was seen (websocket frames after ``GET /comms``
  pass untouched).  ``100 Continue`` followed by a body that starts with the
  prefix would be a false match; that does not happen in practice.
* ``forward="before"``: the matched request (and everything after it on that
  connection) is queued for ``seconds`` before it goes upstream.  If the
  client goes away (FIN or RST) while it waits, the queued bytes are dropped
  and the upstream connection is closed: upstream never sees the request.
* ``forward="after"``: the request goes upstream at once, but the response
  bytes are queued until ``seconds`` after the match.  If the client goes
  away meanwhile, the proxy keeps the upstream leg open (no FIN is sent to
  it), forwards any remaining request bytes the client had sent, reads and
  discards the response until upstream closes or has been idle for
  ``DRAIN_IDLE`` seconds after sending something (capped at ``DRAIN_MAX``),
  then closes.
* :meth:`clear_hold` stops matching new requests; holds already started
  keep their timers.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import threading
import time
from collections import deque
from typing import Optional

__all__ = ["FaultProxy", "MODES"]

MODES = (None, "refuse", "reset", "blackhole", "reset_after", "close_after",
         "hang_after", "latency", "bandwidth", "http500", "garbage")

GARBAGE = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
           b"Content-Length: 26\r\nConnection: close\r\n\r\nfaultproxy: injected 500\n\n")

_CHUNK = 64 * 1024
_BACKLOG = 256 * 1024         # stop reading a source when its queue is this big
_POLL = 0.05                  # max select() sleep: stop flag / mode changes
_CONNECT_TIMEOUT = 5.0
DRAIN_IDLE = 0.5              # hold "after", client gone: upstream idle => done
DRAIN_MAX = 60.0              # ... and never drain longer than this

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ",
                 b"PATCH ", b"CONNECT ", b"TRACE ")


def _rst_close(sock: Optional[socket.socket]) -> None:
    """Close ``sock`` with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock: Optional[socket.socket]) -> None:
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def _wait_unsent(sock: socket.socket, timeout: float = 1.0) -> None:
    """Wait until the kernel send queue of ``sock`` is acknowledged.

    An RST discards unsent data, so before resetting after N bytes make sure
    the N bytes actually left (loopback ACKs are immediate unless the peer's
    receive window is full).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            unsent = struct.unpack("i", buf)[0]
        except OSError:
            return
        if unsent <= 0 or time.monotonic() >= deadline:
            return
        time.sleep(0.002)


def _select(rlist: list, wlist: list, timeout: float) -> tuple[list, list]:
    """``select.select`` semantics on top of ``poll()``.

    Plain ``select()`` raises ``ValueError`` for descriptors >= 1024
    (FD_SETSIZE), which a long pytest session with many servers can reach.
    Error/hang-up events count as readable, so the following ``recv()``
    reports EOF or the error.
    """
    poller = select.poll()
    masks: dict[int, int] = {}
    for s in rlist:
        masks[s.fileno()] = masks.get(s.fileno(), 0) | select.POLLIN
    for s in wlist:
        masks[s.fileno()] = masks.get(s.fileno(), 0) | select.POLLOUT
    for fd, m in masks.items():
        poller.register(fd, m)
    events = dict(poller.poll(max(0.0, timeout) * 1000.0))
    bad = select.POLLERR | select.POLLHUP | select.POLLNVAL
    readable = [s for s in rlist if events.get(s.fileno(), 0) & (select.POLLIN | bad)]
    writable = [s for s in wlist if events.get(s.fileno(), 0) & (select.POLLOUT | bad)]
    return readable, writable


def _nodelay(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class _Queue:
    """Chunks waiting to be written in one direction, each with a release time."""

    def __init__(self) -> None:
        self.chunks: deque[list] = deque()   # [release_monotonic, memoryview]
        self.size = 0
        self.last_release = 0.0

    def push(self, data: bytes, release: float) -> None:
        release = max(release, self.last_release)   # keep order
        self.last_release = release
        self.chunks.append([release, memoryview(data)])
        self.size += len(data)

    def ready(self, now: float) -> bool:
        return bool(self.chunks) and self.chunks[0][0] <= now

    def next_release(self) -> Optional[float]:
        return self.chunks[0][0] if self.chunks else None

    def head(self) -> memoryview:
        return self.chunks[0][1]

    def consume(self, n: int) -> None:
        head = self.chunks[0]
        self.size -= n
        if n >= len(head[1]):
            self.chunks.popleft()
        else:
            head[1] = head[1][n:]

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0


class FaultProxy:
    """TCP proxy with runtime-switchable faults; see the module docstring."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = int(upstream_port)
        self.after_bytes = 0
        self.latency = 0.0
        self.bandwidth = 0.0
        self.garbage = GARBAGE
        self.held = threading.Event()
        self._generation = 0
        self.port = 0
        self._mode: Optional[str] = None
        self._hold: Optional[tuple[bytes, float, str]] = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._connections = 0
        self._held_requests = 0
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._listening = False
        self._listen_error: Optional[BaseException] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------ properties
    @property
    def connections(self) -> int:
        """Number of client connections accepted so far (all modes)."""
        with self._lock:
            return self._connections

    @property
    def held_requests(self) -> int:
        """Number of requests that matched the hold prefix so far."""
        with self._lock:
            return self._held_requests

    @property
    def active(self) -> int:
        """Number of connection threads still running."""
        with self._lock:
            return sum(1 for t in self._threads if t.is_alive())

    def url_for(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Optional[str]:
        return self._mode

    @mode.setter
    def mode(self, value: Optional[str]) -> None:
        if value not in MODES:
            raise ValueError(f"unknown fault mode {value!r}; one of {MODES}")
        with self._cond:
            self._mode = value
            if self._accept_thread is None or self._stopping.is_set():
                return
            want = value != "refuse"
            self._listen_error = None
            self._wake()
            ok = self._cond.wait_for(
                lambda: self._listening == want or self._listen_error is not None
                or self._stopping.is_set(), timeout=5.0)
            if self._listen_error is not None:
                raise RuntimeError(f"cannot re-listen on port {self.port}") from self._listen_error
            if not ok:
                raise RuntimeError("accept thread did not apply the listening state")

    def set_mode(self, mode: Optional[str], *, after_bytes: Optional[int] = None,
                 latency: Optional[float] = None, bandwidth: Optional[float] = None) -> None:
        """Set the parameters first, then the mode (no window with stale values)."""
        if after_bytes is not None:
            self.after_bytes = int(after_bytes)
        if latency is not None:
            self.latency = float(latency)
        if bandwidth is not None:
            self.bandwidth = float(bandwidth)
        self.mode = mode

    # ------------------------------------------------------------------ hold
    def hold(self, prefix: bytes, seconds: float, forward: str = "before") -> None:
        """Hold HTTP requests starting with ``prefix`` for ``seconds``.

        ``forward="before"``: delay the request itself (dropped if the client
        leaves meanwhile).  ``forward="after"``: forward it at once, delay the
        response (drained and discarded if the client leaves).  Clears
        :attr:`held`, which is set when a matching request is seen.
        """
        if forward not in ("before", "after"):
            raise ValueError("forward must be 'before' or 'after'")
        if not prefix:
            raise ValueError("prefix must not be empty")
        with self._lock:
            self.held.clear()
            self._hold = (bytes(prefix), float(seconds), forward)

    def clear_hold(self) -> None:
        with self._lock:
            self._hold = None
            self.held.clear()

    def _matched(self) -> None:
        with self._lock:
            self._held_requests += 1
        self.held.set()

    # ------------------------------------------------------------- lifecycle
    def start(self) -> "FaultProxy":
        if self._accept_thread is not None:
            raise RuntimeError("already started")
        self._listener = self._bind(0)
        self.port = self._listener.getsockname()[1]
        self._listening = True
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"faultproxy-accept-{self.port}", daemon=True)
        self._accept_thread.start()
        if self._mode == "refuse":          # set before start(): apply it now
            self.mode = "refuse"
        return self

    def stop(self) -> None:
        if self._accept_thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        self._wake()
        self._accept_thread.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + 5
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        _close(self._wake_r)
        _close(self._wake_w)

    def disconnect_all(self, timeout: float = 5.0) -> None:
        """Close every current connection (FIN both legs) and wait until they are gone."""
        with self._lock:
            self._generation += 1
            threads = [t for t in self._threads if t.is_alive()]
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"<FaultProxy 127.0.0.1:{self.port} -> {self.upstream_host}:"
                f"{self.upstream_port} mode={self._mode!r}>")

    # ---------------------------------------------------------- accept loop
    def _bind(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(128)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        return s

    def _wake(self) -> None:
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass

    def _reconcile_listener(self) -> None:
        """Open/close the listening socket to match the mode (accept thread only)."""
        want = self._mode != "refuse"
        if want and self._listener is None:
            deadline = time.monotonic() + 1.0
            while True:
                try:
                    self._listener = self._bind(self.port)
                    break
                except OSError as e:
                    if time.monotonic() >= deadline:
                        with self._cond:
                            self._listen_error = e
                            self._cond.notify_all()
                        return
                    time.sleep(0.01)
        elif not want and self._listener is not None:
            _close(self._listener)
            self._listener = None
        with self._cond:
            self._listening = self._listener is not None
            self._cond.notify_all()

    def _accept_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                self._reconcile_listener()
                rlist = [self._wake_r]
                if self._listener is not None:
                    rlist.append(self._listener)
                try:
                    readable, _ = _select(rlist, [], 1.0)
                except OSError:
                    continue
                if self._wake_r in readable:
                    try:
                        while self._wake_r.recv(256):
                            pass
                    except OSError:
                        pass
                if self._listener is not None and self._listener in readable:
                    try:
                        client, _ = self._listener.accept()
                    except OSError:
                        continue
                    with self._lock:
                        self._connections += 1
                        n = self._connections
                        t = threading.Thread(target=self._serve, args=(client,),
                                             name=f"faultproxy-{self.port}-conn{n}", daemon=True)
                        self._threads = {x for x in self._threads if x.is_alive()}
                        self._threads.add(t)
                    t.start()
        finally:
            _close(self._listener)
            self._listener = None
            with self._cond:
                self._listening = False
                self._cond.notify_all()

    # ----------------------------------------------------------- connection
    def _serve(self, client: socket.socket) -> None:
        conn = _Connection(self, client)
        try:
            conn.run()
        except Exception:  # never let a fault kill the test run; just drop it
            conn.abort()
        finally:
            conn.close_all()


class _Connection:
    """One client connection and its upstream leg, driven by one thread."""

    def __init__(self, proxy: FaultProxy, client: socket.socket) -> None:
        self.p = proxy
        self.c: Optional[socket.socket] = client
        self.u: Optional[socket.socket] = None
        self.generation = proxy._generation

    # -- teardown helpers
    def close_all(self) -> None:
        _close(self.c)
        _close(self.u)
        self.c = self.u = None

    def abort(self) -> None:
        _rst_close(self.c)
        _rst_close(self.u)
        self.c = self.u = None

    def _stopping(self) -> bool:
        return self.p._stopping.is_set() or self.generation != self.p._generation

    def _drain_client(self, seconds: float) -> None:
        """Read and discard client data until EOF (so a close sends FIN, not RST)."""
        c = self.c
        deadline = time.monotonic() + seconds
        c.setblocking(False)
        while not self._stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                r, _ = _select([c], [], min(left, _POLL))
                if r and not c.recv(_CHUNK):
                    return
            except OSError:
                return

    # -- simple modes
    def _blackhole(self) -> None:
        c = self.c
        c.setblocking(False)
        while not self._stopping():
            try:
                r, _ = _select([c], [], _POLL)
                if r and not c.recv(_CHUNK):
                    return
            except OSError:
                return

    def _http500(self) -> None:
        c = self.c
        c.setblocking(False)
        buf = b""
        deadline = time.monotonic() + 5.0
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline and not self._stopping():
            try:
                r, _ = _select([c], [], _POLL)
                if r:
                    data = c.recv(_CHUNK)
                    if not data:
                        return
                    buf += data
            except OSError:
                return
        body = b"faultproxy: injected 500\n"
        resp = (b"HTTP/1.1 500 Internal Server Error\r\n"
                b"Content-Type: text/plain\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                b"Connection: close\r\n\r\n" + body)
        try:
            c.setblocking(True)
            c.settimeout(2.0)
            c.sendall(resp)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            return
        self._drain_client(2.0)

    # -- main loop
    def run(self) -> None:
        p = self.p
        mode = p._mode
        if mode in ("refuse", "reset"):
            _rst_close(self.c)
            self.c = None
            return
        if mode == "http500":
            return self._http500()
        if mode == "garbage":
            try:
                self.c.setblocking(True)
                self.c.settimeout(2.0)
                self.c.sendall(bytes(p.garbage))
                self.c.shutdown(socket.SHUT_WR)
            except OSError:
                return
            return self._drain_client(2.0)
        if mode == "blackhole":
            return self._blackhole()
        try:
            self.u = socket.create_connection((p.upstream_host, p.upstream_port),
                                              timeout=_CONNECT_TIMEOUT)
        except OSError:
            self.abort()          # upstream down: the client sees a reset
            return
        self._pump()

    def _delay(self, mode: Optional[str], n: int) -> float:
        if mode == "latency":
            return max(0.0, float(self.p.latency))
        if mode == "bandwidth" and self.p.bandwidth > 0:
            return n / float(self.p.bandwidth)
        return 0.0

    def _pump(self) -> None:  # noqa: C901 - one state machine, kept in one place
        p = self.p
        c, u = self.c, self.u
        for s in (c, u):
            s.setblocking(False)
            _nodelay(s)
        c2s, s2c = _Queue(), _Queue()
        c_eof = u_eof = False          # read side of that peer finished
        c_fin_sent = u_fin_sent = False
        client_gone = False            # hold "after": client left, draining upstream
        drain_start = 0.0
        s2c_sent = 0
        up_bytes_since_match = 0
        last_up_data = time.monotonic()
        # HTTP request detection for hold()
        http = True
        first_request = True
        expect_req = True
        head = b""
        gate_c2s = 0.0                 # hold "before": c2s release not before this
        gate_s2c = 0.0                 # hold "after": s2c release not before this
        after_match = False

        while True:
            if self._stopping():
                return
            now = time.monotonic()
            mode = p._mode
            limit = None               # max total bytes server->client
            if mode in ("reset_after", "close_after", "hang_after"):
                limit = max(0, int(p.after_bytes))
            elif mode == "blackhole":
                limit = s2c_sent

            if not client_gone and limit is not None and s2c_sent >= limit:
                if mode == "reset_after":
                    _wait_unsent(c)
                    _rst_close(c)
                    self.c = None
                    return
                if mode == "close_after":
                    try:
                        c.shutdown(socket.SHUT_WR)
                    except OSError:
                        return
                    _close(u)
                    self.u = None
                    self._drain_client(2.0)
                    return
            s2c_stalled = limit is not None and s2c_sent >= limit

            # ---- termination / half-close propagation
            if c_eof and not client_gone and not c2s.chunks and not u_fin_sent and not u_eof:
                try:
                    u.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                u_fin_sent = True
            if u_eof and not client_gone and not s2c.chunks and not c_fin_sent and not s2c_stalled:
                try:
                    c.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                c_fin_sent = True
            if client_gone:
                if not c2s.chunks and (
                        u_eof
                        or (up_bytes_since_match and now - last_up_data >= DRAIN_IDLE)
                        or now - drain_start >= DRAIN_MAX):
                    return
            elif c_eof and u_eof and not c2s.chunks and not s2c.chunks:
                return

            # ---- what to wait for
            rlist, wlist = [], []
            if not c_eof and c2s.size < _BACKLOG:
                rlist.append(c)
            if not u_eof and s2c.size < _BACKLOG:
                rlist.append(u)
            if c2s.ready(now) and not u_fin_sent:
                wlist.append(u)
            if not client_gone and not s2c_stalled and s2c.ready(now):
                wlist.append(c)
            timeout = _POLL
            for q in (c2s, s2c):
                nr = q.next_release()
                if nr is not None and nr > now:
                    timeout = min(timeout, nr - now)
            try:
                readable, writable = _select(rlist, wlist, timeout)
            except (OSError, ValueError):
                return
            now = time.monotonic()

            # ---- client -> proxy
            if c in readable:
                try:
                    data = c.recv(_CHUNK)
                    reset = False
                except BlockingIOError:
                    data, reset = None, False
                except OSError:
                    data, reset = b"", True
                if data is not None and not data:
                    c_eof = True
                    if head:                              # undecided partial request
                        c2s.push(head, now + self._delay(mode, len(head)))
                        head = b""
                    if now < gate_c2s:                    # hold "before": drop request
                        c2s.clear()
                        return
                    if after_match and (now < gate_s2c or s2c.chunks):
                        client_gone = True                # hold "after": drain upstream
                        drain_start = now
                        s2c.clear()
                    elif reset:
                        _rst_close(u)
                        self.u = None
                        return
                elif data:
                    if mode == "blackhole":
                        pass                              # discard
                    else:
                        hold = p._hold
                        if http and expect_req:
                            head += data
                            if (hold is not None and len(head) < len(hold[0])
                                    and hold[0].startswith(head)):
                                data = b""                # undecided: wait for more
                            else:
                                data, head = head, b""
                            if data:
                                expect_req = False
                                if first_request and not data.startswith(_HTTP_METHODS):
                                    http = False
                                first_request = False
                                if http and hold is not None and data.startswith(hold[0]):
                                    p._matched()
                                    if hold[2] == "before":
                                        gate_c2s = now + hold[1]
                                    else:
                                        gate_s2c = now + hold[1]
                                        after_match = True
                                        up_bytes_since_match = 0
                        if data:
                            c2s.push(data, max(now + self._delay(mode, len(data)), gate_c2s))

            # ---- upstream -> proxy
            if u in readable:
                try:
                    data = u.recv(_CHUNK)
                    reset = False
                except BlockingIOError:
                    data, reset = None, False
                except OSError:
                    data, reset = b"", True
                if data is not None and not data:
                    u_eof = True
                    if reset and not client_gone:
                        _rst_close(c)
                        self.c = None
                        return
                elif data:
                    last_up_data = now
                    up_bytes_since_match += len(data)
                    if http and not expect_req:
                        if data.startswith(b"HTTP/1.") and data[9:12] == b"101":
                            http = False                  # upgraded: not HTTP any more
                        expect_req = True
                    if not client_gone:
                        s2c.push(data, max(now + self._delay(mode, len(data)), gate_s2c))

            # ---- proxy -> upstream
            if u in writable and c2s.ready(now):
                try:
                    n = u.send(c2s.head())
                    c2s.consume(n)
                except BlockingIOError:
                    pass
                except OSError:
                    if not client_gone:
                        _rst_close(c)
                        self.c = None
                    return

            # ---- proxy -> client
            if c in writable and not client_gone and s2c.ready(now):
                chunk = s2c.head()
                if limit is not None:
                    chunk = chunk[:max(0, limit - s2c_sent)]
                if chunk:
                    try:
                        n = c.send(chunk)
                        s2c.consume(n)
                        s2c_sent += n
                    except BlockingIOError:
                        pass
                    except OSError:
                        return                            # client gone: close upstream
