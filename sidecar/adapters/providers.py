"""Pull and merge requests on GitHub, GitLab, Bitbucket Cloud and Gitea (V6 promotion).

The contract: `client_for(repo_url, token)` gives a `ProviderClient` that opens a
pull/merge request from a branch that is already pushed, reads one back as a
`PullRequest`, and finds the open one from a branch into another
(`find_open_pull_request`, with each provider's documented list call: GitHub
`GET /pulls?head=owner:branch&base=…&state=open`, GitLab
`GET /merge_requests?source_branch=…&target_branch=…&state=opened`, Bitbucket
`GET /pullrequests?q=source.branch.name="…" AND …`, Gitea `GET /pulls?state=open`
paged and matched on `head.ref`).

`merge_commit_sha` is set only once `state == "merged"` and is then a full 40-hex
SHA: the commit the target branch holds after the merge (merge, squash or
fast-forward). Before that, GitHub's own `merge_commit_sha` is a throw-away test
merge and is deliberately not exposed.

Every failure leaves this module as a `SyncError` with a `provider_*` code (below);
its message carries the provider's own words where useful and never the token, and
a rate limit is a `RateLimited` with the time a retry may succeed.

Facts this leans on are in PROVIDERS.md §4 (endpoints, auth, shapes) and §5 (rate
limits). The token is asked for on every request, so rotation applies at once.
"""
from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

import requests

from ..core.errors import CONFIG_INVALID, SECRET_MISSING, SyncError
from ..core.provider import detect, host_and_path

PROVIDER_AUTH = "provider_auth_failed"
PROVIDER_NOT_FOUND = "provider_not_found"
PROVIDER_REJECTED = "provider_rejected"
PROVIDER_RATE_LIMITED = "provider_rate_limited"
PROVIDER_UNREACHABLE = "provider_unreachable"
PROVIDER_BAD_RESPONSE = "provider_bad_response"

OPEN, MERGED, CLOSED = "open", "merged", "closed"
MAX_PAGES = 20  # list calls stop after this many pages (1,000 open requests and more)
USER_AGENT = "flow-gitops"
GITHUB_API_VERSION = "2022-11-28"

_NAMES = {"github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket", "gitea": "Gitea"}
# SSH-over-443 hosts that stand for the hosted providers.
_HOST_ALIASES = {"ssh.github.com": ("github.com", "github"), "altssh.bitbucket.org": ("bitbucket.org", "bitbucket")}


@dataclass(frozen=True)
class PullRequest:
    """One pull/merge request as the promotion engine needs it."""

    number: int  # GitHub/Gitea `number`, GitLab `iid`, Bitbucket `id`
    url: str  # the web page of the request
    state: str  # "open", "merged" or "closed" (closed without merging)
    merge_commit_sha: str | None = None  # full SHA on the target branch; only when merged
    head_sha: str | None = None  # tip of the source branch; Bitbucket gives 12 hex only
    base: str = ""  # target branch name
    head: str = ""  # source branch name


@dataclass
class RateLimited(SyncError):
    """The provider's rate limit is spent; `reset_at` (epoch seconds) is when a retry
    may succeed, or None when the provider gives no time (then back off)."""

    reset_at: float | None = None


@dataclass(frozen=True)
class ApiTarget:
    """Where a repository's REST API lives."""

    provider: str  # github | gitlab | bitbucket | gitea
    root: str  # API root, e.g. https://api.github.com or https://HOST/api/v4
    repo: str  # the repository as the API names it: owner/repo, ws/slug, or GitLab's URL-encoded path

    @property
    def repo_base(self) -> str:
        collection = {"github": "repos", "gitlab": "projects", "bitbucket": "repositories", "gitea": "repos"}[self.provider]
        return f"{self.root}/{collection}/{self.repo}"


def _web_root(url: str, host: str) -> str:
    # An http(s) remote keeps its scheme and port (self-hosted on :3000); an SSH
    # remote's port is the SSH daemon's, so the API is plain https://host.
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{parts.scheme}://{host}{port}"
    return f"https://{host}"


def _invalid(message: str) -> SyncError:
    return SyncError(CONFIG_INVALID, message, retryable=False)


