"""The pull/merge request clients against loopback fakes that check every request
against each provider's documented shape (PROVIDERS.md §4–§6)."""
from __future__ import annotations

import time

import pytest
import requests

from sidecar.adapters.providers import (
    PROVIDER_AUTH,
    PROVIDER_NOT_FOUND,
    PROVIDER_RATE_LIMITED,
    PROVIDER_REJECTED,
    PROVIDER_UNREACHABLE,
    RateLimited,
    api_base_for,
    client_for,
)
from sidecar.core.errors import CONFIG_INVALID, SECRET_MISSING, SyncError
from tests.servers.common import free_port
from tests.servers.providers import FakeBitbucket, FakeGitea, FakeGitHub, FakeGitLab

TOKEN = "tok_Sup3rSecretValue_0123456789"
WRONG = "tok_Wr0ngSecretValue_9876543210"
MAIN_SHA = "1" * 40
HEAD_SHA = "2a" * 20
MERGED_SHA = "3b7c" * 10

# provider → (fake class, repository URL as a user would configure it, provider setting, repo key in the fake)
CASES = {
    "github": (FakeGitHub, "https://github.com/acme/flows.git", "auto", "acme/flows"),
    "gitlab": (FakeGitLab, "git@gitlab.com:acme/platform/flows.git", "auto", "acme/platform/flows"),
    "bitbucket": (FakeBitbucket, "https://alice@bitbucket.org/acme/flows.git", "auto", "acme/flows"),
    "gitea": (FakeGitea, "ssh://git@gitea.corp.example:2222/acme/flows.git", "gitea", "acme/flows"),
}
# What each provider says about a second request for the same branches.
DUPLICATE_WORDS = {
    "github": "A pull request already exists for acme:promote/dev-to-prod.",
    "gitlab": "Another open merge request already exists for this source branch: !1",
    "bitbucket": "There is already an open pull request from promote/dev-to-prod to main",
    "gitea": "pull request already exists for these targets",
}


class Env:
    def __init__(self, provider: str) -> None:
        fake_cls, self.repo_url, self.setting, self.repo_key = CASES[provider]
        self.provider = provider
        self.fake = fake_cls(token=TOKEN)
        self.fake.add_repo(self.repo_key, {"main": MAIN_SHA, "promote/dev-to-prod": HEAD_SHA})
        self.token = TOKEN

    def client(self, **kw):
        kw.setdefault("api_base", self.fake.api_root)
        return client_for(self.repo_url, lambda: self.token, self.setting, **kw)

    def open(self, client=None):
        return (client or self.client()).open_pull_request("main", "promote/dev-to-prod", "Promote dev to prod", "Flows: a, b")


@pytest.fixture(params=sorted(CASES))
def env(request):
    e = Env(request.param)
    yield e
    e.fake.stop()


def assert_safe(err: SyncError) -> None:
    """No token, right or wrong, in anything a user or a log could see."""
    for text in (str(err), err.message, repr(err)):
        assert TOKEN not in text and WRONG not in text


# --- the promotion round trip ------------------------------------------------------
def test_open_get_merge_round_trip(env):
    client = env.client()
    opened = env.open(client)
    assert (opened.number, opened.state, opened.base, opened.head) == (1, "open", "main", "promote/dev-to-prod")
    assert opened.url.startswith("https://") and opened.url.endswith("/1")
    assert opened.merge_commit_sha is None
    # Bitbucket pull request objects carry 12-hex abbreviations of the head.
    assert opened.head_sha and HEAD_SHA.startswith(opened.head_sha)

    pending = client.get_pull_request(opened.number)
    assert pending.state == "open"
    assert pending.merge_commit_sha is None  # GitHub's test-merge SHA is not the merged content

    env.fake.merge(opened.number, MERGED_SHA)
    merged = client.get_pull_request(opened.number)
    assert merged.state == "merged"
    assert merged.merge_commit_sha == MERGED_SHA  # full, even where the provider abbreviates
    assert (merged.number, merged.base, merged.head) == (1, "main", "promote/dev-to-prod")

    pr = env.fake.repos[env.repo_key].pulls[1]
    assert (pr["title"], pr["body"]) == ("Promote dev to prod", "Flows: a, b")
    assert env.fake.errors == []


