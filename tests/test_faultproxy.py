"""Tests for tests/servers/faultproxy.py against a real loopback HTTP upstream."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.servers.faultproxy import FaultProxy

BIG = bytes(range(256)) * (2 * 1024 * 1024 // 256)      # 2 MiB response body


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, float]] = []     # (method, path, monotonic)
        self.bodies: list[tuple[str, bytes]] = []       # (path, body) of POSTs

    def handle_error(self, request, client_address) -> None:
        pass    # the proxy resets/closes the upstream leg on purpose in fault tests

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.log if m == method and p == path)

    def reset(self) -> None:
        with self.lock:
            self.log.clear()
            self.bodies.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, like Node-RED
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet
        pass

    def _record(self) -> None:
        with self.server.lock:
            self.server.log.append((self.command, self.path, time.monotonic()))

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._record()
        if self.path == "/comms":          # websocket-like upgrade, then echo bytes
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.close_connection = True
            while True:
                data = self.rfile.read1(4096)
                if not data:
                    return
                self.wfile.write(data)
        elif self.path == "/big":
            self._reply(200, BIG)
        else:
            self._reply(200, b"hello " + self.path.encode())

    def do_POST(self) -> None:
        self._record()                      # on arrival, before the body
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.bodies.append((self.path, body))
        self._reply(200, b"ok %d" % len(body))


@pytest.fixture(scope="module")
def upstream():
    srv = _Upstream()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def up(upstream):
    upstream.reset()
    return upstream


@pytest.fixture
def px(up):
    with FaultProxy("127.0.0.1", up.server_address[1]) as proxy:
        yield proxy


def _raw_get(port: int, path: str, timeout: float = 3.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return s


def _read_all(s: socket.socket) -> tuple[bytes, BaseException | None]:
    """Read until EOF or error; return (data, exception or None on clean EOF)."""
    buf = bytearray()
    while True:
        try:
            data = s.recv(65536)
        except OSError as e:
            return bytes(buf), e
        if not data:
            return bytes(buf), None
        buf += data


def _wait_for(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


# --------------------------------------------------------------------------
def test_passthrough_get_post_keepalive(px, up):
    url = px.url_for("http")
    assert url == f"http://127.0.0.1:{px.port}" and px.port != up.server_address[1]
    with requests.Session() as s:
        r = s.get(url + "/small", timeout=3)
        assert r.status_code == 200 and r.content == b"hello /small"
        r = s.post(url + "/flows", data=b"z" * 300_000, timeout=3)
        assert r.status_code == 200 and r.content == b"ok 300000"
        r = s.get(url + "/big", timeout=3)
        assert r.content == BIG
    assert px.connections == 1                       # keep-alive over the proxy
    assert up.bodies == [("/flows", b"z" * 300_000)]
    assert up.count("GET", "/small") == 1


def test_refuse_then_recover_on_same_port(px, up):
    url = px.url_for("http")
    px.mode = "refuse"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", px.port), timeout=1).close()
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/small", timeout=3)
    assert time.monotonic() - t0 < 1.0
    assert px.connections == 0 and up.log == []
    px.mode = None
    assert requests.get(url + "/small", timeout=3).content == b"hello /small"


def test_reset_mode_accepts_then_resets(px, up):
    px.mode = "reset"
    s = _raw_get(px.port, "/small")
    data, err = _read_all(s)
    s.close()
    assert data == b"" and isinstance(err, ConnectionResetError)
    assert px.connections == 1 and up.log == []


def test_blackhole_times_out(px, up):
    px.mode = "blackhole"
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(px.url_for("http") + "/flows", data=b"x" * 1000, timeout=1)
    assert time.monotonic() - t0 >= 0.9
    assert px.connections == 1                       # the connect itself succeeded
    assert up.log == []                              # upstream never contacted


def test_reset_after_cuts_large_response(px, up):
    px.set_mode("reset_after", after_bytes=100_000)
    s = _raw_get(px.port, "/big")
    data, err = _read_all(s)
    s.close()
    assert len(data) == 100_000 and data.startswith(b"HTTP/1.1 200")
    assert isinstance(err, ConnectionResetError)
    with pytest.raises((requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ConnectionError)) as ei:
        requests.get(px.url_for("http") + "/big", timeout=3)
    assert "reset" in repr(ei.value).lower() or "broken" in repr(ei.value).lower()


def test_close_after_sends_fin(px, up):
    px.set_mode("close_after", after_bytes=50_000)
    s = _raw_get(px.port, "/big")
    data, err = _read_all(s)
    s.close()
    assert len(data) == 50_000 and err is None       # clean EOF, not a reset
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(px.url_for("http") + "/big", timeout=3)


def test_hang_after_stalls_then_resumes(px, up):
    s = _raw_get(up.server_address[1], "/big")        # reference, direct
    full, err = _read_all(s)
    s.close()
    assert err is None and full.endswith(BIG)

    px.set_mode("hang_after", after_bytes=30_000)
    s = _raw_get(px.port, "/big", timeout=0.5)
    buf = bytearray()
    with pytest.raises(TimeoutError):
        while True:
            data = s.recv(65536)
            assert data, "connection closed during hang"
            buf += data
    assert len(buf) == 30_000                         # stalled, still open
    px.mode = None                                    # existing connection resumes
    s.settimeout(3)
    rest, err = _read_all(s)
    s.close()
    assert err is None and bytes(buf) + rest == full


def test_latency_adds_delay(px, up):
    url = px.url_for("http")
    t0 = time.monotonic()
    assert requests.get(url + "/small", timeout=3).status_code == 200
    base = time.monotonic() - t0
    px.set_mode("latency", latency=0.3)
    t0 = time.monotonic()
    r = requests.get(url + "/small", timeout=5)
    slow = time.monotonic() - t0
    assert r.content == b"hello /small"
    assert slow - base >= 0.55                        # >= one chunk each way
    assert slow < 3


def test_http500_without_upstream(px, up):
    px.mode = "http500"
    url = px.url_for("http")
    r = requests.get(url + "/small", timeout=3)
    assert r.status_code == 500 and b"injected" in r.content
    r = requests.post(url + "/flows", data=b"q" * 200_000, timeout=3)
    assert r.status_code == 500
    assert up.log == [] and px.connections == 2


def test_hold_before_client_gives_up_request_dropped(px, up):
    url = px.url_for("http")
    px.hold(b"POST /flows", 1.5, forward="before")
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url + "/flows", data=b"x" * 5000, timeout=0.5)
    assert px.held.is_set() and px.held_requests == 1
    # other requests (other connections, other prefixes) pass meanwhile
    assert requests.get(url + "/small", timeout=2).content == b"hello /small"
    time.sleep(max(0.0, t0 + 2.5 - time.monotonic()))
    assert up.count("POST", "/flows") == 0 and up.bodies == []
    assert up.count("GET", "/small") == 1


def test_hold_before_patient_client_keepalive(px, up):
    url = px.url_for("http")
    with requests.Session() as s:
        assert s.get(url + "/small", timeout=3).status_code == 200
        px.hold(b"POST /flows", 0.5, forward="before")
        t0 = time.monotonic()
        r = s.post(url + "/flows", data=b"k" * 2000, timeout=5)  # 2nd request, same conn
        assert time.monotonic() - t0 >= 0.45
        assert r.content == b"ok 2000" and px.held.is_set()
        px.clear_hold()
        assert not px.held.is_set()
        t0 = time.monotonic()
        assert s.post(url + "/flows", data=b"k", timeout=5).content == b"ok 1"
        assert time.monotonic() - t0 < 0.4
    assert px.connections == 1
    assert up.bodies == [("/flows", b"k" * 2000), ("/flows", b"k")]


def test_hold_after_request_reaches_upstream_although_client_left(px, up):
    url = px.url_for("http")
    px.hold(b"POST /flows", 1.5, forward="after")
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url + "/flows", data=b"y" * 200_000, timeout=0.5)
    assert px.held.is_set()
    assert up.bodies == [("/flows", b"y" * 200_000)]   # full body forwarded
    (m, p, when), = up.log
    assert when - t0 < 0.4                              # forwarded at once
    # the proxy drains the discarded response and closes the upstream leg
    assert _wait_for(lambda: px.active == 0, 3.0)


def test_hold_after_patient_client_gets_delayed_response(px, up):
    px.hold(b"POST /flows", 0.6, forward="after")
    t0 = time.monotonic()
    r = requests.post(px.url_for("http") + "/flows", data=b"abc", timeout=5)
    assert time.monotonic() - t0 >= 0.55 and r.content == b"ok 3"
    (m, p, when), = up.log
    assert when - t0 < 0.3


def test_hold_ignores_upgraded_connection(px, up):
    px.hold(b"POST /flows", 5, forward="before")
    s = socket.create_connection(("127.0.0.1", px.port), timeout=2)
    s.sendall(b"GET /comms HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    frame = b"POST /flows HTTP/1.1\r\n\r\n"            # payload after the upgrade
    t0 = time.monotonic()
    s.sendall(frame)
    echo = b""
    while len(echo) < len(frame):
        echo += s.recv(4096)
    s.close()
    assert echo == frame and time.monotonic() - t0 < 1.0
    assert not px.held.is_set()


def test_existing_connection_reset_when_mode_switches(px, up):
    s = socket.create_connection(("127.0.0.1", px.port), timeout=3)
    s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")    # keep-alive
    got = b""
    while not got.endswith(b"hello /small"):
        data = s.recv(65536)
        assert data
        got += data
    px.set_mode("reset_after", after_bytes=0)             # already past 0 bytes
    data, err = _read_all(s)
    s.close()
    assert data == b"" and isinstance(err, ConnectionResetError)
