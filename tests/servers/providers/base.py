"""What the four provider fakes share: the loopback server, request checks, state and
fault injection (see the package docstring)."""
from __future__ import annotations

import abc
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str  # raw, still percent-encoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Reply:
    status: int  # 0: no answer at all, the connection is dropped
    body: Any = None  # dict/list → JSON, str → text/plain, None → empty
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """A one-off failure of one route (see `_Fake.fail_next`)."""

    handler: str
    status: int  # an HTTP status, or 0 to drop the connection without an answer
    after: bool  # True: the request takes effect, then its answer is lost


@dataclass
class Repo:
    branches: dict[str, str]
    pulls: dict[int, dict] = field(default_factory=dict)
    next_number: int = 1
    project_id: int = 0  # GitLab's numeric id


def check_fields(obj: Any, spec: dict[str, tuple[type, bool]]) -> list[str]:
    """Problems with `obj` against {dotted.name: (type, required)}; a required string
    must be non-empty."""
    if not isinstance(obj, dict):
        return ["the body is not a JSON object"]
    problems = []
    for dotted, (typ, required) in spec.items():
        cur: Any = obj
        for key in dotted.split("."):
            cur = cur.get(key) if isinstance(cur, dict) else None
        if cur is None:
            if required:
                problems.append(f"{dotted} is missing")
        elif (typ is bool) != isinstance(cur, bool) or not isinstance(cur, typ) or (required and typ is str and not cur):
            problems.append(f"{dotted} is invalid")
    return problems