def test_declined_request_is_closed_without_a_merge_commit(env):
    client = env.client()
    opened = env.open(client)
    env.fake.close(opened.number)
    closed = client.get_pull_request(opened.number)
    assert (closed.state, closed.merge_commit_sha) == ("closed", None)
    assert env.fake.errors == []


def test_second_request_gets_the_next_number(env):
    client = env.client()
    env.fake.repos[env.repo_key].branches["promote/other"] = "4" * 40
    first = env.open(client)
    second = client.open_pull_request("main", "promote/other", "Another", "")
    assert (first.number, second.number) == (1, 2)
    assert client.get_pull_request(2).head == "promote/other"
    assert env.fake.errors == []


def test_request_into_an_environment_branch(env):
    # Promotion targets the environment's branch, which need not be the default one.
    env.fake.repos[env.repo_key].branches["env/prod"] = "5" * 40
    client = env.client()
    opened = client.open_pull_request("env/prod", "promote/dev-to-prod", "Promote to prod", "")
    assert opened.base == "env/prod" and env.fake.repos[env.repo_key].pulls[1]["base"] == "env/prod"
    env.fake.merge(opened.number, MERGED_SHA)
    assert client.get_pull_request(opened.number).base == "env/prod"
    assert env.fake.repos[env.repo_key].branches["env/prod"] == MERGED_SHA
    assert env.fake.errors == []


# --- failures, translated at the edge -------------------------------------------------
def test_wrong_token_is_auth_failed(env):
    env.token = WRONG
    with pytest.raises(SyncError) as exc:
        env.open()
    assert exc.value.code == PROVIDER_AUTH and exc.value.retryable is False
    assert "401" in exc.value.message
    assert_safe(exc.value)
    assert env.fake.errors == []  # the documented scheme was used; only the value was wrong


def test_forbidden_without_a_rate_limit_is_auth_failed(env):
    env.fake.fault_status = 403  # e.g. a token without write access to pull requests
    with pytest.raises(SyncError) as exc:
        env.open()
    assert not isinstance(exc.value, RateLimited)
    assert exc.value.code == PROVIDER_AUTH and exc.value.retryable is False and "403" in exc.value.message


def test_a_token_echoed_back_is_redacted(env):
    # Some intermediaries (WAFs, debugging proxies) quote the request headers back.
    env.fake.fault_status = 400
    env.fake.fault_message = f"header not allowed: Authorization: Bearer {TOKEN}"
    with pytest.raises(SyncError) as exc:
        env.open()
    assert exc.value.code == PROVIDER_REJECTED and "header not allowed" in exc.value.message
    assert_safe(exc.value)


def test_rotated_token_is_used_on_the_next_request(env):
    client = env.client()
    opened = env.open(client)
    env.fake.token = "tok_rotated_on_the_server"
    with pytest.raises(SyncError) as exc:
        client.get_pull_request(opened.number)
    assert exc.value.code == PROVIDER_AUTH
    env.token = "tok_rotated_on_the_server"  # the secret store now yields the new one
    assert client.get_pull_request(opened.number).state == "open"
    assert env.fake.errors == []


def test_missing_token_sends_nothing(env):
    env.token = ""
    with pytest.raises(SyncError) as exc:
        env.open()
    assert exc.value.code == SECRET_MISSING and exc.value.retryable is False
    assert env.fake.requests == []


def test_missing_repository_is_not_found(env):
    env.fake.repos.clear()
    with pytest.raises(SyncError) as exc:
        env.open()
    assert exc.value.code == PROVIDER_NOT_FOUND and exc.value.retryable is False
    assert_safe(exc.value)
    assert env.fake.errors == []


def test_unknown_request_number_is_not_found(env):
    with pytest.raises(SyncError) as exc:
        env.client().get_pull_request(42)
    assert exc.value.code == PROVIDER_NOT_FOUND
    assert env.fake.errors == []


