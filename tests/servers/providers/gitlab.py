"""The GitLab fake (PROVIDERS.md §4)."""
from __future__ import annotations

import re
import time
from typing import Any, ClassVar
from urllib.parse import unquote

from .base import Reply, Repo, Seen, _Fake, _seg, check_fields


class FakeGitLab(_Fake):
    provider = "gitlab"
    prefix = "/api/v4"
    # `:id` is one raw segment: a number or the URL-encoded path (group%2Fproject).
    routes: ClassVar[list[tuple[str, re.Pattern, str]]] = [
        ("POST", re.compile(rf"/projects/{_seg('id')}/merge_requests"), "create_mr"),
        ("GET", re.compile(rf"/projects/{_seg('id')}/merge_requests"), "list_mrs"),
        ("GET", re.compile(rf"/projects/{_seg('id')}/merge_requests/(\d+)"), "get_mr"),
    ]
    # GET /projects/:id/merge_requests (doc/api/merge_requests.md), the parameters a fake needs.
    LIST_QUERY: ClassVar[dict[str, re.Pattern | None]] = {
        "state": re.compile(r"opened|closed|locked|merged|all"), "source_branch": re.compile(r".+"),
        "target_branch": re.compile(r".+"), "order_by": re.compile(r"created_at|updated_at|merged_at|title"),
        "sort": re.compile(r"asc|desc"), "per_page": re.compile(r"[1-9][0-9]?|100"), "page": re.compile(r"[1-9][0-9]*"),
        "view": re.compile(r"simple"),
    }

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
        dup = next((p for p in repo.pulls.values() if p["state"] == "open" and p["head"] == head and not p.get("fork")), None)
        if dup:
            return self.error(409, [f"Another open merge request already exists for this source branch: !{dup['number']}"])
        pr = self._new_pull(repo, base, head, payload["title"], payload.get("description") or "")
        return Reply(201, self._shape(path, repo, pr))

    def list_mrs(self, seen: Seen, payload: Any, raw_id: str) -> Reply:
        """Newest first, 20 a page by default; `X-Total` and `X-Next-Page` headers."""
        found = self._project(raw_id)
        if found is None:
            return self.error(404, "404 Project Not Found")
        path, repo = found
        problems = self.check_query(seen, self.LIST_QUERY)
        if problems:
            self.violation(seen, "; ".join(problems))
            return Reply(400, {"error": ", ".join(problems)})
        state = self.query(seen, "state", "all")
        source, target = self.query(seen, "source_branch"), self.query(seen, "target_branch")
        page, per_page = int(self.query(seen, "page", "1")), int(self.query(seen, "per_page", "20"))
        states = {"open": "opened", "merged": "merged", "closed": "closed"}
        rows = [self._shape(path, repo, pr) for pr in reversed(self._pulls_of(repo))
                if state in ("all", states[pr["state"]]) and source in (None, pr["head"]) and target in (None, pr["base"])]
        more = len(rows) > page * per_page
        return Reply(200, rows[(page - 1) * per_page: page * per_page],
                     {"X-Total": str(len(rows)), "X-Page": str(page), "X-Per-Page": str(per_page),
                      "X-Next-Page": str(page + 1) if more else ""})

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
            "source_project_id": repo.project_id + 500 if pr.get("fork") else repo.project_id, "target_project_id": repo.project_id,
            "merge_commit_sha": pr["merge_sha"] if merged and how == "merge" else None,
            "squash_commit_sha": pr["merge_sha"] if merged and how == "squash" else None,
            "web_url": f"https://gitlab.example/{path}/-/merge_requests/{n}",
        }
