"""Promotion (V6) end to end, for each provider: flows of one environment → a branch, a
commit and a pull/merge request (opened through a fake of the provider's API that checks
the documented request shapes); a reviewer edits the branch and merges it on the real
repository; the provider's "merged" webhook makes the target environment deploy exactly
the merged content at once.

Real git (smart HTTP with basic auth for the source, the bare repository for the target),
real Node-RED on both sides; only the hosted provider APIs are faked, on loopback.
Providers are chosen explicitly (`repository.provider` + `promotion.api_base`): a
loopback host says nothing about the provider.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import grpc
import pytest
import requests

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from tests import flowgen
from tests import webhook_payloads as P
from tests.constants import CANARY, GIT_USER
from tests.servers.githttp import GitHttpServer
from tests.servers.providers import FakeBitbucket, FakeGitea, FakeGitHub, FakeGitLab
from tests.waiting import status, wait_local

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
FAKES = {"github": FakeGitHub, "gitlab": FakeGitLab, "bitbucket": FakeBitbucket, "gitea": FakeGitea}
CREATE = {"github": "create_pull", "gitlab": "create_mr", "bitbucket": "create_pull", "gitea": "create_pull"}
LIST = {"github": "/repos/org/flows/pulls", "gitlab": "/projects/org%2Fflows/merge_requests",
        "bitbucket": "/repositories/org/flows/pullrequests", "gitea": "/repos/org/flows/pulls"}
WEBHOOKS = {"webhooks": {"enabled": True, "secret": "global.SECRETS.git.token"}}  # its value is CANARY
REVIEWER = ("-c", "user.name=Rita Reviewer", "-c", "user.email=rita@example.com")


class GitBranches(dict):
    """The fake's branch table, falling back to the real repository's refs."""

    def __init__(self, git_dir, factory):
        super().__init__()
        self.git_dir, self.factory = git_dir, factory

    def _real(self, name):
        r = self.factory.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}", cwd=self.git_dir, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def __contains__(self, name):
        return dict.__contains__(self, name) or self._real(name) is not None

    def __getitem__(self, name):
        return dict.__getitem__(self, name) if dict.__contains__(self, name) else self._real(name)


@dataclass
class World:
    provider: str
    remote: object  # tests.servers.gitrepo.RemoteRepo
    repos: object  # tests.servers.gitrepo.GitRepoFactory
    fake: object  # one of the provider fakes
    source: object  # tests.apiserver.RunningSidecar: environment "test", push mode, split layout

    def promote(self, *flow_ids: str, target: str = "production") -> pb.PromoteResponse:
        return self.source.stub.Promote(pb.PromoteRequest(flow_ids=list(flow_ids), target_environment=target),
                                        metadata=self.source.md, timeout=60)

    def promotion_branches(self) -> list[str]:
        out = self.repos.git("for-each-ref", "--format=%(refname:short)", "refs/heads/promote/", cwd=self.remote.path)
        return out.stdout.split()

    @property
    def pulls(self) -> dict[int, dict]:
        return self.fake.repos["org/flows"].pulls

    def creations(self) -> int:
        return sum(1 for r in self.fake.requests if r.method == "POST")

    def review_and_merge(self, branch: str, number: int) -> tuple[str, str]:
        """A reviewer edits the promoted flow on the branch, then merges it into main with
        a merge commit, as the provider's merge button would; (reviewed tip, merge commit)."""
        work = self.repos.root / ".work" / "org" / "flows"
        git = self.repos.git
        git("fetch", "-q", "origin", cwd=work)
        git("checkout", "-q", "-B", "review", f"origin/{branch}", cwd=work)
        promoted = json.loads((work / "production/flows/flow-1.json").read_text())
        promoted[0]["label"] = "Flow 1 (reviewed)"
        (work / "production/flows/flow-1.json").write_text(json.dumps(promoted, indent=4))
        git(*REVIEWER, "commit", "-qam", "Review edit", cwd=work)
        git("push", "-q", "origin", f"review:{branch}", cwd=work)
        reviewed = self.remote.head(branch)
        git("checkout", "-q", "main", cwd=work)
        git("pull", "-q", "origin", "main", cwd=work)
        git(*REVIEWER, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", f"origin/{branch}", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        merged = self.remote.head()
        self.fake.merge(number, merged)
        return reviewed, merged


@pytest.fixture
def world(request, flowapp, repos, running_sidecar):
    """`world(provider)`: a repository whose `production/` folder already runs one flow,
    served over smart HTTP; the provider's fake on top of it; the source environment
    ("test", push mode, split layout) running three flows."""
    stops = []

    def build(provider: str) -> World:
        remote = repos.create("org/flows")
        remote.commit({"README.md": "environments\n",
                       "production/flows/intake.json": flowgen.dumps(flowgen.tab("p1", "Intake"))}, "Start")
        git = GitHttpServer(repos.root, GIT_USER, CANARY).start()
        stops.append(git.stop)
        fake = FAKES[provider](token=CANARY)
        stops.append(fake.stop)
        fake.add_repo("org/flows", {})
        fake.repos["org/flows"].branches = GitBranches(remote.path, repos)
        flowapp.deploy(flowgen.example(tabs=3), "full")
        source = running_sidecar(flowapp, git.url_for("org/flows"), protocol="https", extra={
            "mode": "push", "repository": {"provider": provider, "username": "global.SECRETS.git.username",
                                           "password": "global.SECRETS.git.token", "layout": "split"},
            "promotion": {"api_base": fake.api_root}})
        assert source.app.service.wait_idle(30)
        return World(provider, remote, repos, fake, source)

    yield build
    for stop in reversed(stops):
        stop()


def start_target(running_sidecar, flowapp_open, remote, provider, tmp_path):
    """The production environment: promotion mode, webhooks on, following main."""
    target = running_sidecar(flowapp_open, remote.file_url, extra={
        "environment": "production", "mode": "promotion", "data_dir": str(tmp_path / "target-data"),
        "repository": {"provider": provider}, **WEBHOOKS})
    wait_local(target, remote.head())
    assert target.app.service.wait_idle(30)
    return target


def deliver(rs, d: P.Delivery) -> requests.Response:
    return requests.post(rs.http_url + "/webhooks", data=d.body, headers=d.headers, timeout=30)


def jobs(rs) -> list:
    return rs.app.store.jobs(100)


# =========================================================================== end to end


@pytest.mark.parametrize("provider", PROVIDERS)
def test_promote_opens_a_request_and_the_merge_webhook_deploys_the_merged_content(
        provider, world, flowapp_open, running_sidecar, tmp_path):
    w = world(provider)
    target = start_target(running_sidecar, flowapp_open, w.remote, provider, tmp_path)
    assert {n["id"] for n in flowapp_open.flows()[0] if n.get("type") == "tab"} == {"p1"}
    before = len(jobs(target))

    res = w.promote("t1")
    assert res.number == 1 and res.branch.startswith("promote/test-to-production-")
    assert "production/flows/flow-1.json" in res.files and "production/subflows/double-it.json" not in res.files
    assert w.promotion_branches() == [res.branch] and w.remote.head(res.branch) == res.commit
    assert w.fake.errors == []  # every request matched the provider's documented shape
    assert w.creations() == 1
    pr = w.pulls[1]
    assert (pr["title"], pr["head"], pr["base"]) == ("Promote Flow 1 from test to production", res.branch, "main")
    assert CANARY not in json.dumps(pr) and CANARY not in res.url

    reviewed, merged = w.review_and_merge(res.branch, res.number)

    # the provider announces the merge; production deploys it at once (no timer, no push event)
    r = deliver(target, P.pull_request(provider, CANARY, "merged", number=res.number, base="main", head=res.branch,
                                       head_sha=reviewed, merge_sha=merged))
    assert r.status_code == 202 and r.json()["result"] == "accepted", r.text
    wait_local(target, merged)
    new = jobs(target)[: len(jobs(target)) - before]
    assert [(j.trigger, j.status, j.to_commit) for j in new] == [("webhook", "succeeded", merged)]
    flows, _ = flowapp_open.flows()
    assert next(n for n in flows if n["id"] == "t1")["label"] == "Flow 1 (reviewed)"  # exactly what was merged
    assert {n["id"] for n in flows if n.get("type") == "tab"} == {"p1", "t1"}  # only the promoted flow came along
    assert target.app.board.current()["local"]["sha"] == merged
    assert w.fake.errors == []


# =========================================================================== retries


def _down(w: World) -> None:
    w.fake.down()


def _fail_before(w: World) -> None:
    w.fake.fail_next(CREATE[w.provider], 500)


def _cut_after(w: World) -> None:
    w.fake.fail_next(CREATE[w.provider], 0, after=True)


# fault → (how, requests the failed attempt opened, creation calls in all)
FAULTS = {"refuse": (_down, 0, 1), "HTTP 500": (_fail_before, 0, 2), "reset mid-transfer": (_cut_after, 1, 1)}
WHAT = {"refuse": "the provider API refuses connections during Promote (the branch is already pushed)",
        "HTTP 500": "the provider answers HTTP 500 to the pull request creation",
        "reset mid-transfer": "the pull request is created but the connection is cut before the answer"}


@pytest.mark.parametrize("provider, fault", [
    pytest.param(p, f, marks=pytest.mark.matrix(
        "faults", row="provider API (Promote)", column=f,
        expect=f"{WHAT[f]}: Promote fails with provider_unreachable; the retry reuses the pushed branch and ends with exactly one "
               "branch and one pull request"), id=f"{p}-{f.replace(' ', '-')}")
    for p in PROVIDERS for f in FAULTS])
def test_a_retried_promote_after_a_provider_failure_makes_one_branch_and_one_request(provider, fault, world):
    w = world(provider)
    inject, opened, creations = FAULTS[fault]
    inject(w)
    with pytest.raises(grpc.RpcError) as exc:
        w.promote("t1")
    assert exc.value.details().startswith("provider_unreachable: ")  # retryable, and the reason says why
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert CANARY not in exc.value.details()
    [branch] = w.promotion_branches()  # the first attempt got as far as the push
    pushed = w.remote.head(branch)
    assert len(w.pulls) == opened
    w.fake.up()

    res = w.promote("t1")
    assert res.branch == branch and res.commit == pushed  # the branch is reused, not pushed again
    assert w.promotion_branches() == [branch]
    assert res.number == 1 and list(w.pulls) == [1] and w.pulls[1]["head"] == branch
    # a lost answer: the retry found the request instead of creating another
    assert w.creations() == creations
    assert w.fake.errors == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_promoting_again_returns_the_open_request_and_keeps_review_edits(provider, world):
    w = world(provider)
    first = w.promote("t1")
    # a reviewer already pushed an edit to the promotion branch
    work = w.repos.root / ".work" / "org" / "flows"
    w.repos.git("fetch", "-q", "origin", cwd=work)
    w.repos.git("checkout", "-q", "-B", "review", f"origin/{first.branch}", cwd=work)
    (work / "production/NOTES.md").write_text("reviewed\n")
    w.repos.git("add", "-A", cwd=work)
    w.repos.git(*REVIEWER, "commit", "-qm", "Review note", cwd=work)
    w.repos.git("push", "-q", "origin", f"review:{first.branch}", cwd=work)
    reviewed = w.remote.head(first.branch)
    w.fake.requests.clear()

    again = w.promote("t1")  # e.g. a client that timed out and called again
    assert (again.branch, again.number, again.url) == (first.branch, first.number, first.url)
    assert again.commit == reviewed and w.remote.head(first.branch) == reviewed  # the review edit is kept
    assert list(w.pulls) == [1] and w.promotion_branches() == [first.branch]
    assert [(r.method, r.path[len(w.fake.prefix):]) for r in w.fake.requests] == [("GET", LIST[provider])]

    other = w.promote("t2")  # other flows: another proposal, another branch and request
    assert other.branch != first.branch and other.number == 2
    assert sorted(w.promotion_branches()) == sorted([first.branch, other.branch])
    assert w.fake.errors == []


@pytest.mark.matrix("attacks", row="a branch prepared under the predictable promotion branch name", column="promotion",
                    expect="not reused: Promote refuses naming the branch unless it starts with flow-gitops's own commit "
                           "of exactly this promotion; no request opened in our name")
def test_a_branch_prepared_under_the_promotion_name_is_not_proposed(world):
    w = world("github")
    first = w.promote("t1")
    w.pulls.clear()  # as if nothing had been proposed yet, and someone had prepared the branch
    work = w.repos.root / ".work" / "org" / "flows"
    w.repos.git("fetch", "-q", "origin", cwd=work)
    w.repos.git("checkout", "-q", "-B", "mallory", "origin/main", cwd=work)
    (work / "production" / "flows").mkdir(parents=True, exist_ok=True)
    (work / "production/flows/flow-1.json").write_text('[{"id": "t1", "type": "tab", "label": "Flow 1"}]\n')
    w.repos.git("add", "-A", cwd=work)
    w.repos.git("-c", "user.name=flow-gitops", "-c", "user.email=mallory@example.com", "commit", "-qm",
                "Promote Flow 1\n\nFlow-App-Promotion: test/x -> production", cwd=work)
    w.repos.git("push", "-q", "-f", "origin", f"mallory:{first.branch}", cwd=work)
    prepared = w.remote.head(first.branch)
    with pytest.raises(grpc.RpcError) as exc:
        w.promote("t1")
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"the branch {first.branch} already exists" in exc.value.details() and "not reused" in exc.value.details()
    assert w.pulls == {} and w.remote.head(first.branch) == prepared  # nothing proposed, nothing overwritten
    # "Test" is not another environment: its folder is this environment's own (test/)
    with pytest.raises(grpc.RpcError) as exc:
        w.promote("t1", target="Test")
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "another environment" in exc.value.details()


# =========================================================================== merge webhooks


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.matrix("attacks", row="a forged, unsigned or tampered \"pull request merged\" webhook", column="webhooks",
                    expect="a merge event is verified exactly like a push (401, no sync); only a genuine merge into "
                           "the environment's branch starts one, once")
def test_merge_webhooks_are_verified_and_only_a_merge_into_our_branch_syncs(
        provider, flowapp_open, repos, running_sidecar, tmp_path):
    remote = repos.create("flows")
    remote.commit({"production/flows/intake.json": flowgen.dumps(flowgen.tab("p1", "Intake"))}, "Start")
    target = start_target(running_sidecar, flowapp_open, remote, provider, tmp_path)
    merged = remote.commit({"production/flows/orders.json": flowgen.dumps(flowgen.tab("p2", "Orders"))}, "Merge #7")
    before = len(jobs(target))
    d = P.pull_request(provider, CANARY, "merged", number=7, head="promote/test-to-production-x", merge_sha=merged)

    refused = [d.forged(), d.unsigned()]
    if provider != "gitlab":  # GitLab's token does not cover the body
        refused.append(d.with_body(d.body.replace(b'"main"', b'"mainx"')))
    for bad in refused:
        r = deliver(target, bad)
        assert r.status_code == 401 and r.json() == {"result": "unauthorized", "message": "unauthorized"}
    for state in ("closed", "opened"):
        r = deliver(target, P.pull_request(provider, CANARY, state, number=8))
        assert r.status_code == 200 and r.json()["result"] == "ignored"
        assert r.json()["message"].startswith("ignored: pull request ") and r.json()["message"].endswith(", not merged")
    r = deliver(target, P.pull_request(provider, CANARY, "merged", number=9, base="staging"))
    assert r.status_code == 202 and r.json() == {"result": "ignored", "message": "ignored: branch staging"}
    time.sleep(0.3)
    assert target.app.service.wait_idle(30)
    assert len(jobs(target)) == before and status(target).local.sha != merged

    r = deliver(target, d)
    assert r.status_code == 202 and r.json()["result"] == "accepted", r.text
    wait_local(target, merged)
    assert {n["id"] for n in flowapp_open.flows()[0] if n.get("type") == "tab"} == {"p1", "p2"}
    r = deliver(target, d.replayed())  # the provider (or someone) sends it again
    assert r.status_code == 200 and r.json()["result"] == "duplicate"
    time.sleep(0.3)
    assert target.app.service.wait_idle(30)
    assert [(j.trigger, j.to_commit) for j in jobs(target)[: len(jobs(target)) - before]] == [("webhook", merged)]
    last = target.app.store.get("webhook_last")
    assert (last["event"], last["number"], last["branch"]) == ("merge", 7, "main") and merged.startswith(last["after"])


def test_merge_events_are_ignored_outside_promotion_mode(flowapp_open, repos, running_sidecar):
    remote = repos.create("flows")
    first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    rs = running_sidecar(flowapp_open, remote.file_url, extra=WEBHOOKS)  # pull mode: push events drive it
    wait_local(rs, first)
    merged = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Merge #3")
    for provider in PROVIDERS:
        r = deliver(rs, P.pull_request(provider, CANARY, "merged", number=3, merge_sha=merged))
        assert r.status_code == 200 and r.json() == {"result": "ignored", "message": "ignored: event pull_request"}
    time.sleep(0.3)
    assert rs.app.service.wait_idle(30)
    assert status(rs).local.sha == first