def test_duplicate_request_is_rejected_with_the_providers_words(env):
    client = env.client()
    env.open(client)
    with pytest.raises(SyncError) as exc:
        env.open(client)
    assert exc.value.code == PROVIDER_REJECTED and exc.value.retryable is False
    assert DUPLICATE_WORDS[env.provider] in exc.value.message
    assert_safe(exc.value)
    assert env.fake.errors == []


def test_bitbucket_answering_a_duplicate_with_the_existing_request():
    e = Env("bitbucket")
    try:
        e.fake.duplicate_policy = "update"  # the other reported behaviour (PROVIDERS.md "Unconfirmed")
        client = e.client()
        assert e.open(client).number == e.open(client).number == 1
        assert len(e.fake.repos[e.repo_key].pulls) == 1
    finally:
        e.fake.stop()


# --- finding the open request of a branch (a retried promotion) -----------------------
# What each provider's documented list call must carry (PROVIDERS.md §4 and the brief).
LIST_CALLS = {
    "github": ("/repos/acme/flows/pulls", {"state": ["open"], "head": ["acme:promote/dev-to-prod"], "base": ["main"]}),
    "gitlab": ("/projects/acme%2Fplatform%2Fflows/merge_requests",
               {"state": ["opened"], "source_branch": ["promote/dev-to-prod"], "target_branch": ["main"]}),
    "bitbucket": ("/repositories/acme/flows/pullrequests",
                  {"q": ['source.branch.name = "promote/dev-to-prod" AND destination.branch.name = "main" AND state = "OPEN"']}),
    "gitea": ("/repos/acme/flows/pulls", {"state": ["open"]}),
}


def test_find_open_request_by_its_branches(env):
    client = env.client()
    assert client.find_open_pull_request("main", "promote/dev-to-prod") is None
    path, query = LIST_CALLS[env.provider]
    seen = env.fake.requests[-1]
    assert (seen.method, seen.path[len(env.fake.prefix):]) == ("GET", path)
    assert {k: v for k, v in seen.query.items() if k in query} == query
    # another open request (other branch, other base) is never taken for ours
    repo = env.fake.repos[env.repo_key]
    repo.branches.update({"promote/other": "4" * 40, "env/prod": "5" * 40})
    client.open_pull_request("main", "promote/other", "Other", "")
    if env.provider != "gitlab":  # GitLab allows one open merge request per source branch
        other_base = client.open_pull_request("env/prod", "promote/dev-to-prod", "Same branch, other base", "")
        assert client.find_open_pull_request("main", "promote/dev-to-prod") is None
        assert client.find_open_pull_request("env/prod", "promote/dev-to-prod").number == other_base.number
        env.fake.close(other_base.number)
    assert client.find_open_pull_request("main", "promote/dev-to-prod") is None
    ours = env.open(client)
    found = client.find_open_pull_request("main", "promote/dev-to-prod")
    assert found == ours and (found.state, found.head, found.base) == ("open", "promote/dev-to-prod", "main")
    # closed or merged requests are not open ones
    env.fake.close(ours.number)
    assert client.find_open_pull_request("main", "promote/dev-to-prod") is None
    reopened = env.open(client)
    env.fake.merge(reopened.number, MERGED_SHA)
    assert client.find_open_pull_request("main", "promote/dev-to-prod") is None
    assert env.fake.errors == []


@pytest.mark.matrix("attacks", row="a fork's pull request from a branch named like the promotion branch", column="promotion",
                    expect="the lookup a retried Promote makes ignores requests whose source is another repository")
def test_find_ignores_a_fork_with_the_same_branch_name(env):
    client = env.client()
    forged = env.fake.open_from_fork("mallory/flows", "main", "promote/dev-to-prod", "6" * 40, "Looks like a promotion")
    assert client.find_open_pull_request("main", "promote/dev-to-prod") is None
    ours = env.open(client)  # the fork's request does not count as a duplicate either
    assert ours.number == forged + 1
    assert client.find_open_pull_request("main", "promote/dev-to-prod").number == ours.number
    assert env.fake.errors == []


