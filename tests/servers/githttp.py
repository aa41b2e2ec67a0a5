"""Git smart-HTTP(S) test server: stdlib ``ThreadingHTTPServer`` + ``git http-backend``.

Runs in the test process (a background thread) and serves every repository
under ``project_root`` with HTTP Basic auth::

    with GitHttpServer(root, "alice", "s3cret", certfile, keyfile) as srv:
        url = srv.url_for("flows")        # https://127.0.0.1:PORT/flows.git
        srv.fault = {"status": 500, "paths": "git-upload-pack"}
        srv.requests.count("POST", "git-upload-pack")

Design notes (see TESTBED.md §1):

* ``git http-backend`` is run as a CGI per request, with a hermetic env
  (``GIT_CONFIG_NOSYSTEM=1``, ``GIT_CONFIG_GLOBAL=/dev/null``) and
  ``http.receivepack=true`` injected through ``GIT_CONFIG_COUNT``, so pushes
  work on every repository without touching its config.
* Chunked request bodies (large pushes) are decoded into a temporary file,
  which becomes the CGI's stdin: no pipe deadlock, no size limit.
* Every request header except ``Authorization`` reaches the CGI as
  ``HTTP_*`` (``Git-Protocol``, ``Content-Encoding: gzip`` ...).
* The CGI ``Status:`` line is honoured and the reply streamed chunked.
* ``disable_nagle_algorithm`` avoids a 40 ms Nagle/delayed-ACK stall per
  request; the TLS handshake runs in the worker thread, so a stuck client
  cannot block ``accept()``.
"""

from __future__ import annotations

import base64
import hmac
import os
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .common import RequestLog

__all__ = ["GitHttpServer", "RequestLog"]

_COPY_CHUNK = 64 * 1024


def _copy_exact(src, dst, n: int) -> None:
    while n > 0:
        data = src.read(min(n, _COPY_CHUNK))
        if not data:
            raise ConnectionError("client closed the connection mid-body")
        dst.write(data)
        n -= len(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, chunked replies
    disable_nagle_algorithm = True
    timeout = 60                       # idle keep-alive / stuck client
    server_version = "githttp-test/1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    # -- request handling -------------------------------------------------
    def _serve(self) -> None:
        owner = self.server.owner
        owner.requests.append((self.command, self.path))
        body, length = self._read_body()
        try:
            fault = owner.fault  # one snapshot per request
            if fault and str(fault.get("paths", "")) in self.path:
                if fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                if fault.get("status"):
                    self._simple_reply(int(fault["status"]), b"injected fault\n")
                    return
            if not self._authorized(owner.username, owner.password):
                self._simple_reply(
                    401, b"authentication required\n",
                    {"WWW-Authenticate": 'Basic realm="git", charset="UTF-8"'},
                )
                return
            self._run_backend(body, length)
        finally:
            body.close()

    def _read_body(self):
        """Read the request body (plain or chunked) into a temporary file."""
        f = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        length = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("client closed the connection mid-body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    break
                _copy_exact(self.rfile, f, size)
                self.rfile.readline(16)  # CRLF after the chunk
                length += size
        else:
            length = int(self.headers.get("Content-Length") or 0)
            _copy_exact(self.rfile, f, length)
        # subprocess needs a real fd for stdin
        f.rollover()
        f.seek(0)
        return f, length

    def _authorized(self, username: str, password: str) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except ValueError:
            return False
        expected = f"{username}:{password}".encode()
        return hmac.compare_digest(given, expected)

    def _simple_reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cgi_env(self, length: int) -> dict[str, str]:
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": self.server_version,
            "SERVER_PROTOCOL": self.request_version,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(owner.port),
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "AUTH_TYPE": "Basic",
            "REMOTE_USER": owner.username,
            "CONTENT_LENGTH": str(length),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "GIT_PROJECT_ROOT": str(owner.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
        }
        for name in set(self.headers.keys()):
            if name.lower() == "authorization":
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            env[key] = ", ".join(self.headers.get_all(name) or [])
        return env

    def _run_backend(self, body, length: int) -> None:
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                ["git", "http-backend"], stdin=body, stdout=subprocess.PIPE,
                stderr=err, env=self._cgi_env(length),
            )
            try:
                self._relay(proc)
            except OSError:
                self.close_connection = True  # client went away mid-reply
                proc.kill()
            finally:
                proc.stdout.close()
                proc.wait()
                err.seek(0)
                msg = err.read().decode(errors="replace").strip()
                if msg:
                    self.server.owner.backend_errors.append(msg)

    def _relay(self, proc: subprocess.Popen) -> None:
        """Translate the CGI reply (headers, blank line, body) to HTTP/1.1 chunked."""
        status, headers = 200, []
        while True:
            line = proc.stdout.readline()
            if not line:  # backend died before finishing its headers
                self._simple_reply(502, b"git http-backend failed\n")
                return
            line = line.rstrip(b"\r\n")
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            value = value.strip()
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name.lower() not in ("content-length", "transfer-encoding", "connection"):
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while data := proc.stdout.read1(_COPY_CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: "GitHttpServer", ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.ssl_context = ssl_context
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls getfqdn(), a possible DNS stall.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address) -> None:
        # Runs in the per-connection worker thread.
        if self.ssl_context is not None:
            request.settimeout(10)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return  # shutdown_request() closes the socket
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # resets / timeouts from clients are expected in fault tests
        super().handle_error(request, client_address)


class GitHttpServer:
    """Serve bare repositories under ``project_root`` over git smart HTTP(S).

    Plain HTTP unless ``certfile``/``keyfile`` are given.  Attributes:

    * ``url``      – ``https://127.0.0.1:PORT`` (no trailing slash)
    * ``port``     – the bound port (after ``start()``)
    * ``requests`` – :class:`RequestLog` of ``(method, path)`` served
    * ``fault``    – ``None`` or a dict, read once per request:
      ``{"status": 500}`` answer every request with that status;
      ``{"delay": 1.5}`` sleep before handling; both may be combined;
      ``"paths": "git-upload-pack"`` limits the fault to request targets
      containing that substring.
    * ``backend_errors`` – stderr text of ``git http-backend`` runs.
    """

    def __init__(self, project_root: str | os.PathLike[str], username: str, password: str,
                 certfile: str | None = None, keyfile: str | None = None) -> None:
        if shutil.which("git") is None:
            raise RuntimeError("git is not installed")
        self.project_root = Path(project_root).resolve()
        self.username = username
        self.password = password
        self.certfile, self.keyfile = certfile, keyfile
        self.fault: dict[str, Any] | None = None
        self.requests = RequestLog()
        self.backend_errors: list[str] = []
        self.port: int | None = None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url_for(self, name: str) -> str:
        """URL of repository ``name`` (``.git`` appended unless present)."""
        if not name.endswith(".git"):
            name += ".git"
        return f"{self.url}/{name}"

    def start(self) -> "GitHttpServer":
        ctx = None
        if self.certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
        self._httpd = _Server(self, ctx)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"githttp:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> "GitHttpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
