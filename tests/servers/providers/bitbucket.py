"""The Bitbucket Cloud fake (PROVIDERS.md §4)."""
from __future__ import annotations

import base64
import re
from typing import Any, ClassVar
from urllib.parse import urlencode

from .base import Reply, Repo, Seen, _Fake, _seg, check_fields


class FakeBitbucket(_Fake):
    """Bitbucket Cloud. Hashes in pull request objects are 12-hex abbreviations;
    `GET …/commit/{hash}` resolves them. `duplicate_policy` covers the unconfirmed
    answer to a second PR for the same branches: "reject" (assumed 400) or "update"
    (the existing PR comes back, as one client library reports)."""

    provider = "bitbucket"
    prefix = "/2.0"
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/pullrequests"), "create_pull"),
        ("GET", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/pullrequests"), "list_pulls"),
        ("GET", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/pullrequests/(\d+)"), "get_pull"),
        ("GET", re.compile(rf"/repositories/{_seg('ws')}/{_seg('slug')}/commit/([0-9a-f]{{7,40}})"), "get_commit"),
    ]

    # GET …/pullrequests: `state` (repeatable in the docs; once here), `q` (BBQL), paging.
    LIST_QUERY: ClassVar[dict[str, re.Pattern | None]] = {
        "state": re.compile(r"OPEN|MERGED|DECLINED|SUPERSEDED"), "q": None, "sort": re.compile(r"-?[a-z_.]+"),
        "page": re.compile(r"[1-9][0-9]*"), "pagelen": re.compile(r"[1-9]|[1-4][0-9]|50"), "fields": None,
    }
    # The part of BBQL the fake understands: `field = "string"` clauses joined by AND.
    BBQL_CLAUSE = re.compile(r'(?P<field>[a-z_]+(?:\.[a-z_]+)*) = "(?P<value>(?:[^"\\]|\\.)*)"')
    BBQL_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "source.branch.name": ("head",), "destination.branch.name": ("base",), "state": ("state",)}
    STATES: ClassVar[dict[str, str]] = {"open": "OPEN", "merged": "MERGED", "closed": "DECLINED"}

    def __init__(self, token: str = "test-token", username: str | None = None, port: int = 0) -> None:
        self.username = username  # set: HTTP Basic with this user; unset: Bearer
        self.duplicate_policy = "reject"
        self.commits: set[str] = set()
        super().__init__(token, port)

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

    def _bbql(self, q: str) -> dict[str, str] | None:
        """{field: value} of a query made of `field = "value"` clauses joined by " AND "."""
        out, pos = {}, 0
        while True:
            m = self.BBQL_CLAUSE.match(q, pos)
            if m is None or m.group("field") not in self.BBQL_FIELDS or m.group("field") in out:
                return None
            out[m.group("field")] = re.sub(r"\\(.)", r"\1", m.group("value"))
            pos = m.end()
            if pos == len(q):
                return out
            if not q.startswith(" AND ", pos):
                return None
            pos += len(" AND ")

    def list_pulls(self, seen: Seen, payload: Any, ws: str, slug: str) -> Reply:
        """A page `{size, page, pagelen, values, next?}`, newest first, 10 a page unless
        `pagelen` says (at most 50). Without a state (parameter or in `q`) only OPEN ones."""
        repo = self.repos.get(f"{ws}/{slug}")
        if repo is None:
            return self.error(404, "Repository not found")
        problems = self.check_query(seen, self.LIST_QUERY)
        q = self.query(seen, "q")
        where = self._bbql(q) if q is not None else {}
        if where is None:
            problems.append(f"q={q!r} is not a query this fake understands")
        if problems:
            self.violation(seen, "; ".join(problems))
            return self.error(400, "Invalid query", detail="; ".join(problems))
        assert where is not None
        state = where.get("state") or self.query(seen, "state", "OPEN")
        page, pagelen = int(self.query(seen, "page", "1")), int(self.query(seen, "pagelen", "10"))
        rows = [self._shape(ws, slug, pr) for pr in reversed(self._pulls_of(repo))
                if self.STATES[pr["state"]] == state and where.get("source.branch.name", pr["head"]) == pr["head"]
                and where.get("destination.branch.name", pr["base"]) == pr["base"]]
        body: dict[str, Any] = {"size": len(rows), "page": page, "pagelen": pagelen,
                                "values": rows[(page - 1) * pagelen: page * pagelen]}
        if len(rows) > page * pagelen:
            rest = {k: v[0] for k, v in seen.query.items() if k != "page"}
            body["next"] = f"{self.api_root}/repositories/{ws}/{slug}/pullrequests?{urlencode({**rest, 'page': page + 1})}"
        return Reply(200, body)

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
        here = {"type": "repository", "full_name": f"{ws}/{slug}"}
        return {
            "type": "pullrequest", "id": n, "title": pr["title"], "description": pr["body"],
            "state": {"open": "OPEN", "merged": "MERGED", "closed": "DECLINED"}[pr["state"]],
            "source": {"branch": {"name": pr["head"]}, "commit": {"hash": pr["head_sha"][:12]},
                       "repository": {"type": "repository", "full_name": pr["fork"]} if pr.get("fork") else here},
            "destination": {"branch": {"name": pr["base"]}, "commit": {"hash": pr["base_sha"][:12]}, "repository": here},
            "merge_commit": {"hash": pr["merge_sha"][:12]} if merged else None,
            "close_source_branch": False,
            "links": {"html": {"href": f"https://bitbucket.org/{ws}/{slug}/pull-requests/{n}"},
                      "self": {"href": f"{self.api_root}/repositories/{ws}/{slug}/pullrequests/{n}"}},
        }