@pytest.mark.parametrize("provider", ["gitea", "bitbucket"])
def test_find_pages_through_long_lists(provider):
    # Gitea's list has no branch filter; Bitbucket's q matches branch names of forks too.
    # Ours is the oldest, so it is on the second page (newest first).
    e = Env(provider)
    try:
        client = e.client()
        ours = e.open(client)
        for i in range(55):
            if provider == "gitea":
                e.fake.repos[e.repo_key].branches[f"feature/{i}"] = f"{i + 10:040x}"
                client.open_pull_request("main", f"feature/{i}", f"Feature {i}", "")
            else:
                e.fake.open_from_fork(f"fork{i}/flows", "main", "promote/dev-to-prod", f"{i + 10:040x}")
        assert client.find_open_pull_request("main", "promote/dev-to-prod").number == ours.number
        lists = [r for r in e.fake.requests if r.method == "GET"]
        assert len(lists) == 2  # page 1, then page 2 (Gitea: `page=2`; Bitbucket: its `next` link)
        assert e.fake.errors == []
    finally:
        e.fake.stop()


def test_find_escapes_quotes_in_branch_names(env):
    # `"` is allowed in git branch names; Bitbucket's BBQL string must escape it.
    branch = 'promote/say-"hi"\\now'
    env.fake.repos[env.repo_key].branches[branch] = "7" * 40
    client = env.client()
    opened = client.open_pull_request("main", branch, "Quoted", "")
    assert client.find_open_pull_request("main", branch).number == opened.number
    assert env.fake.errors == []


def test_find_failures_are_translated(env):
    env.fake.fault_status = 503
    with pytest.raises(SyncError) as exc:
        env.client().find_open_pull_request("main", "promote/dev-to-prod")
    assert exc.value.code == PROVIDER_UNREACHABLE and exc.value.retryable is True
    env.fake.fault_status = None
    env.fake.repos.clear()
    with pytest.raises(SyncError) as exc:
        env.client().find_open_pull_request("main", "promote/dev-to-prod")
    assert exc.value.code == PROVIDER_NOT_FOUND
    assert_safe(exc.value)


@pytest.mark.parametrize("provider, code, words", [
    ("github", PROVIDER_REJECTED, "PullRequest head invalid"),
    ("gitlab", PROVIDER_REJECTED, 'Source branch "promote/missing" does not exist'),
    ("bitbucket", PROVIDER_REJECTED, "Branch not found: promote/missing"),
    ("gitea", PROVIDER_NOT_FOUND, "The target couldn't be found."),
])
def test_unpushed_branch_is_refused(provider, code, words):
    e = Env(provider)
    try:
        with pytest.raises(SyncError) as exc:
            e.client().open_pull_request("main", "promote/missing", "t", "")
        assert exc.value.code == code and words in exc.value.message
        assert e.fake.errors == []
    finally:
        e.fake.stop()


def test_rate_limited_carries_the_reset_time(env):
    client = env.client()
    opened = env.open(client)
    env.fake.rate_limit_remaining = 0
    before = time.time()
    with pytest.raises(RateLimited) as exc:
        client.get_pull_request(opened.number)
    err = exc.value
    assert err.code == PROVIDER_RATE_LIMITED and err.retryable is True
    assert_safe(err)
    if env.provider == "github":  # 403 + x-ratelimit-remaining: 0 → x-ratelimit-reset
        assert err.reset_at == env.fake.rate_limit_reset and "HTTP 403" in err.message
    elif env.provider == "gitlab":  # 429 + Retry-After (seconds until RateLimit-Reset)
        assert abs(err.reset_at - env.fake.rate_limit_reset) <= 2
    elif env.provider == "gitea":  # assumed generic 429 + Retry-After: 60
        assert before + 59 <= err.reset_at <= time.time() + 61
    else:  # Bitbucket sends no reset header at all
        assert err.reset_at is None and "back off" in err.message
    if err.reset_at is not None:
        assert "retry after 20" in err.message
    env.fake.rate_limit_remaining = None
    assert client.get_pull_request(opened.number).state == "open"
    assert env.fake.errors == []


