"""The Gitea fake (PROVIDERS.md §4)."""
from __future__ import annotations

import re
from typing import Any, ClassVar

from .base import Reply, Seen, _Fake, _seg, check_fields


class FakeGitea(_Fake):
    provider = "gitea"
    prefix = "/api/v1"
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls"), "create_pull"),
        ("GET", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls"), "list_pulls"),
        ("GET", re.compile(rf"/repos/{_seg('o')}/{_seg('r')}/pulls/(\d+)"), "get_pull"),
    ]
    # GET /repos/{o}/{r}/pulls (swagger repoListPullRequests): no branch filter.
    LIST_QUERY: ClassVar[dict[str, re.Pattern | None]] = {
        "state": re.compile(r"open|closed|all"), "sort": re.compile(r"oldest|recentupdate|leastupdate|mostcomment|leastcomment|priority"),
        "milestone": re.compile(r"[0-9]+"), "labels": re.compile(r"[0-9]+"), "poster": None,
        "page": re.compile(r"[1-9][0-9]*"), "limit": re.compile(r"[1-9][0-9]*"),
    }
    DEFAULT_LIMIT, MAX_LIMIT = 30, 50  # [api] DEFAULT_PAGING_NUM and MAX_RESPONSE_ITEMS

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

    def list_pulls(self, seen: Seen, payload: Any, owner: str, name: str) -> Reply:
        """Newest first; `limit` above MAX_RESPONSE_ITEMS is cut to it. The total is in
        `X-Total-Count`."""
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None:
            return self.not_found_route()
        problems = self.check_query(seen, self.LIST_QUERY)
        if problems:
            self.violation(seen, "; ".join(problems))
            return self.error(422, "; ".join(problems))
        state = self.query(seen, "state", "open")
        page = int(self.query(seen, "page", "1"))
        limit = min(int(self.query(seen, "limit", str(self.DEFAULT_LIMIT))), self.MAX_LIMIT)
        found = [self._shape(owner, name, pr) for pr in reversed(self._pulls_of(repo))
                 if state == "all" or ("open" if pr["state"] == "open" else "closed") == state]
        return Reply(200, found[(page - 1) * limit: page * limit], {"X-Total-Count": str(len(found))})

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
            "head": {"label": f"{pr['fork'].split('/')[0]}:{pr['head']}" if pr.get("fork") else pr["head"], "ref": pr["head"],
                     "sha": pr["head_sha"], "repo_id": 31 if pr.get("fork") else 3,
                     "repo": {"id": 31 if pr.get("fork") else 3, "full_name": pr.get("fork") or f"{owner}/{name}"}},
            "base": {"label": pr["base"], "ref": pr["base"], "sha": pr["base_sha"], "repo_id": 3,
                     "repo": {"id": 3, "full_name": f"{owner}/{name}"}},
        }
