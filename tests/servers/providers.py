"""Loopback fakes of the hosted providers' pull/merge request APIs (PROVIDERS.md §4–§6).

Each fake is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) that *checks*
every request against the provider's documented shape: the route (GitLab's on the
raw, still-encoded path), the auth scheme, the documented Accept/version headers,
the JSON content type and the required fields with their types. A request that is
off gets the provider's error shape and a line in ``.errors`` (tests assert it
stays empty); a wrong token, an unknown repository, a duplicate or a spent rate
limit get the documented answer *without* a violation, as they are what tests
provoke::

    with FakeGitHub(token="tok") as gh:
        gh.add_repo("acme/flows", {"main": SHA1, "promote/x": SHA2})
        client = client_for("https://github.com/acme/flows", lambda: "tok", api_base=gh.api_root)
        pr = client.open_pull_request("main", "promote/x", "t", "b")
        gh.merge(pr.number, SHA3)
        gh.rate_limit_remaining = 0          # next request: the documented limit answer
        assert gh.errors == []

State: ``.repos[path].branches`` (name → SHA), ``.repos[path].pulls`` (number →
record). ``.requests`` logs every request; ``.delay`` stalls answers; ``.fault_status``
answers every request with that status and ``.fault_message`` in the provider's
error shape. Choices PROVIDERS.md leaves unconfirmed are marked "assumed" below.
"""
from __future__ import annotations

import abc

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeBitbucket", "FakeGitHub", "FakeGitLab", "FakeGitea", "Seen"]


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
    status: int
    body: Any = None  # dict/list → JSON, str → text/plain, None → empty
    headers: dict[str, str] = field(default_factory=dict)


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

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.errors: list[str] = []
        self.requests: list[Seen] = []
        self.repos: dict[str, Repo] = {}
        self.rate_limit_remaining: int | None = None  # None: unlimited; counts down; 0: limited
        self.rate_limit_reset = int(time.time()) + 900
        self.delay = 0.0
        self.fault_status: int | None = None
        self.fault_message = "fault injected by the test"
        self._lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-{self.provider}", daemon=True)
        self._thread.start()

    # --- lifecycle -------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_root(self) -> str:
        return self.url + self.prefix

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

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
        reply = self._answer(seen, name, m.groups())
        reply.headers = {**self.common_headers(), **reply.headers}
        return reply

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
        return next((p for p in repo.pulls.values() if p["state"] == "open" and p["head"] == head and p["base"] == base), None)


def _seg(name: str) -> str:
    return rf"(?P<{name}>[^/]+)"