def test_github_secondary_style_429_is_rate_limited():
    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/flows", {"main": MAIN_SHA, "promote/dev-to-prod": HEAD_SHA})
        gh.rate_limit_status = 429
        gh.rate_limit_remaining = 0
        client = client_for("git@github.com:acme/flows.git", lambda: TOKEN, api_base=gh.api_root)
        with pytest.raises(RateLimited) as exc:
            client.open_pull_request("main", "promote/dev-to-prod", "t", "")
        assert exc.value.reset_at == gh.rate_limit_reset and "HTTP 429" in exc.value.message
        assert gh.errors == []


def test_server_error_is_retryable_unreachable(env):
    env.fake.fault_status = 502
    with pytest.raises(SyncError) as exc:
        env.open()
    assert exc.value.code == PROVIDER_UNREACHABLE and exc.value.retryable is True
    assert "HTTP 502" in exc.value.message


def test_slow_provider_times_out(env):
    env.fake.delay = 1.0
    with pytest.raises(SyncError) as exc:
        env.open(env.client(timeout=0.2))
    assert exc.value.code == PROVIDER_UNREACHABLE and "within 0.2 s" in exc.value.message


def test_nothing_listening_is_unreachable():
    client = client_for("https://github.com/acme/flows", lambda: TOKEN, api_base=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SyncError) as exc:
        client.get_pull_request(1)
    assert exc.value.code == PROVIDER_UNREACHABLE and exc.value.retryable is True
    assert_safe(exc.value)


# --- auth variants --------------------------------------------------------------------
def test_gitlab_oauth_token_as_bearer():
    e = Env("gitlab")
    try:
        pr = e.open(e.client(bearer=True))
        assert pr.number == 1
        assert "authorization" in e.fake.requests[0].headers and "private-token" not in e.fake.requests[0].headers
        assert e.fake.errors == []
    finally:
        e.fake.stop()


def test_bitbucket_basic_auth_with_a_username():
    with FakeBitbucket(token=TOKEN, username="bot@acme.example") as bb:
        bb.add_repo("acme/flows", {"main": MAIN_SHA, "promote/x": HEAD_SHA})
        url = "git@bitbucket.org:acme/flows.git"
        ok = client_for(url, lambda: TOKEN, api_base=bb.api_root, username="bot@acme.example")
        assert ok.open_pull_request("main", "promote/x", "t", "").number == 1
        wrong_user = client_for(url, lambda: TOKEN, api_base=bb.api_root, username="someone@else.example")
        with pytest.raises(SyncError) as exc:
            wrong_user.get_pull_request(1)
        assert exc.value.code == PROVIDER_AUTH
        assert_safe(exc.value)
        assert bb.errors == []


# --- GitLab merge methods: what the target branch holds -----------------------------
@pytest.mark.parametrize("how, expected", [("merge", MERGED_SHA), ("squash", MERGED_SHA), ("ff", HEAD_SHA)])
def test_gitlab_merged_sha_for_each_merge_method(how, expected):
    e = Env("gitlab")
    try:
        client = e.client()
        pr = e.open(client)
        e.fake.merge(pr.number, MERGED_SHA, how=how)
        merged = client.get_pull_request(pr.number)
        assert merged.state == "merged" and merged.merge_commit_sha == expected
        assert e.fake.repos[e.repo_key].branches["main"] == expected
    finally:
        e.fake.stop()


# --- redirects: same origin only, so the token never travels elsewhere -----------------
def test_github_renamed_repository_is_followed_on_the_same_host():
    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/flows-renamed", {"main": MAIN_SHA, "promote/x": HEAD_SHA})
        gh.moved["acme/flows"] = "acme/flows-renamed"
        client = client_for("https://github.com/acme/flows", lambda: TOKEN, api_base=gh.api_root)
        pr = client.open_pull_request("main", "promote/x", "t", "")  # 307, body re-sent
        assert client.get_pull_request(pr.number).head == "promote/x"  # 301
        assert [r.path for r in gh.requests] == ["/repos/acme/flows/pulls", "/repos/acme/flows-renamed/pulls",
                                                  "/repos/acme/flows/pulls/1", "/repos/acme/flows-renamed/pulls/1"]
        assert gh.errors == []