class _Fake(abc.ABC):
    provider = ""
    prefix = ""  # the API root's path on this server
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = []  # (method, raw-path regex, handler name)

    def __init__(self, token: str = "test-token", port: int = 0) -> None:
        self.token = token
        self.errors: list[str] = []
        self.requests: list[Seen] = []
        self.repos: dict[str, Repo] = {}
        self.rate_limit_remaining: int | None = None  # None: unlimited; counts down; 0: limited
        self.rate_limit_reset = int(time.time()) + 900
        self.delay = 0.0
        self.fault_status: int | None = None
        self.fault_message = "fault injected by the test"
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._connections: set[socket.socket] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"")
                try:
                    reply = fake._dispatch(seen)
                except Exception as exc:  # noqa: BLE001 - a bug in the fake must fail the test, not hang it
                    fake.errors.append(f"fake crashed on {seen.method} {seen.path}: {exc!r}")
                    reply = Reply(500, {"message": "fake crashed"})
                if reply.status == 0:  # an injected fault: no answer, the connection is cut
                    self.close_connection = True
                    return
                if isinstance(reply.body, (dict, list)):
                    data, ctype = json.dumps(reply.body).encode(), "application/json; charset=utf-8"
                else:
                    data, ctype = (reply.body or "").encode(), "text/plain; charset=utf-8"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._handler = Handler
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self.up()

    # --- lifecycle -------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_root(self) -> str:
        return self.url + self.prefix

    def up(self) -> None:
        """Listen (again, on the same port after `down()`), with the state kept."""
        if self._server is not None:
            return
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-{self.provider}", daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening and cut open connections: clients get "connection refused"
        until `up()` (the provider or the network is down)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            live, self._connections = list(self._connections), set()
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- state for tests -------------------------------------------------------
    def add_repo(self, path: str, branches: dict[str, str]) -> Repo:
        with self._lock:
            repo = self.repos[path] = Repo(dict(branches), project_id=100 + len(self.repos))
            return repo

    def _repo(self, repo: str | None) -> Repo:
        return self.repos[repo] if repo else next(iter(self.repos.values()))

    def merge(self, number: int, merge_commit_sha: str, repo: str | None = None) -> None:
        """Merge request `number` as the provider's merge button would: the base branch
        moves to `merge_commit_sha`."""
        with self._lock:
            r = self._repo(repo)
            pr = r.pulls[number]
            pr.update(state="merged", merge_sha=merge_commit_sha)
            r.branches[pr["base"]] = merge_commit_sha

    def close(self, number: int, repo: str | None = None) -> None:
        with self._lock:
            self._repo(repo).pulls[number]["state"] = "closed"

    def fail_next(self, handler: str, status: int = 500, after: bool = False) -> None:
        """The next request routed to `handler` (e.g. "create_pull") fails once: with
        `status` in the provider's error shape, or with no answer at all (`status=0`).
        `after=True` lets the request take effect first, as when a provider (or a proxy
        in front of it) loses the answer to a request it carried out."""
        with self._lock:
            self.faults.append(Fault(handler, status, after))

    def _take_fault(self, handler: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.handler == handler:
                    return self.faults.pop(i)
        return None

    def _fault_reply(self, fault: Fault) -> Reply:
        return Reply(0) if fault.status == 0 else self.error(fault.status, self.fault_message)

    def _pulls_of(self, repo: Repo) -> list[dict]:
        with self._lock:
            return [repo.pulls[n] for n in sorted(repo.pulls)]

    # --- request handling ------------------------------------------------------
    def violation(self, seen: Seen, what: str) -> None:
        self.errors.append(f"{seen.method} {seen.path}: {what}")

    def _dispatch(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
        if self.delay:
            time.sleep(self.delay)
        if self.fault_status:
            return self.error(self.fault_status, self.fault_message)
        for method, pattern, name in self.routes:
            m = pattern.fullmatch(seen.path[len(self.prefix):]) if seen.path.startswith(self.prefix) else None
            if m and method == seen.method:
                break
        else:
            self.violation(seen, "not a documented route")
            return self.not_found_route()
        fault = self._take_fault(name)
        if fault is not None and not fault.after:
            return self._fault_reply(fault)
        reply = self._answer(seen, name, m.groups())
        if fault is not None:
            return self._fault_reply(fault)
        reply.headers = {**self.common_headers(), **reply.headers}
        return reply

    def check_query(self, seen: Seen, allowed: dict[str, re.Pattern | None]) -> list[str]:
        """Problems with the query string: a parameter the endpoint does not document, a
        repeated one, or a value that does not match (None: any value)."""
        problems = []
        for name, values in seen.query.items():
            if name not in allowed:
                problems.append(f"query parameter {name!r} is not documented here")
            elif len(values) != 1:
                problems.append(f"query parameter {name!r} is repeated")
            elif allowed[name] is not None and not allowed[name].fullmatch(values[0]):
                problems.append(f"query parameter {name}={values[0]!r} is invalid")
        return problems

    @staticmethod
    def query(seen: Seen, name: str, default: str | None = None) -> str | None:
        values = seen.query.get(name)
        return values[0] if values else default

    def _answer(self, seen: Seen, name: str, args: tuple) -> Reply:
        bad = self.check_headers(seen) or self.check_auth(seen)
        if bad:
            return bad
        with self._lock:
            if self.rate_limit_remaining is not None:
                if self.rate_limit_remaining <= 0:
                    return self.rate_limited()
                self.rate_limit_remaining -= 1
            payload = None
            if seen.method in ("POST", "PUT", "PATCH"):
                if seen.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                    self.violation(seen, f"content type {seen.headers.get('content-type')!r}, not application/json")
                    return self.error(415, "Unsupported Media Type")
                try:
                    payload = json.loads(seen.body)
                except ValueError:
                    self.violation(seen, "body is not JSON")
                    return self.error(400, "Problems parsing JSON")
            return getattr(self, name)(seen, payload, *args)

    def check_auth_value(self, seen: Seen, value: str | None, schemes: tuple[str, ...]) -> Reply | None:
        """Authorization-style check: a missing or foreign scheme is a violation (the
        client broke the documented contract); a wrong token is just a 401."""
        if not value:
            self.violation(seen, "no credentials")
            return self.error(401, "Unauthorized")
        scheme, _, credential = value.partition(" ")
        if scheme.lower() not in schemes:
            self.violation(seen, f"auth scheme {scheme!r} is not one of {schemes}")
            return self.error(401, "Unauthorized")
        if credential != self.token:
            return self.bad_credentials()
        return None

    # Provider-specific hooks.
    def common_headers(self) -> dict[str, str]:
        return {}

    def check_headers(self, seen: Seen) -> Reply | None:
        return None

    @abc.abstractmethod
    def check_auth(self, seen: Seen) -> Reply | None:
        """Each provider's fake answers in its own documented shape."""

    @abc.abstractmethod
    def error(self, status: int, message: Any, **extra: Any) -> Reply:
        """Each provider's fake answers in its own documented shape."""

    def bad_credentials(self) -> Reply:
        return self.error(401, "Unauthorized")

    def not_found_route(self) -> Reply:
        return self.error(404, "Not Found")

    @abc.abstractmethod
    def rate_limited(self) -> Reply:
        """Each provider's fake answers in its own documented shape."""

    def _new_pull(self, repo: Repo, base: str, head: str, title: str, body: str) -> dict:
        number = repo.next_number
        repo.next_number += 1
        pr = {"number": number, "base": base, "head": head, "title": title, "body": body, "state": "open",
              "head_sha": repo.branches[head], "base_sha": repo.branches[base], "merge_sha": None}
        repo.pulls[number] = pr
        return pr

    def _open_duplicate(self, repo: Repo, base: str, head: str) -> dict | None:
        return next((p for p in repo.pulls.values() if p["state"] == "open" and p["head"] == head and p["base"] == base
                     and not p.get("fork")), None)

    def open_from_fork(self, fork: str, base: str, head: str, head_sha: str, title: str = "From a fork",
                       repo: str | None = None) -> int:
        """A request someone opened from branch `head` of their fork `fork` ("owner/name")
        into `base` of this repository; its number."""
        with self._lock:
            r = self._repo(repo)
            number = r.next_number
            r.next_number += 1
            r.pulls[number] = {"number": number, "base": base, "head": head, "title": title, "body": "", "state": "open",
                               "head_sha": head_sha, "base_sha": r.branches[base], "merge_sha": None, "fork": fork}
            return number


def _seg(name: str) -> str:
    return rf"(?P<{name}>[^/]+)"