def api_base_for(repo_url: str, provider: str = "auto", api_base: str | None = None) -> ApiTarget:
    """The REST API of the repository at `repo_url` (HTTPS, ssh:// or scp-like).

    `provider` is "auto" (from the host) or explicit for self-hosted instances;
    `api_base` overrides the derived root (a GitLab under a relative URL root, or a
    test fake) while the repository part still comes from the URL.
    Messages name the host only: a repository URL may embed credentials."""
    host, path = host_and_path(repo_url)
    if not host or not path:
        raise _invalid("the repository URL names no host and repository")
    kind = detect(repo_url, provider)
    if host in _HOST_ALIASES:
        host, aliased = _HOST_ALIASES[host]
        kind = aliased if provider in ("", "auto") else kind
    if kind not in _NAMES:
        raise _invalid(f"no pull request API is known for {host}; set the provider (github, gitlab, bitbucket or gitea) explicitly")
    if kind == "gitlab":
        repo = quote(path, safe="")  # group/sub/project → group%2Fsub%2Fproject
    else:
        parts = path.split("/")
        if len(parts) != 2 or not all(parts):
            raise _invalid(f"a {_NAMES[kind]} repository URL must name owner/repository, not {len(parts)} path segments")
        repo = "/".join(quote(p, safe="") for p in parts)
    if api_base:
        return ApiTarget(kind, api_base.rstrip("/"), repo)
    web = _web_root(repo_url, host)
    if kind == "github":
        if host == "github.com":
            root = "https://api.github.com"
        elif host.endswith(".ghe.com"):  # GitHub Enterprise Cloud with data residency
            root = f"https://api.{host}"
        else:  # GitHub Enterprise Server
            root = f"{web}/api/v3"
    elif kind == "gitlab":
        root = f"{web}/api/v4"
    elif kind == "bitbucket":
        if host != "bitbucket.org":
            raise _invalid(f"only Bitbucket Cloud (bitbucket.org) is supported, not {host}")
        root = "https://api.bitbucket.org/2.0"
    else:
        root = f"{web}/api/v1"
    return ApiTarget(kind, root, repo)


class ProviderClient(Protocol):
    """What the promotion engine uses; one implementation per provider."""

    provider: str

    def open_pull_request(self, base: str, head: str, title: str, body: str = "") -> PullRequest:
        """Open a request to merge branch `head` (already pushed) into `base`."""

    def get_pull_request(self, number: int) -> PullRequest:
        """The request's current state; `merge_commit_sha` once merged."""

    def find_open_pull_request(self, base: str, head: str) -> PullRequest | None:
        """The open request from branch `head` of this repository (not a fork) into
        `base`, or None: how a retried promotion finds the request an earlier attempt
        opened (or whose answer it lost)."""