# ------------------------------------------------------------------------- GitHub
class FakeGitHub(_Fake):
    """api.github.com (`prefix=""`) or GitHub Enterprise Server (`prefix="/api/v3"`)."""

    provider = "github"
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls"), "create_pull"),
        ("GET", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls/(\d+)"), "get_pull"),
    ]
    DOCS = "https://docs.github.com/rest/pulls/pulls"

    def __init__(self, token: str = "test-token", prefix: str = "") -> None:
        self.prefix = prefix
        self.rate_limit_status = 403  # GitHub answers a spent primary limit with 403 or 429
        # Renamed/transferred repositories: "owner/name" → new "owner/name", or a full
        # URL prefix on another server. GitHub answers 301 (GET) or 307 (other methods).
        self.moved: dict[str, str] = {}
        super().__init__(token)

    def _moved(self, seen: Seen, owner: str, name: str) -> Reply | None:
        target = self.moved.get(f"{owner}/{name}")
        if target is None:
            return None
        rest = seen.path.split(f"/repos/{owner}/{name}", 1)[1]
        base = target if target.startswith("http") else f"{self.api_root}/repos/{target}"
        location = base + rest
        return Reply(301 if seen.method == "GET" else 307, {"message": "Moved Permanently", "url": location,
                                                            "documentation_url": self.DOCS}, {"Location": location})

    def common_headers(self) -> dict[str, str]:
        remaining = 5000 if self.rate_limit_remaining is None else self.rate_limit_remaining
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(remaining), "x-ratelimit-used": str(5000 - remaining),
                "x-ratelimit-reset": str(self.rate_limit_reset), "x-ratelimit-resource": "core"}

    def check_headers(self, seen: Seen) -> Reply | None:
        h = seen.headers
        if not h.get("user-agent"):
            self.violation(seen, "no User-Agent")
            return self.error(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.")
        if h.get("accept") != "application/vnd.github+json":
            self.violation(seen, f"Accept {h.get('accept')!r}, not application/vnd.github+json")
            return self.error(415, f"Unsupported 'Accept' header: {h.get('accept')!r}")
        if h.get("x-github-api-version") != "2022-11-28":
            self.violation(seen, f"X-GitHub-Api-Version {h.get('x-github-api-version')!r}")
            return self.error(400, f"API version {h.get('x-github-api-version')!r} is not supported.")
        return None

    def check_auth(self, seen: Seen) -> Reply | None:
        if not seen.headers.get("authorization"):
            self.violation(seen, "no credentials")
            return self.error(401, "Requires authentication")
        return self.check_auth_value(seen, seen.headers.get("authorization"), ("bearer", "token"))

    def error(self, status: int, message: Any, **extra: Any) -> Reply:
        return Reply(status, {"message": message, "documentation_url": self.DOCS, "status": str(status), **extra})

    def bad_credentials(self) -> Reply:
        return self.error(401, "Bad credentials")

    def rate_limited(self) -> Reply:
        reply = self.error(self.rate_limit_status, "API rate limit exceeded for user ID 1.")
        reply.headers = {"x-ratelimit-remaining": "0"}
        return reply

    def _validation(self, *errors: dict) -> Reply:
        return self.error(422, "Validation Failed", errors=list(errors))

    def create_pull(self, seen: Seen, payload: Any, owner: str, name: str) -> Reply:
        moved = self._moved(seen, owner, name)
        if moved:
            return moved
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None:
            return self.error(404, "Not Found")
        problems = check_fields(payload, {"title": (str, True), "head": (str, True), "base": (str, True),
                                          "body": (str, False), "draft": (bool, False)})
        if problems:
            self.violation(seen, "; ".join(problems))
            return self._validation(*({"resource": "PullRequest", "field": p.split()[0], "code": "missing_field"} for p in problems))
        base, head = payload["base"], payload["head"]
        for fld in ("base", "head"):
            if payload[fld] not in repo.branches:
                return self._validation({"resource": "PullRequest", "field": fld, "code": "invalid"})
        if repo.branches[base] == repo.branches[head]:
            return self._validation({"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head}"})
        if self._open_duplicate(repo, base, head):
            return self._validation({"resource": "PullRequest", "code": "custom",
                                     "message": f"A pull request already exists for {owner}:{head}."})
        pr = self._new_pull(repo, base, head, payload["title"], payload.get("body") or "")
        return Reply(201, self._shape(owner, name, pr), {"Location": f"{self.api_root}/repos/{owner}/{name}/pulls/{pr['number']}"})

    def get_pull(self, seen: Seen, payload: Any, owner: str, name: str, number: str) -> Reply:
        moved = self._moved(seen, owner, name)
        if moved:
            return moved
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None or int(number) not in repo.pulls:
            return self.error(404, "Not Found")
        return Reply(200, self._shape(owner, name, repo.pulls[int(number)]))

    def _shape(self, owner: str, name: str, pr: dict) -> dict:
        merged = pr["state"] == "merged"
        n = pr["number"]
        # Before the merge GitHub reports a test-merge commit here; clients must not
        # take it for the merged content.
        test_merge = f"{n:04x}".rjust(40, "e")
        return {
            "url": f"{self.api_root}/repos/{owner}/{name}/pulls/{n}", "id": 1000 + n, "number": n,
            "html_url": f"https://github.example/{owner}/{name}/pull/{n}",
            "state": "closed" if pr["state"] != "open" else "open", "title": pr["title"], "body": pr["body"],
            "draft": False, "merged": merged, "merged_at": "2024-01-01T00:00:00Z" if merged else None,
            "merge_commit_sha": pr["merge_sha"] if merged else test_merge,
            "head": {"label": f"{owner}:{pr['head']}", "ref": pr["head"], "sha": pr["head_sha"]},
            "base": {"label": f"{owner}:{pr['base']}", "ref": pr["base"], "sha": pr["base_sha"]},
        }


# ------------------------------------------------------------------------- Gitea
class FakeGitea(_Fake):
    provider = "gitea"
    prefix = "/api/v1"
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls"), "create_pull"),
        ("GET", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls/(\d+)"), "get_pull"),
    ]

    def check_auth(self, seen: Seen) -> Reply | None:
        return self.check_auth_value(seen, seen.headers.get("authorization"), ("token",))

    def error(self, status: int, message: Any, **extra: Any) -> Reply:
        return Reply(status, {"message": message, "url": f"{self.api_root}/swagger", **extra})

    def bad_credentials(self) -> Reply:
        return self.error(401, "token is required")

    def not_found_route(self) -> Reply:
        return self.error(404, "The target couldn't be found.")

    def rate_limited(self) -> Reply:
        # Assumed: Gitea documents no API rate limit; a generic 429 with Retry-After.
        return Reply(429, {"message": "Too Many Requests"}, {"Retry-After": "60"})

    def create_pull(self, seen: Seen, payload: Any, owner: str, name: str) -> Reply:
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None:
            return self.not_found_route()
        problems = check_fields(payload, {"head": (str, True), "base": (str, True), "title": (str, True), "body": (str, False)})
        if problems:
            self.violation(seen, "; ".join(problems))
            return self.error(422, "; ".join(problems))
        base, head = payload["base"], payload["head"]
        if base not in repo.branches or head not in repo.branches:
            return self.not_found_route()
        if repo.branches[base] == repo.branches[head]:
            return self.error(422, "Invalid PullRequest: There are no changes between the head and the base")
        dup = self._open_duplicate(repo, base, head)
        if dup:
            return self.error(409, f"pull request already exists for these targets [id: {dup['number']}, "
                                   f"issue_id: {dup['number']}, head_repo_id: 1, base_repo_id: 1, head_branch: {head}, base_branch: {base}]")
        pr = self._new_pull(repo, base, head, payload["title"], payload.get("body") or "")
        return Reply(201, self._shape(owner, name, pr))

    def get_pull(self, seen: Seen, payload: Any, owner: str, name: str, number: str) -> Reply:
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None or int(number) not in repo.pulls:
            return self.not_found_route()
        return Reply(200, self._shape(owner, name, repo.pulls[int(number)]))

    def _shape(self, owner: str, name: str, pr: dict) -> dict:
        merged, n = pr["state"] == "merged", pr["number"]
        return {
            "id": 500 + n, "number": n, "url": f"https://gitea.example/{owner}/{name}/pulls/{n}",
            "html_url": f"https://gitea.example/{owner}/{name}/pulls/{n}",
            "state": "open" if pr["state"] == "open" else "closed", "title": pr["title"], "body": pr["body"],
            "mergeable": True, "merged": merged, "merged_at": "2024-01-01T00:00:00Z" if merged else None,
            "merge_commit_sha": pr["merge_sha"] if merged else None,
            "head": {"label": pr["head"], "ref": pr["head"], "sha": pr["head_sha"]},
            "base": {"label": pr["base"], "ref": pr["base"], "sha": pr["base_sha"]},
        }


# ------------------------------------------------------------------------- GitLab
class FakeGitLab(_Fake):
    provider = "gitlab"
    prefix = "/api/v4"
    # `:id` is one raw segment: a number or the URL-encoded path (group%2Fproject).
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/projects/{_seg('id')}/merge_requests"), "create_mr"),
        ("GET", re.compile(rf"/projects/{_seg('id')}/merge_requests/(\d+)"), "get_mr"),
    ]

    def merge(self, number: int, merge_commit_sha: str, repo: str | None = None, how: str = "merge") -> None:
        """`how`: "merge" (merge commit), "squash" (squash + fast-forward: only
        `squash_commit_sha` is set) or "ff" (fast-forward: target = the MR head)."""
        with self._lock:
            r = self._repo(repo)
            pr = r.pulls[number]
            target = pr["head_sha"] if how == "ff" else merge_commit_sha
            pr.update(state="merged", how=how, merge_sha=target)
            r.branches[pr["base"]] = target

    def check_auth(self, seen: Seen) -> Reply | None:
        private = seen.headers.get("private-token")
        if private is not None:
            return None if private == self.token else self.bad_credentials()
        return self.check_auth_value(seen, seen.headers.get("authorization"), ("bearer",))

    def error(self, status: int, message: Any, **extra: Any) -> Reply:
        return Reply(status, {"message": message, **extra})

    def bad_credentials(self) -> Reply:
        return self.error(401, "401 Unauthorized")

    def not_found_route(self) -> Reply:
        return Reply(404, {"error": "404 Not Found"})

    def rate_limited(self) -> Reply:
        reset = self.rate_limit_reset
        return Reply(429, "Retry later\n", {
            "RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": "2000", "RateLimit-Observed": "2001",
            "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
            "Retry-After": str(max(0, reset - int(time.time()))),
        })

    def _project(self, raw_id: str) -> tuple[str, Repo] | None:
        if raw_id.isdigit():
            return next(((p, r) for p, r in self.repos.items() if r.project_id == int(raw_id)), None)
        path = unquote(raw_id)
        return (path, self.repos[path]) if path in self.repos else None

    def create_mr(self, seen: Seen, payload: Any, raw_id: str) -> Reply:
        found = self._project(raw_id)
        if found is None:
            return self.error(404, "404 Project Not Found")
        path, repo = found
        problems = check_fields(payload, {"source_branch": (str, True), "target_branch": (str, True), "title": (str, True),
                                          "description": (str, False), "remove_source_branch": (bool, False)})
        if problems:
            self.violation(seen, "; ".join(problems))
            return Reply(400, {"error": ", ".join(problems)})
        base, head = payload["target_branch"], payload["source_branch"]
        # validate_branches errors answer 409 with an array (handle_merge_request_errors!).
        if head == base:
            return self.error(409, ["You can't use same project/branch for source and target"])
        for label, branch in (("Source", head), ("Target", base)):
            if branch not in repo.branches:
                return self.error(409, [f"{label} branch \"{branch}\" does not exist"])
        dup = next((p for p in repo.pulls.values() if p["state"] == "open" and p["head"] == head), None)
        if dup:
            return self.error(409, [f"Another open merge request already exists for this source branch: !{dup['number']}"])
        pr = self._new_pull(repo, base, head, payload["title"], payload.get("description") or "")
        return Reply(201, self._shape(path, repo, pr))

    def get_mr(self, seen: Seen, payload: Any, raw_id: str, iid: str) -> Reply:
        found = self._project(raw_id)
        if found is None:
            return self.error(404, "404 Project Not Found")
        path, repo = found
        if int(iid) not in repo.pulls:
            return self.error(404, "404 Not found")
        return Reply(200, self._shape(path, repo, repo.pulls[int(iid)]))

    def _shape(self, path: str, repo: Repo, pr: dict) -> dict:
        n, how, merged = pr["number"], pr.get("how"), pr["state"] == "merged"
        return {
            "id": 9000 + n, "iid": n, "project_id": repo.project_id, "title": pr["title"], "description": pr["body"],
            "state": {"open": "opened"}.get(pr["state"], pr["state"]),
            "source_branch": pr["head"], "target_branch": pr["base"], "sha": pr["head_sha"],
            "merge_commit_sha": pr["merge_sha"] if merged and how == "merge" else None,
            "squash_commit_sha": pr["merge_sha"] if merged and how == "squash" else None,
            "web_url": f"https://gitlab.example/{path}/-/merge_requests/{n}",
        }


