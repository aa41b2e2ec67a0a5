"""The GitHub fake (PROVIDERS.md §4)."""
from __future__ import annotations

import re
from typing import Any, ClassVar

from .base import Reply, Seen, _Fake, _seg, check_fields


class FakeGitHub(_Fake):
    """api.github.com (`prefix=""`) or GitHub Enterprise Server (`prefix="/api/v3"`)."""

    provider = "github"
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls"), "create_pull"),
        ("GET", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls"), "list_pulls"),
        ("GET", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls/(\d+)"), "get_pull"),
    ]
    # GET /repos/{o}/{r}/pulls: documented parameters (GitHub REST "List pull requests").
    LIST_QUERY: ClassVar[dict[str, re.Pattern | None]] = {
        "state": re.compile(r"open|closed|all"), "head": re.compile(r"[^:/]+:.+"), "base": re.compile(r".+"),
        "sort": re.compile(r"created|updated|popularity|long-running"), "direction": re.compile(r"asc|desc"),
        "per_page": re.compile(r"[1-9][0-9]?|100"), "page": re.compile(r"[1-9][0-9]*"),
    }
    DOCS = "https://docs.github.com/rest/pulls/pulls"

    def __init__(self, token: str = "test-token", prefix: str = "", port: int = 0) -> None:
        self.prefix = prefix
        self.rate_limit_status = 403  # GitHub answers a spent primary limit with 403 or 429
        # Renamed/transferred repositories: "owner/name" → new "owner/name", or a full
        # URL prefix on another server. GitHub answers 301 (GET) or 307 (other methods).
        self.moved: dict[str, str] = {}
        super().__init__(token, port)

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

    def list_pulls(self, seen: Seen, payload: Any, owner: str, name: str) -> Reply:
        """Newest first. `head` is "owner:branch" (a bare branch name is silently ignored
        by GitHub, so a client sending one would see every request: flagged here)."""
        moved = self._moved(seen, owner, name)
        if moved:
            return moved
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None:
            return self.error(404, "Not Found")
        problems = self.check_query(seen, self.LIST_QUERY)
        if problems:
            self.violation(seen, "; ".join(problems))
            return self._validation(*({"resource": "PullRequest", "code": "invalid", "message": p} for p in problems))
        state = self.query(seen, "state", "open")
        head, base = self.query(seen, "head"), self.query(seen, "base")
        page, per_page = int(self.query(seen, "page", "1")), int(self.query(seen, "per_page", "30"))
        found = []
        for pr in reversed(self._pulls_of(repo)):
            if state != "all" and ("open" if pr["state"] == "open" else "closed") != state:
                continue
            if head is not None and head != f"{(pr.get('fork') or f'{owner}/{name}').split('/')[0]}:{pr['head']}":
                continue
            if base is not None and pr["base"] != base:
                continue
            found.append(self._shape(owner, name, pr))
        return Reply(200, found[(page - 1) * per_page: page * per_page])

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
        head_repo = pr.get("fork") or f"{owner}/{name}"
        return {
            "url": f"{self.api_root}/repos/{owner}/{name}/pulls/{n}", "id": 1000 + n, "number": n,
            "html_url": f"https://github.example/{owner}/{name}/pull/{n}",
            "state": "closed" if pr["state"] != "open" else "open", "title": pr["title"], "body": pr["body"],
            "draft": False, "merged": merged, "merged_at": "2024-01-01T00:00:00Z" if merged else None,
            "merge_commit_sha": pr["merge_sha"] if merged else test_merge,
            "head": {"label": f"{head_repo.split('/')[0]}:{pr['head']}", "ref": pr["head"], "sha": pr["head_sha"],
                     "repo": {"id": 7000 + (pr.get("fork") is not None), "full_name": head_repo}},
            "base": {"label": f"{owner}:{pr['base']}", "ref": pr["base"], "sha": pr["base_sha"],
                     "repo": {"id": 7000, "full_name": f"{owner}/{name}"}},
        }
