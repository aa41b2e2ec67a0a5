"""Provider-shaped webhook deliveries (headers + body bytes), signed as each provider signs.

Shapes and headers follow ../shared/PROVIDERS.md §1–§3 and the providers' documented
examples (octokit/webhooks payload examples, GitLab webhook_events.md, Bitbucket
event-payloads, Gitea services/webhook). Signatures are computed here independently of
`sidecar.core.webhooks`, so a test that verifies a delivery checks the sidecar's code
against this reimplementation of the documented algorithm.

    d = github_push(SECRET, after=sha, files={"added": ["flows.json"]})
    requests.post(url + "/webhooks", data=d.body, headers=d.headers)
    requests.post(url + "/webhooks", data=d.body, headers=d.replayed().headers)
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode

ZERO = "0" * 40
OWNER, REPO = "acme", "flows"
BRANCH = "main"


def hmac_hex(secret: str, data: bytes, algo=hashlib.sha256) -> str:
    return hmac.new(secret.encode(), data, algo).hexdigest()


def fake_sha(seed: str = "") -> str:
    return hashlib.sha1((seed or secrets.token_hex(8)).encode()).hexdigest()


@dataclass
class Delivery:
    provider: str
    headers: dict[str, str]
    body: bytes
    secret: str = ""
    payload: dict = field(default_factory=dict)

    def replayed(self) -> Delivery:
        """The same delivery sent again, with the headers the provider changes on a replay:
        GitHub keeps X-GitHub-Delivery; GitLab keeps Idempotency-Key / X-Gitlab-Event-UUID
        but sends a new X-Gitlab-Webhook-UUID; Gitea's manual replay gets a new
        X-Gitea-Delivery (and its copies); Bitbucket retries count X-Attempt-Number."""
        h = dict(self.headers)
        if self.provider == "gitlab":
            h["X-Gitlab-Webhook-UUID"] = str(uuid.uuid4())
        elif self.provider == "gitea":
            new = str(uuid.uuid4())
            h["X-Gitea-Delivery"] = h["X-Gogs-Delivery"] = h["X-GitHub-Delivery"] = new
        elif self.provider == "bitbucket":
            h["X-Attempt-Number"] = str(int(h.get("X-Attempt-Number", "1")) + 1)
        return replace(self, headers=h)

    def forged(self) -> Delivery:
        """Signed with another secret."""
        return SIGNERS[self.provider](self, "not-" + (self.secret or "the-secret"))

    def unsigned(self) -> Delivery:
        drop = {"x-hub-signature", "x-hub-signature-256", "x-gitlab-token", "x-gitea-signature", "x-gogs-signature"}
        return replace(self, headers={k: v for k, v in self.headers.items() if k.lower() not in drop})

    def with_body(self, body: bytes) -> Delivery:
        """Another body, the signature headers kept as they were (a tampered payload)."""
        return replace(self, body=body)


# --------------------------------------------------------------------------- signing


def _sign_github(d: Delivery, secret: str) -> Delivery:
    h = dict(d.headers)
    if secret:
        h["X-Hub-Signature"] = "sha1=" + hmac_hex(secret, d.body, hashlib.sha1)
        h["X-Hub-Signature-256"] = "sha256=" + hmac_hex(secret, d.body)
    return replace(d, headers=h, secret=secret)


def _sign_gitlab(d: Delivery, secret: str) -> Delivery:
    h = dict(d.headers)
    if secret:
        h["X-Gitlab-Token"] = secret.replace("\n", "")
    return replace(d, headers=h, secret=secret)


def _sign_bitbucket(d: Delivery, secret: str) -> Delivery:
    h = dict(d.headers)
    if secret:
        h["X-Hub-Signature"] = "sha256=" + hmac_hex(secret, d.body)
    return replace(d, headers=h, secret=secret)


def _sign_gitea(d: Delivery, secret: str) -> Delivery:
    # The signed bytes are the JSON payload string, also for form delivery.
    payload = d.body
    if d.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        payload = parse_qs(d.body.decode())["payload"][0].encode()
    h = dict(d.headers)
    sig256 = hmac_hex(secret, payload) if secret else ""
    sig1 = hmac_hex(secret, payload, hashlib.sha1) if secret else ""
    h.update({"X-Gitea-Signature": sig256, "X-Gogs-Signature": sig256,
              "X-Hub-Signature": "sha1=" + sig1, "X-Hub-Signature-256": "sha256=" + sig256})
    return replace(d, headers=h, secret=secret)


SIGNERS = {"github": _sign_github, "gitlab": _sign_gitlab, "bitbucket": _sign_bitbucket, "gitea": _sign_gitea}


def _json(payload: dict) -> bytes:
    return json.dumps(payload, indent=2).encode()


# --------------------------------------------------------------------------- GitHub


def _github_user(login="octocat", uid=583231) -> dict:
    return {"login": login, "id": uid, "node_id": "MDQ6VXNlcjU4MzIzMQ==", "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}", "type": "User", "site_admin": False}


def _github_repo() -> dict:
    return {"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": REPO, "full_name": f"{OWNER}/{REPO}",
            "private": False, "owner": _github_user(OWNER, 21031067), "html_url": f"https://github.com/{OWNER}/{REPO}",
            "url": f"https://github.com/{OWNER}/{REPO}",  # the web URL in push payloads
            "clone_url": f"https://github.com/{OWNER}/{REPO}.git", "ssh_url": f"git@github.com:{OWNER}/{REPO}.git",
            "git_url": f"git://github.com/{OWNER}/{REPO}.git", "default_branch": "main", "master_branch": "main",
            "created_at": 1557933565, "pushed_at": 1557933657, "updated_at": "2019-05-15T15:20:41Z"}


def _github_commit(c: dict) -> dict:
    return {"id": c["id"], "tree_id": fake_sha(c["id"] + "tree"), "distinct": True, "message": c.get("message", "Update flows"),
            "timestamp": "2019-05-15T15:20:55-05:00", "url": f"https://github.com/{OWNER}/{REPO}/commit/{c['id']}",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": c.get("added", []), "removed": c.get("removed", []), "modified": c.get("modified", [])}


def _github_headers(event: str, content_type: str = "application/json") -> dict[str, str]:
    return {"Content-Type": content_type, "User-Agent": "GitHub-Hookshot/3e2e2a4", "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Hook-ID": "292430182",
            "X-GitHub-Hook-Installation-Target-Type": "repository", "X-GitHub-Hook-Installation-Target-ID": "186853002"}


def _commits(after: str, commits: list[dict] | None, files: dict | None, message: str) -> list[dict]:
    if commits is not None:
        return commits
    return [{"id": after, "message": message, **(files or {"modified": ["flows.json"]})}]


def github_push(secret: str, after: str, before: str | None = None, ref: str = f"refs/heads/{BRANCH}",
                commits: list[dict] | None = None, files: dict | None = None, message: str = "Update flows",
                forced: bool = False, form: bool = False) -> Delivery:
    before = before or fake_sha()
    cs = [_github_commit(c) for c in _commits(after, commits, files, message)]
    created, deleted = before == ZERO, after == ZERO
    payload = {
        "ref": ref, "before": before, "after": after, "repository": _github_repo(),
        "pusher": {"name": "ada", "email": "ada@example.com"}, "sender": _github_user("ada", 1001),
        "created": created, "deleted": deleted, "forced": forced, "base_ref": None,
        "compare": f"https://github.com/{OWNER}/{REPO}/compare/{before[:12]}...{after[:12]}",
        "commits": [] if deleted else cs, "head_commit": None if deleted else cs[-1],
    }
    if form:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        d = Delivery("github", _github_headers("push", "application/x-www-form-urlencoded"), body, payload=payload)
    else:
        d = Delivery("github", _github_headers("push"), _json(payload), payload=payload)
    return _sign_github(d, secret)


def github_ping(secret: str) -> Delivery:
    payload = {"zen": "Design for failure.", "hook_id": 292430182,
               "hook": {"type": "Repository", "id": 292430182, "name": "web", "active": True, "events": ["push"],
                        "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://flows.example.com/webhooks"}},
               "repository": _github_repo(), "sender": _github_user()}
    return _sign_github(Delivery("github", _github_headers("ping"), _json(payload), payload=payload), secret)


def _github_pr(number: int, base: str, head: str, head_sha: str, merged: bool, merge_sha: str | None, state: str) -> dict:
    return {"url": f"https://api.github.com/repos/{OWNER}/{REPO}/pulls/{number}", "id": 279147437, "number": number,
            "html_url": f"https://github.com/{OWNER}/{REPO}/pull/{number}", "state": state, "locked": False,
            "title": "Promote flows to production", "user": _github_user(), "body": "Promotes 2 flows.",
            "merged": merged, "merge_commit_sha": merge_sha, "merged_at": "2019-05-15T15:20:41Z" if merged else None,
            "head": {"label": f"{OWNER}:{head}", "ref": head, "sha": head_sha, "user": _github_user(OWNER), "repo": _github_repo()},
            "base": {"label": f"{OWNER}:{base}", "ref": base, "sha": fake_sha("base"), "user": _github_user(OWNER), "repo": _github_repo()}}


def github_pull_request(secret: str, action: str = "closed", merged: bool = True, number: int = 2, base: str = "production",
                        head: str = "promote/dev-to-production", head_sha: str | None = None, merge_sha: str | None = None) -> Delivery:
    head_sha = head_sha or fake_sha("head")
    merge_sha = merge_sha or fake_sha("merge")  # before a merge GitHub shows a test-merge commit here
    payload = {"action": action, "number": number,
               "pull_request": _github_pr(number, base, head, head_sha, merged, merge_sha, "closed" if action == "closed" else "open"),
               "repository": _github_repo(), "sender": _github_user()}
    return _sign_github(Delivery("github", _github_headers("pull_request"), _json(payload), payload=payload), secret)


# --------------------------------------------------------------------------- GitLab


def _gitlab_project() -> dict:
    web = f"https://gitlab.example.com/{OWNER}/{REPO}"
    return {"id": 15, "name": REPO, "description": "", "web_url": web, "avatar_url": None,
            "git_ssh_url": f"git@gitlab.example.com:{OWNER}/{REPO}.git", "git_http_url": f"{web}.git",
            "namespace": OWNER, "visibility_level": 0, "path_with_namespace": f"{OWNER}/{REPO}", "default_branch": "main",
            "homepage": web, "url": f"git@gitlab.example.com:{OWNER}/{REPO}.git",
            "ssh_url": f"git@gitlab.example.com:{OWNER}/{REPO}.git", "http_url": f"{web}.git"}


def _gitlab_headers(event: str, idempotency: bool = True) -> dict[str, str]:
    h = {"Content-Type": "application/json", "User-Agent": "GitLab/17.5.0-ee", "X-Gitlab-Event": event,
         "X-Gitlab-Instance": "https://gitlab.example.com", "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
         "X-Gitlab-Event-UUID": str(uuid.uuid4())}
    if idempotency:
        h["Idempotency-Key"] = str(uuid.uuid4())
    return h


def gitlab_push(secret: str, after: str, before: str | None = None, ref: str = f"refs/heads/{BRANCH}",
                commits: list[dict] | None = None, files: dict | None = None, message: str = "Update flows",
                total_commits: int | None = None, idempotency: bool = True) -> Delivery:
    before = before or fake_sha()
    cs = []
    for c in _commits(after, commits, files, message):
        msg = c.get("message", message)
        cs.append({"id": c["id"], "message": msg, "title": msg.splitlines()[0] if msg else "",
                   "timestamp": "2024-05-15T09:20:55+02:00", "url": f"https://gitlab.example.com/{OWNER}/{REPO}/-/commit/{c['id']}",
                   "author": {"name": "Ada Lovelace", "email": "ada@example.com"},
                   "added": c.get("added", []), "modified": c.get("modified", []), "removed": c.get("removed", [])})
    deleted = after == ZERO
    tag = ref.startswith("refs/tags/")
    payload = {
        "object_kind": "tag_push" if tag else "push", "event_name": "tag_push" if tag else "push",
        "before": before, "after": after, "ref": ref, "ref_protected": True,
        "checkout_sha": None if deleted else after, "message": None, "user_id": 4, "user_name": "Ada Lovelace",
        "user_username": "ada", "user_email": "", "user_avatar": "https://s.gravatar.com/avatar/x?s=80",
        "project_id": 15, "project": _gitlab_project(), "commits": [] if deleted else cs[-20:],
        "total_commits_count": total_commits if total_commits is not None else (0 if deleted else len(cs)),
        "push_options": {}, "repository": {"name": REPO, "url": f"git@gitlab.example.com:{OWNER}/{REPO}.git",
                                           "description": "", "homepage": f"https://gitlab.example.com/{OWNER}/{REPO}",
                                           "git_http_url": f"https://gitlab.example.com/{OWNER}/{REPO}.git",
                                           "git_ssh_url": f"git@gitlab.example.com:{OWNER}/{REPO}.git", "visibility_level": 0},
    }
    d = Delivery("gitlab", _gitlab_headers("Tag Push Hook" if tag else "Push Hook", idempotency), _json(payload), payload=payload)
    return _sign_gitlab(d, secret)


def gitlab_merge_request(secret: str, action: str = "merge", iid: int = 7, base: str = "production",
                         head: str = "promote/dev-to-production", last_commit: str | None = None,
                         merge_sha: str | None = None) -> Delivery:
    last_commit = last_commit or fake_sha("last")
    merged = action == "merge"
    payload = {
        "object_kind": "merge_request", "event_type": "merge_request",
        "user": {"id": 1, "name": "Administrator", "username": "root", "avatar_url": "", "email": "[REDACTED]"},
        "project": _gitlab_project(),
        "object_attributes": {
            "id": 99, "iid": iid, "target_branch": base, "source_branch": head, "source_project_id": 15,
            "target_project_id": 15, "title": "Promote flows to production",
            "state": {"merge": "merged", "close": "closed"}.get(action, "opened"),
            "merge_status": "can_be_merged", "description": "", "url": f"https://gitlab.example.com/{OWNER}/{REPO}/-/merge_requests/{iid}",
            "last_commit": {"id": last_commit, "message": "Promote", "title": "Promote", "timestamp": "2024-05-15T09:20:55+02:00",
                            "url": f"https://gitlab.example.com/{OWNER}/{REPO}/-/commit/{last_commit}",
                            "author": {"name": "Ada Lovelace", "email": "ada@example.com"}},
            "merge_commit_sha": (merge_sha or fake_sha("mr-merge")) if merged else None,
            "action": action,
        },
        "labels": [], "changes": {}, "repository": {"name": REPO, "url": f"git@gitlab.example.com:{OWNER}/{REPO}.git"},
    }
    return _sign_gitlab(Delivery("gitlab", _gitlab_headers("Merge Request Hook"), _json(payload), payload=payload), secret)


# --------------------------------------------------------------------------- Bitbucket Cloud


def _bb_actor() -> dict:
    return {"display_name": "Ada Lovelace", "uuid": "{7d6b4f3c-1f0e-4a1e-9a3c-3e6b7b9a0c11}",
            "account_id": "557058:1f0e4a1e", "nickname": "ada", "type": "user",
            "links": {"html": {"href": "https://bitbucket.org/%7B7d6b4f3c%7D/"}}}


def _bb_repo() -> dict:
    return {"type": "repository", "full_name": f"{OWNER}/{REPO}", "name": REPO, "uuid": "{0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0}",
            "is_private": True, "scm": "git", "links": {"html": {"href": f"https://bitbucket.org/{OWNER}/{REPO}"}},
            "workspace": {"slug": OWNER, "type": "workspace"}}


def _bb_commit(sha: str, message: str) -> dict:
    return {"type": "commit", "hash": sha, "message": message + "\n", "date": "2024-05-15T07:20:55+00:00",
            "author": {"type": "author", "raw": "Ada Lovelace <ada@example.com>", "user": _bb_actor()},
            "links": {"html": {"href": f"https://bitbucket.org/{OWNER}/{REPO}/commits/{sha}"}}, "parents": []}


def _bb_headers(event_key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "Bitbucket-Webhooks/2.0", "X-Event-Key": event_key,
            "X-Hook-UUID": "{5f1f9c8e-0c3d-4a2b-9f3e-1d2c3b4a5f6e}", "X-Request-UUID": str(uuid.uuid4()),
            "X-Attempt-Number": "1"}


def bitbucket_push(secret: str, after: str, before: str | None = None, branch: str = BRANCH, message: str = "Update flows",
                   extra_changes: list[dict] | None = None, created: bool = False, tag: bool = False,
                   forced: bool = False, truncated: bool = False) -> Delivery:
    """`extra_changes`: more `push.changes[]` entries (one push can move several refs)."""
    before = before or fake_sha()
    kind = "tag" if tag else "branch"
    new = None if after == ZERO else {"type": kind, "name": branch, "target": _bb_commit(after, message),
                                      "links": {"html": {"href": f"https://bitbucket.org/{OWNER}/{REPO}/branch/{branch}"}}}
    old = None if created else {"type": kind, "name": branch, "target": _bb_commit(before, "Previous")}
    change = {"new": new, "old": old, "created": created, "closed": new is None, "forced": forced, "truncated": truncated,
              "commits": [] if new is None else [_bb_commit(after, message)],
              "links": {"html": {"href": f"https://bitbucket.org/{OWNER}/{REPO}/branches/compare/{after}..{before}"}}}
    payload = {"actor": _bb_actor(), "repository": _bb_repo(), "push": {"changes": [*(extra_changes or []), change]}}
    return _sign_bitbucket(Delivery("bitbucket", _bb_headers("repo:push"), _json(payload), payload=payload), secret)


def bitbucket_change(branch: str, after: str, before: str) -> dict:
    """One more `push.changes[]` entry (for pushes that move several branches)."""
    return {"new": {"type": "branch", "name": branch, "target": _bb_commit(after, "Other")},
            "old": {"type": "branch", "name": branch, "target": _bb_commit(before, "Older")},
            "created": False, "closed": False, "forced": False, "truncated": False, "commits": [_bb_commit(after, "Other")]}


def bitbucket_pull_request(secret: str, event: str = "fulfilled", pr_id: int = 5, base: str = "production",
                           head: str = "promote/dev-to-production", head_sha: str | None = None,
                           merge_sha: str | None = None) -> Delivery:
    """Commit hashes in pull request objects are 12-character abbreviations."""
    merged = event == "fulfilled"
    state = {"fulfilled": "MERGED", "rejected": "DECLINED"}.get(event, "OPEN")
    payload = {"actor": _bb_actor(), "repository": _bb_repo(), "pullrequest": {
        "type": "pullrequest", "id": pr_id, "title": "Promote flows to production", "state": state,
        "source": {"branch": {"name": head}, "commit": {"type": "commit", "hash": (head_sha or fake_sha("bbhead"))[:12]},
                   "repository": _bb_repo()},
        "destination": {"branch": {"name": base}, "commit": {"type": "commit", "hash": fake_sha("bbbase")[:12]},
                        "repository": _bb_repo()},
        "merge_commit": {"type": "commit", "hash": (merge_sha or fake_sha("bbmerge"))[:12]} if merged else None,
        "close_source_branch": True, "author": _bb_actor(),
        "links": {"html": {"href": f"https://bitbucket.org/{OWNER}/{REPO}/pull-requests/{pr_id}"}}}}
    return _sign_bitbucket(Delivery("bitbucket", _bb_headers(f"pullrequest:{event}"), _json(payload), payload=payload), secret)


# --------------------------------------------------------------------------- Gitea


def _gitea_user(login="ada", uid=1) -> dict:
    return {"id": uid, "login": login, "login_name": "", "full_name": "Ada Lovelace", "email": "ada@example.com",
            "avatar_url": f"https://gitea.example.com/avatars/{uid}", "username": login}


def _gitea_repo() -> dict:
    web = f"https://gitea.example.com/{OWNER}/{REPO}"
    return {"id": 3, "owner": _gitea_user(OWNER, 2), "name": REPO, "full_name": f"{OWNER}/{REPO}", "private": False,
            "html_url": web, "ssh_url": f"git@gitea.example.com:{OWNER}/{REPO}.git", "clone_url": f"{web}.git",
            "default_branch": "main"}


def _gitea_headers(event: str, event_type: str, form: bool) -> dict[str, str]:
    delivery = str(uuid.uuid4())
    return {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
            "User-Agent": "Go-http-client/1.1", "X-Gitea-Delivery": delivery, "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type, "X-Gitea-Hook-Installation-Target-Type": "repository",
            "X-Gogs-Delivery": delivery, "X-Gogs-Event": event, "X-Gogs-Event-Type": event_type,
            "X-GitHub-Delivery": delivery, "X-GitHub-Event": event, "X-GitHub-Event-Type": event_type,
            "X-GitHub-Hook-Installation-Target-Type": "repository"}


def _gitea_delivery(event: str, event_type: str, payload: dict, form: bool) -> Delivery:
    text = json.dumps(payload, indent=2)
    body = urlencode({"payload": text}).encode() if form else text.encode()
    return Delivery("gitea", _gitea_headers(event, event_type, form), body, payload=payload)


def gitea_push(secret: str, after: str, before: str | None = None, ref: str = f"refs/heads/{BRANCH}",
               commits: list[dict] | None = None, files: dict | None = None, message: str = "Update flows",
               total_commits: int | None = None, form: bool = False) -> Delivery:
    """Gitea lists commits newest first, at most [ui] FEED_MAX_COMMIT_NUM (5)."""
    before = before or fake_sha()
    cs = []
    for c in _commits(after, commits, files, message):
        cs.append({"id": c["id"], "message": c.get("message", message) + "\n",
                   "url": f"https://gitea.example.com/{OWNER}/{REPO}/commit/{c['id']}",
                   "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
                   "committer": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
                   "verification": None, "timestamp": "2024-05-15T09:20:55+02:00",
                   "added": c.get("added", []), "removed": c.get("removed", []), "modified": c.get("modified", [])})
    cs.reverse()
    payload = {"ref": ref, "before": before, "after": after,
               "compare_url": f"https://gitea.example.com/{OWNER}/{REPO}/compare/{before}...{after}",
               "commits": cs[:5], "total_commits": total_commits if total_commits is not None else len(cs),
               "head_commit": cs[0] if cs else None, "repository": _gitea_repo(),
               "pusher": _gitea_user(), "sender": _gitea_user()}
    return _sign_gitea(_gitea_delivery("push", "push", payload, form), secret)


def gitea_pull_request(secret: str, action: str = "closed", merged: bool = True, number: int = 4, base: str = "production",
                       head: str = "promote/dev-to-production", head_sha: str | None = None, merge_sha: str | None = None,
                       form: bool = False) -> Delivery:
    head_sha = head_sha or fake_sha("gthead")
    pr = {"id": 41, "number": number, "user": _gitea_user(), "title": "Promote flows to production", "body": "",
          "state": "closed" if action == "closed" else "open", "html_url": f"https://gitea.example.com/{OWNER}/{REPO}/pulls/{number}",
          "merged": merged, "merged_at": "2024-05-15T09:20:55+02:00" if merged else None,
          "merge_commit_sha": (merge_sha or fake_sha("gtmerge")) if merged else None,
          "base": {"label": base, "ref": base, "sha": fake_sha("gtbase"), "repo_id": 3, "repo": _gitea_repo()},
          "head": {"label": head, "ref": head, "sha": head_sha, "repo_id": 3, "repo": _gitea_repo()}}
    payload = {"action": action, "number": number, "pull_request": pr, "repository": _gitea_repo(), "sender": _gitea_user()}
    return _sign_gitea(_gitea_delivery("pull_request", "pull_request", payload, form), secret)


# --------------------------------------------------------------------------- one entry point


def push(provider: str, secret: str, after: str, branch: str = BRANCH, **kw) -> Delivery:
    """A push of `after` to `branch` as `provider` sends it."""
    if provider == "bitbucket":
        return bitbucket_push(secret, after, branch=branch, **kw)
    builder = {"github": github_push, "gitlab": gitlab_push, "gitea": gitea_push}[provider]
    return builder(secret, after, ref=f"refs/heads/{branch}", **kw)


PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
PR_STATES = ("merged", "closed", "opened")


def pull_request(provider: str, secret: str, state: str = "merged", number: int = 1, base: str = BRANCH,
                 head: str = "promote/dev-to-production", head_sha: str | None = None, merge_sha: str | None = None) -> Delivery:
    """A pull/merge request event as `provider` sends it when the request is `state`:
    "merged" (GitHub/Gitea `closed` + `merged: true`, GitLab action `merge`, Bitbucket
    `pullrequest:fulfilled`), "closed" without a merge (`closed` + `merged: false`,
    `close`, `pullrequest:rejected`) or "opened" (`opened`, `open`, `pullrequest:created`)."""
    if state not in PR_STATES:
        raise ValueError(f"state must be one of {PR_STATES}")
    merged = state == "merged"
    if provider == "gitlab":
        action = {"merged": "merge", "closed": "close", "opened": "open"}[state]
        return gitlab_merge_request(secret, action=action, iid=number, base=base, head=head, last_commit=head_sha,
                                    merge_sha=merge_sha)
    if provider == "bitbucket":
        event = {"merged": "fulfilled", "closed": "rejected", "opened": "created"}[state]
        return bitbucket_pull_request(secret, event=event, pr_id=number, base=base, head=head, head_sha=head_sha,
                                      merge_sha=merge_sha)
    builder = {"github": github_pull_request, "gitea": gitea_pull_request}[provider]
    return builder(secret, action="opened" if state == "opened" else "closed", merged=merged, number=number, base=base,
                   head=head, head_sha=head_sha, merge_sha=merge_sha)