def _provider_message(resp: requests.Response) -> str:
    """The provider's own explanation, from any of the four error shapes."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    parts: list[str] = []
    err = body.get("error")
    if isinstance(err, dict):  # Bitbucket: {"type":"error","error":{message, detail, fields}}
        parts += [str(err[k]) for k in ("message", "detail") if err.get(k)]
        for field, msgs in (err.get("fields") or {}).items():
            parts.append(f"{field}: {'; '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}")
    elif isinstance(err, str):  # GitLab parameter errors: {"error":"title is missing"}
        parts.append(err)
    msg = body.get("message")
    if isinstance(msg, list):  # GitLab conflicts: {"message":["Another open merge request …"]}
        parts += map(str, msg)
    elif isinstance(msg, dict):  # GitLab validation: {"message":{"field":["is invalid"]}}
        parts += [f"{k} {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in msg.items()]
    elif msg:
        parts.append(str(msg))
    for e in body.get("errors") or []:  # GitHub: {"message":"Validation Failed","errors":[…]}
        if isinstance(e, dict):
            parts.append(e.get("message") or " ".join(str(e[k]) for k in ("resource", "field", "code") if e.get(k)))
        else:
            parts.append(str(e))
    return ": ".join(p for p in parts if p)[:500]


def _reset_at(headers: Any, now: float) -> float | None:
    """When a rate-limited request may be retried: `Retry-After` (seconds or an HTTP
    date), else a reset epoch (GitHub `x-ratelimit-reset`, GitLab `RateLimit-Reset`)."""
    retry_after = (headers.get("Retry-After") or "").strip()
    if retry_after.isdigit():
        return now + int(retry_after)
    if retry_after:
        try:
            return parsedate_to_datetime(retry_after).timestamp()
        except (TypeError, ValueError):
            pass
    for name in ("X-RateLimit-Reset", "RateLimit-Reset"):
        value = (headers.get(name) or "").strip()
        if value.isdigit():
            return float(value)
    reset_time = headers.get("RateLimit-ResetTime")
    if reset_time:
        try:
            return parsedate_to_datetime(reset_time).timestamp()
        except (TypeError, ValueError):
            pass
    return None


class _RestClient:
    """The shared plumbing: auth per request, timeouts, same-origin redirects, and
    the translation of every failure into `SyncError`."""

    provider = ""

    def __init__(self, target: ApiTarget, token: Callable[[], str], *, timeout: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self.token = token
        self.timeout = timeout
        self.clock = clock
        self.session = requests.Session()
        self.calls = 0  # HTTP requests sent, for tests and metrics

    @property
    def name(self) -> str:
        return _NAMES[self.provider]

    def _auth_headers(self, token: str) -> dict[str, str]:
        raise NotImplementedError

    def _base_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": USER_AGENT}

    def _request(self, method: str, path: str, payload: dict | None = None) -> dict:
        body = self._send(method, path, payload)
        if not isinstance(body, dict):
            raise SyncError(PROVIDER_BAD_RESPONSE, f"{self.name} answered {method} {path} on {unquote(self.target.repo)} "
                                                   "with no JSON object")
        return body

    def _list(self, path: str, query: dict[str, str], what: str | None = None) -> tuple[list, dict | None]:
        """A GET whose answer is a list: a JSON array (GitHub, GitLab, Gitea) or a page
        object with `values` (Bitbucket; the page object is returned too, for `next`).
        `path` may be a full URL on the API's own origin (a Bitbucket `next` link)."""
        body = self._send("GET", path, None, query)
        if isinstance(body, list):
            return body, None
        if isinstance(body, dict) and isinstance(body.get("values"), list):
            return body["values"], body
        raise SyncError(PROVIDER_BAD_RESPONSE, f"{self.name} answered {what or 'GET ' + path} with no list")

    def _send(self, method: str, path: str, payload: dict | None = None, query: dict[str, str] | None = None) -> Any:
        token = self.token()
        if not token:
            raise SyncError(SECRET_MISSING, f"no {self.name} API token is configured", retryable=False)
        headers = {**self._base_headers(), **self._auth_headers(token)}
        data = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(payload).encode()
        if path.startswith(("http://", "https://")):
            # A link the provider gave (pagination): only ever on the API's own origin.
            if urlsplit(path)[:2] != urlsplit(self.target.root)[:2]:
                raise SyncError(PROVIDER_BAD_RESPONSE, f"{self.name} gave a page link to another host", retryable=False)
            url, shown = path, urlsplit(path).path
        else:
            url, shown = self.target.repo_base + path, path
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query, quote_via=quote)
        what = f"{method} {shown} on {unquote(self.target.repo)}"
        for _ in range(4):
            self.calls += 1
            try:
                resp = self.session.request(method, url, headers=headers, data=data, timeout=self.timeout, allow_redirects=False)
            except requests.Timeout:
                raise SyncError(PROVIDER_UNREACHABLE, f"{self.name} did not answer {what} within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                raise SyncError(PROVIDER_UNREACHABLE, f"the {self.name} API at {self.target.root} is unreachable ({type(exc).__name__})") from None
            if resp.status_code not in (301, 302, 303, 307, 308):
                break
            url = self._follow(resp, url, method, what)
        else:
            raise SyncError(PROVIDER_REJECTED, f"{self.name} redirected {what} too many times", retryable=False)
        if resp.status_code >= 400:
            raise self._error(resp, what, token)
        try:
            return resp.json()
        except ValueError:
            raise SyncError(PROVIDER_BAD_RESPONSE, f"{self.name} answered {what} with HTTP {resp.status_code} but no JSON") from None

    def _follow(self, resp: requests.Response, url: str, method: str, what: str) -> str:
        """A renamed repository answers with a redirect; follow it only on the same
        origin (the token headers must never go to another host) and only where the
        method survives (GET always, POST on 307/308)."""
        location = urljoin(url, resp.headers.get("Location", ""))
        same_origin = urlsplit(location)[:2] == urlsplit(url)[:2]
        if not same_origin or (method != "GET" and resp.status_code not in (307, 308)):
            where = "to another host" if not same_origin else "in a way a POST cannot follow"
            raise SyncError(PROVIDER_REJECTED, f"{self.name} redirected {what} (HTTP {resp.status_code}) {where}; "
                                               "check the repository URL or set the API base", retryable=False)
        return location

    def _error(self, resp: requests.Response, what: str, token: str) -> SyncError:
        status = resp.status_code
        said = _provider_message(resp).replace(token, "***")
        said_part = f": {said}" if said else ""
        limited = status == 429 or (status == 403 and (
            resp.headers.get("X-RateLimit-Remaining") == "0" or "Retry-After" in resp.headers or "rate limit" in said.lower()))
        if limited:
            reset_at = _reset_at(resp.headers, self.clock())
            if reset_at is None:
                when = "no reset time given; back off before retrying"
            else:
                stamp = datetime.fromtimestamp(reset_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                when = f"retry after {stamp} (in {max(0, round(reset_at - self.clock()))} s)"
            return RateLimited(PROVIDER_RATE_LIMITED, f"{self.name} rate limit reached on {what} (HTTP {status}); {when}",
                               retryable=True, reset_at=reset_at)
        if status == 401:
            return SyncError(PROVIDER_AUTH, f"{self.name} refused the API token on {what} (HTTP 401){said_part}", retryable=False)
        if status == 403:
            return SyncError(PROVIDER_AUTH, f"the {self.name} API token lacks permission for {what} (HTTP 403){said_part}", retryable=False)
        if status == 404:
            return SyncError(PROVIDER_NOT_FOUND, f"{self.name} found nothing at {what} (HTTP 404): the repository, branch or "
                                                 f"request does not exist or the token cannot see it{said_part}", retryable=False)
        if status >= 500:
            return SyncError(PROVIDER_UNREACHABLE, f"{self.name} answered HTTP {status} on {what}")
        return SyncError(PROVIDER_REJECTED, f"{self.name} rejected {what} (HTTP {status}){said_part}", retryable=False)

    # --- finding an open request ---------------------------------------------------
    def find_open_pull_request(self, base: str, head: str) -> PullRequest | None:
        # Filtered on our side too: a filter the server does not apply (GitHub ignores a
        # malformed `head`) must not make another request look like ours.
        for item in self._open_candidates(base, head):
            if not isinstance(item, dict) or not self._same_repository(item):
                continue
            pr = self._parse(item, "the pull request list")
            if pr.state == OPEN and pr.head == head and pr.base == base:
                return pr
        return None

    def _open_candidates(self, base: str, head: str) -> Iterator[Any]:
        raise NotImplementedError

    def _same_repository(self, item: dict) -> bool:
        """Whether the request's source branch lives in this repository (not a fork);
        True when the object does not say."""
        return True

    def _parse(self, body: dict, what: str) -> PullRequest:
        try:
            return self._pull_request(body)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise SyncError(PROVIDER_BAD_RESPONSE, f"{self.name} answered {what} with an unexpected pull request shape") from None

    def _pull_request(self, body: dict) -> PullRequest:
        raise NotImplementedError


class GitHubClient(_RestClient):
    """GitHub.com, GHE.com and GitHub Enterprise Server: the Pulls API."""

    provider = "github"

    def _base_headers(self) -> dict[str, str]:
        return {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": GITHUB_API_VERSION, "User-Agent": USER_AGENT}

    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def open_pull_request(self, base: str, head: str, title: str, body: str = "") -> PullRequest:
        reply = self._request("POST", "/pulls", {"title": title, "head": head, "base": base, "body": body})
        return self._parse(reply, "POST /pulls")

    def get_pull_request(self, number: int) -> PullRequest:
        return self._parse(self._request("GET", f"/pulls/{int(number)}"), f"GET /pulls/{number}")

    def _open_candidates(self, base: str, head: str) -> Iterator[Any]:
        # `head` must be "owner:branch"; at most one open request exists per head and base.
        owner = unquote(self.target.repo.split("/", 1)[0])
        items, _ = self._list("/pulls", {"state": "open", "head": f"{owner}:{head}", "base": base, "per_page": "100"})
        yield from items

    def _same_repository(self, item: dict) -> bool:
        return _github_style_same_repository(item)

    def _pull_request(self, body: dict) -> PullRequest:
        return _github_style(body)


class GiteaClient(_RestClient):
    """Gitea (and Forgejo, Codeberg): the Pulls API, shaped like GitHub's."""

    provider = "gitea"

    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}"}

    def open_pull_request(self, base: str, head: str, title: str, body: str = "") -> PullRequest:
        reply = self._request("POST", "/pulls", {"head": head, "base": base, "title": title, "body": body})
        return self._parse(reply, "POST /pulls")

    def get_pull_request(self, number: int) -> PullRequest:
        return self._parse(self._request("GET", f"/pulls/{int(number)}"), f"GET /pulls/{number}")

    PAGE = 50  # Gitea's default [api] MAX_RESPONSE_ITEMS caps `limit` at 50

    def _open_candidates(self, base: str, head: str) -> Iterator[Any]:
        # The list has no branch filter: page through the open requests and match.
        for page in range(1, MAX_PAGES + 1):
            items, _ = self._list("/pulls", {"state": "open", "page": str(page), "limit": str(self.PAGE)})
            yield from items
            if len(items) < self.PAGE:
                return

    def _same_repository(self, item: dict) -> bool:
        return _github_style_same_repository(item)

    def _pull_request(self, body: dict) -> PullRequest:
        return _github_style(body)


def _github_style_same_repository(item: dict) -> bool:
    head, base = item.get("head") or {}, item.get("base") or {}
    if "repo" in head and "repo" in base and isinstance(base["repo"], dict):
        if not isinstance(head["repo"], dict):
            return False  # the fork was deleted
        for key in ("id", "full_name"):
            if head["repo"].get(key) is not None and base["repo"].get(key) is not None:
                return head["repo"][key] == base["repo"][key]
    if head.get("repo_id") is not None and base.get("repo_id") is not None:  # Gitea
        return head["repo_id"] == base["repo_id"]
    return True


def _github_style(body: dict) -> PullRequest:
    # GitHub keeps state "closed" for merged requests; `merged` (or `merged_at`) tells.
    merged = bool(body.get("merged")) or bool(body.get("merged_at"))
    state = MERGED if merged else (CLOSED if body["state"] == "closed" else OPEN)
    head, base = body.get("head") or {}, body.get("base") or {}
    return PullRequest(number=int(body["number"]), url=body.get("html_url") or "", state=state,
                       merge_commit_sha=(body.get("merge_commit_sha") or None) if merged else None,
                       head_sha=head.get("sha"), base=base.get("ref", ""), head=head.get("ref", ""))


class GitLabClient(_RestClient):
    """GitLab.com and self-managed GitLab: the Merge Requests API. `bearer=True` sends
    an OAuth token as `Authorization: Bearer`; otherwise `PRIVATE-TOKEN` (personal,
    project and group access tokens)."""

    provider = "gitlab"
    _STATES: ClassVar[dict[str, str]] = {"opened": OPEN, "locked": OPEN, "merged": MERGED, "closed": CLOSED}

    def __init__(self, target: ApiTarget, token: Callable[[], str], *, bearer: bool = False, **kw: Any) -> None:
        super().__init__(target, token, **kw)
        self.bearer = bearer

    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if self.bearer else {"PRIVATE-TOKEN": token}

    def open_pull_request(self, base: str, head: str, title: str, body: str = "") -> PullRequest:
        reply = self._request("POST", "/merge_requests",
                              {"source_branch": head, "target_branch": base, "title": title, "description": body})
        return self._parse(reply, "POST /merge_requests")

    def get_pull_request(self, number: int) -> PullRequest:
        return self._parse(self._request("GET", f"/merge_requests/{int(number)}"), f"GET /merge_requests/{number}")

    def _open_candidates(self, base: str, head: str) -> Iterator[Any]:
        # GitLab allows one open merge request per source branch; filtered on both ends.
        items, _ = self._list("/merge_requests", {"state": "opened", "source_branch": head, "target_branch": base,
                                                  "per_page": "100"})
        yield from items

    def _same_repository(self, item: dict) -> bool:
        source, target = item.get("source_project_id"), item.get("target_project_id")
        return source is None or target is None or source == target

    def _pull_request(self, body: dict) -> PullRequest:
        state = self._STATES[body["state"]]
        merged_sha = None
        if state == MERGED:
            # Merge commit, else the squash commit (squash + fast-forward), else the
            # head itself (plain fast-forward): what the target branch now holds.
            merged_sha = body.get("merge_commit_sha") or body.get("squash_commit_sha") or body.get("sha")
        return PullRequest(number=int(body["iid"]), url=body.get("web_url") or "", state=state, merge_commit_sha=merged_sha,
                           head_sha=body.get("sha"), base=body.get("target_branch", ""), head=body.get("source_branch", ""))


class BitbucketClient(_RestClient):
    """Bitbucket Cloud: the Pull Requests API. A repository, project or workspace access
    token goes as `Authorization: Bearer`; with `username` the token is sent as the
    password of HTTP Basic (an API token with the Atlassian e-mail, or an app password
    until they stop working)."""

    provider = "bitbucket"
    _STATES: ClassVar[dict[str, str]] = {"OPEN": OPEN, "MERGED": MERGED, "DECLINED": CLOSED, "SUPERSEDED": CLOSED}

    def __init__(self, target: ApiTarget, token: Callable[[], str], *, username: str | None = None, **kw: Any) -> None:
        super().__init__(target, token, **kw)
        self.username = username

    def _auth_headers(self, token: str) -> dict[str, str]:
        if self.username:
            return {"Authorization": "Basic " + base64.b64encode(f"{self.username}:{token}".encode()).decode()}
        return {"Authorization": f"Bearer {token}"}

    def open_pull_request(self, base: str, head: str, title: str, body: str = "") -> PullRequest:
        reply = self._request("POST", "/pullrequests", {
            "title": title, "description": body,
            "source": {"branch": {"name": head}}, "destination": {"branch": {"name": base}},
        })
        return self._parse(reply, "POST /pullrequests")

    def get_pull_request(self, number: int) -> PullRequest:
        pr = self._parse(self._request("GET", f"/pullrequests/{int(number)}"), f"GET /pullrequests/{number}")
        if pr.merge_commit_sha and len(pr.merge_commit_sha) < 40:
            # Pull request objects carry 12-hex abbreviations; deploying "exactly what
            # was merged" needs the full SHA.
            commit = self._request("GET", f"/commit/{quote(pr.merge_commit_sha, safe='')}")
            full = commit.get("hash")
            if not isinstance(full, str) or not full.startswith(pr.merge_commit_sha):
                raise SyncError(PROVIDER_BAD_RESPONSE, f"Bitbucket resolved merge commit {pr.merge_commit_sha} to {full!r}")
            pr = PullRequest(pr.number, pr.url, pr.state, full, pr.head_sha, pr.base, pr.head)
        return pr

    def _open_candidates(self, base: str, head: str) -> Iterator[Any]:
        # BBQL: string values in double quotes, `\` and `"` escaped with a backslash.
        query = " AND ".join(f'{field} = "{_bbql_string(value)}"' for field, value in (
            ("source.branch.name", head), ("destination.branch.name", base), ("state", "OPEN")))
        link: str = "/pullrequests"
        params: dict[str, str] | None = {"q": query, "pagelen": "50"}
        for _ in range(MAX_PAGES):
            items, page = self._list(link, params or {}, "GET /pullrequests")
            yield from items
            nxt = (page or {}).get("next")
            if not isinstance(nxt, str) or not nxt:
                return
            link, params = nxt, None  # `next` carries the query already

    def _same_repository(self, item: dict) -> bool:
        src = item.get("source") or {}
        if "repository" in src and not isinstance(src["repository"], dict):
            return False  # the fork was deleted: not our branch
        source = (src.get("repository") or {}).get("full_name")
        destination = ((item.get("destination") or {}).get("repository") or {}).get("full_name")
        return source is None or destination is None or source == destination

    def _pull_request(self, body: dict) -> PullRequest:
        state = self._STATES[body["state"]]
        merge_commit = (body.get("merge_commit") or {}).get("hash") if state == MERGED else None
        source, destination = body.get("source") or {}, body.get("destination") or {}
        return PullRequest(number=int(body["id"]), url=((body.get("links") or {}).get("html") or {}).get("href", ""), state=state,
                           merge_commit_sha=merge_commit or None, head_sha=(source.get("commit") or {}).get("hash"),
                           base=(destination.get("branch") or {}).get("name", ""), head=(source.get("branch") or {}).get("name", ""))


def _bbql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


_CLIENTS: dict[str, type[_RestClient]] = {"github": GitHubClient, "gitlab": GitLabClient, "bitbucket": BitbucketClient, "gitea": GiteaClient}


def client_for(repo_url: str, token: Callable[[], str], provider: str = "auto", *, api_base: str | None = None,
               timeout: float = 30.0, username: str | None = None, bearer: bool = False,
               clock: Callable[[], float] = time.time) -> ProviderClient:
    """The client for the repository at `repo_url`. `username` applies to Bitbucket
    (HTTP Basic), `bearer` to GitLab (OAuth tokens); other providers ignore them."""
    target = api_base_for(repo_url, provider, api_base)
    extra: dict[str, Any] = {}
    if target.provider == "bitbucket":
        extra["username"] = username
    elif target.provider == "gitlab":
        extra["bearer"] = bearer
    return _CLIENTS[target.provider](target, token, timeout=timeout, clock=clock, **extra)