# ------------------------------------------------------------------------- Bitbucket
class FakeBitbucket(_Fake):
    """Bitbucket Cloud. Hashes in pull request objects are 12-hex abbreviations;
    `GET …/commit/{hash}` resolves them. `duplicate_policy` covers the unconfirmed
    answer to a second PR for the same branches: "reject" (assumed 400) or "update"
    (the existing PR comes back, as one client library reports)."""

    provider = "bitbucket"
    prefix = "/2.0"
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/pullrequests"), "create_pull"),
        ("GET", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/pullrequests/(\d+)"), "get_pull"),
        ("GET", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/commit/([0-9a-f]{{7,40}})"), "get_commit"),
    ]

    def __init__(self, token: str = "test-token", username: str | None = None) -> None:
        self.username = username  # set: HTTP Basic with this user; unset: Bearer
        self.duplicate_policy = "reject"
        self.commits: set[str] = set()
        super().__init__(token)

    def add_repo(self, path: str, branches: dict[str, str]) -> Repo:
        self.commits.update(branches.values())
        return super().add_repo(path, branches)

    def merge(self, number: int, merge_commit_sha: str, repo: str | None = None) -> None:
        self.commits.add(merge_commit_sha)
        super().merge(number, merge_commit_sha, repo)

    def check_auth(self, seen: Seen) -> Reply | None:
        value = seen.headers.get("authorization") or ""
        if not self.username:
            return self.check_auth_value(seen, value, ("bearer",))
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            self.violation(seen, f"auth scheme {scheme!r}, expected Basic")
            return self.bad_credentials()
        user, _, password = base64.b64decode(encoded).decode(errors="replace").partition(":")
        return None if (user, password) == (self.username, self.token) else self.bad_credentials()

    def error(self, status: int, message: Any, **extra: Any) -> Reply:
        return Reply(status, {"type": "error", "error": {"message": message, **extra}})

    def rate_limited(self) -> Reply:
        # No remaining or reset header exists on Bitbucket Cloud (PROVIDERS.md §5).
        reply = self.error(429, "Rate limit for this resource has been exceeded")
        reply.headers = {"X-RateLimit-Limit": "1000", "X-RateLimit-Resource": "api", "X-RateLimit-NearLimit": "true"}
        return reply

    def create_pull(self, seen: Seen, payload: Any, ws: str, slug: str) -> Reply:
        repo = self.repos.get(f"{ws}/{slug}")
        if repo is None:
            return self.error(404, "Repository not found")
        problems = check_fields(payload, {"title": (str, True), "source.branch.name": (str, True),
                                          "destination.branch.name": (str, False), "description": (str, False),
                                          "close_source_branch": (bool, False)})
        if problems:
            self.violation(seen, "; ".join(problems))
            return self.error(400, "Bad request", fields={p.split()[0]: [p] for p in problems})
        head = payload["source"]["branch"]["name"]
        base = (payload.get("destination") or {}).get("branch", {}).get("name") or "main"  # documented default: main branch
        for label, branch in (("source", head), ("destination", base)):
            if branch not in repo.branches:  # assumed wording
                return self.error(400, "Bad request", fields={label: [f"Branch not found: {branch}"]})
        dup = self._open_duplicate(repo, base, head)
        if dup and self.duplicate_policy == "update":
            dup["title"] = payload["title"]
            return Reply(200, self._shape(ws, slug, dup))
        if dup:  # assumed wording
            return self.error(400, f"There is already an open pull request from {head} to {base} (#{dup['number']})")
        pr = self._new_pull(repo, base, head, payload["title"], payload.get("description") or "")
        return Reply(201, self._shape(ws, slug, pr))

    def get_pull(self, seen: Seen, payload: Any, ws: str, slug: str, number: str) -> Reply:
        repo = self.repos.get(f"{ws}/{slug}")
        if repo is None or int(number) not in repo.pulls:
            return self.error(404, "Resource not found" if repo else "Repository not found")
        return Reply(200, self._shape(ws, slug, repo.pulls[int(number)]))

    def get_commit(self, seen: Seen, payload: Any, ws: str, slug: str, prefix: str) -> Reply:
        matches = [c for c in self.commits if c.startswith(prefix)] if f"{ws}/{slug}" in self.repos else []
        if len(matches) != 1:
            return self.error(404, f"Commit not found: {prefix}")
        return Reply(200, {"type": "commit", "hash": matches[0],
                           "links": {"html": {"href": f"https://bitbucket.org/{ws}/{slug}/commits/{matches[0]}"}}})

    def _shape(self, ws: str, slug: str, pr: dict) -> dict:
        n, merged = pr["number"], pr["state"] == "merged"
        return {
            "type": "pullrequest", "id": n, "title": pr["title"], "description": pr["body"],
            "state": {"open": "OPEN", "merged": "MERGED", "closed": "DECLINED"}[pr["state"]],
            "source": {"branch": {"name": pr["head"]}, "commit": {"hash": pr["head_sha"][:12]}},
            "destination": {"branch": {"name": pr["base"]}, "commit": {"hash": pr["base_sha"][:12]}},
            "merge_commit": {"hash": pr["merge_sha"][:12]} if merged else None,
            "close_source_branch": False,
            "links": {"html": {"href": f"https://bitbucket.org/{ws}/{slug}/pull-requests/{n}"},
                      "self": {"href": f"{self.api_root}/repositories/{ws}/{slug}/pullrequests/{n}"}},
        }