def test_github_redirect_to_another_host_is_not_followed():
    with FakeGitHub(token=TOKEN) as gh, FakeGitHub(token=TOKEN) as elsewhere:
        gh.add_repo("acme/flows", {"main": MAIN_SHA})
        gh.moved["acme/flows"] = f"{elsewhere.api_root}/repos/evil/flows"
        client = client_for("https://github.com/acme/flows", lambda: TOKEN, api_base=gh.api_root)
        with pytest.raises(SyncError) as exc:
            client.get_pull_request(1)
        assert exc.value.code == PROVIDER_REJECTED and "redirected" in exc.value.message
        assert elsewhere.requests == []


# --- the fakes enforce the documented contract (so a green test means something) ------
def test_fake_github_flags_undocumented_requests():
    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/flows", {"main": MAIN_SHA, "x": HEAD_SHA})
        url = f"{gh.api_root}/repos/acme/flows/pulls"
        good = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "t"}
        no_version = {k: v for k, v in good.items() if k != "X-GitHub-Api-Version"}
        assert requests.post(url, json={"head": "x", "base": "main", "title": "t"}, headers=no_version).status_code == 400
        missing_title = requests.post(url, json={"head": "x", "base": "main"}, headers=good)
        assert missing_title.status_code == 422 and missing_title.json()["message"] == "Validation Failed"
        assert requests.post(url, data="title=t", headers={**good, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
        assert requests.get(f"{gh.api_root}/repos/acme/flows/pullz/1", headers=good).status_code == 404
        assert len(gh.errors) == 4
        assert any("X-GitHub-Api-Version" in e for e in gh.errors) and any("title is missing" in e for e in gh.errors)


def test_fake_gitlab_routes_on_the_raw_encoded_path():
    with FakeGitLab(token=TOKEN) as gl:
        gl.add_repo("acme/platform/flows", {"main": MAIN_SHA})
        unencoded = requests.get(f"{gl.api_root}/projects/acme/platform/flows/merge_requests/1", headers={"PRIVATE-TOKEN": TOKEN})
        assert unencoded.status_code == 404 and unencoded.json() == {"error": "404 Not Found"}
        assert gl.errors and "not a documented route" in gl.errors[0]
        by_id = requests.get(f"{gl.api_root}/projects/100/merge_requests/1", headers={"PRIVATE-TOKEN": TOKEN})
        assert by_id.status_code == 404 and by_id.json() == {"message": "404 Not found"}  # project found, no MR 1


def test_fake_gitea_and_bitbucket_flag_a_foreign_auth_scheme():
    with FakeGitea(token=TOKEN) as gt, FakeBitbucket(token=TOKEN) as bb:
        gt.add_repo("acme/flows", {"main": MAIN_SHA})
        bb.add_repo("acme/flows", {"main": MAIN_SHA})
        assert requests.get(f"{gt.api_root}/repos/acme/flows/pulls/1", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
        assert requests.get(f"{bb.api_root}/repositories/acme/flows/pullrequests/1").status_code == 401
        assert "auth scheme 'Bearer'" in gt.errors[0] and "no credentials" in bb.errors[0]


# --- where each API lives ---------------------------------------------------------------
@pytest.mark.parametrize("url, provider, kind, root, repo", [
    ("https://github.com/acme/flows.git", "auto", "github", "https://api.github.com", "acme/flows"),
    ("git@github.com:acme/flows.git", "auto", "github", "https://api.github.com", "acme/flows"),
    ("ssh://git@ssh.github.com:443/acme/flows.git", "auto", "github", "https://api.github.com", "acme/flows"),
    ("https://ghe.corp.example/acme/flows.git", "github", "github", "https://ghe.corp.example/api/v3", "acme/flows"),
    ("git@ghe.corp.example:acme/flows.git", "github", "github", "https://ghe.corp.example/api/v3", "acme/flows"),
    ("https://octo.ghe.com/acme/flows", "github", "github", "https://api.octo.ghe.com", "acme/flows"),
    ("https://gitlab.com/acme/platform/flows.git", "auto", "gitlab", "https://gitlab.com/api/v4", "acme%2Fplatform%2Fflows"),
    ("git@gitlab.com:acme/flows.git", "auto", "gitlab", "https://gitlab.com/api/v4", "acme%2Fflows"),
    ("ssh://git@gitlab.corp.example:2222/group/sub/flows.git", "gitlab", "gitlab", "https://gitlab.corp.example/api/v4", "group%2Fsub%2Fflows"),
    ("https://gitlab.corp.example:8443/group/flows", "gitlab", "gitlab", "https://gitlab.corp.example:8443/api/v4", "group%2Fflows"),
    ("git@bitbucket.org:acme/flows.git", "auto", "bitbucket", "https://api.bitbucket.org/2.0", "acme/flows"),
    ("https://alice@bitbucket.org/acme/flows.git", "auto", "bitbucket", "https://api.bitbucket.org/2.0", "acme/flows"),
    ("http://gitea.local:3000/acme/flows.git", "gitea", "gitea", "http://gitea.local:3000/api/v1", "acme/flows"),
    ("git@gitea.local:acme/flows.git", "gitea", "gitea", "https://gitea.local/api/v1", "acme/flows"),
    ("https://codeberg.org/acme/flows.git", "auto", "gitea", "https://codeberg.org/api/v1", "acme/flows"),
])
def test_api_base_for(url, provider, kind, root, repo):
    target = api_base_for(url, provider)
    assert (target.provider, target.root, target.repo) == (kind, root, repo)


def test_repo_base_per_provider():
    assert api_base_for("https://github.com/a/b").repo_base == "https://api.github.com/repos/a/b"
    assert api_base_for("https://gitlab.com/g/s/p").repo_base == "https://gitlab.com/api/v4/projects/g%2Fs%2Fp"
    assert api_base_for("https://bitbucket.org/w/r").repo_base == "https://api.bitbucket.org/2.0/repositories/w/r"
    assert api_base_for("https://gitea.com/o/r").repo_base == "https://gitea.com/api/v1/repos/o/r"


def test_api_base_override_keeps_the_repository_from_the_url():
    target = api_base_for("https://gitlab.corp.example/gitlab/group/flows.git", "gitlab", "https://gitlab.corp.example/gitlab/api/v4/")
    assert (target.root, target.repo) == ("https://gitlab.corp.example/gitlab/api/v4", "gitlab%2Fgroup%2Fflows")


@pytest.mark.parametrize("url, provider, words", [
    ("https://git.corp.example/acme/flows.git", "auto", "set the provider"),
    ("https://github.com/acme/team/flows.git", "auto", "owner/repository"),
    ("https://bitbucket.corp.example/acme/flows.git", "bitbucket", "only Bitbucket Cloud"),
    ("not a url", "auto", "names no host"),
])
def test_api_base_for_refuses_what_it_cannot_place(url, provider, words):
    with pytest.raises(SyncError) as exc:
        api_base_for(url, provider)
    assert exc.value.code == CONFIG_INVALID and words in exc.value.message


def test_credentials_in_the_repository_url_are_not_echoed():
    with pytest.raises(SyncError) as exc:
        api_base_for(f"https://x-access-token:{TOKEN}@git.corp.example/acme/flows.git")
    assert_safe(exc.value)


def test_a_request_from_a_deleted_fork_is_never_taken_for_ours():
    from sidecar.adapters import providers as pv

    shapes = {
        pv.BitbucketClient: {"source": {"branch": {"name": "promote/x"}, "repository": None},
                             "destination": {"branch": {"name": "main"}, "repository": {"full_name": "org/flows"}}},
        pv.GitHubClient: {"head": {"ref": "promote/x", "repo": None}, "base": {"ref": "main", "repo": {"id": 1, "full_name": "org/flows"}}},
        pv.GiteaClient: {"head": {"ref": "promote/x", "repo": None}, "base": {"ref": "main", "repo": {"id": 1, "full_name": "org/flows"}}},
    }
    for cls, item in shapes.items():
        assert cls._same_repository(None, item) is False, cls.__name__
