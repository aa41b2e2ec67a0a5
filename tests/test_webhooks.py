"""Provider push webhooks (V5, P1): pure checks of detection, verification, parsing, replay
and rate limiting; then real HTTP deliveries to a running sidecar (real Node-RED, real git).

Deliveries are built by tests/webhook_payloads.py as each provider documents them
(PROVIDERS.md §1–§3), signed there independently of the sidecar's code.
"""
from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from urllib.parse import urlencode

import pytest
import requests

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from sidecar.api.webhooks import WEBHOOK_LAST, WEBHOOK_SECRET, WebhookEndpoint
from sidecar.core import config as configmod
from sidecar.core import webhooks as wh
from tests import flowgen
from tests import webhook_payloads as P
from tests.constants import CANARY
from tests.waiting import status, wait_local

SECRET_PATH = "global.SECRETS.git.token"  # its value in the secrets fixture is CANARY
ENABLED = {"webhooks": {"enabled": True, "secret": SECRET_PATH}}

# =========================================================================== pure


def test_github_documented_test_vector_verifies():
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert wh.verify("github", {"X-Hub-Signature-256": documented}, body, secret)
    assert wh.sign("github", body, secret) == {"X-Hub-Signature-256": documented}
    # the SHA-1 value PROVIDERS.md computed (not documented) agrees with our helper, and is not accepted alone
    assert "sha1=" + P.hmac_hex(secret, body, hashlib.sha1) == "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"
    assert not wh.verify("github", {"X-Hub-Signature": "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"}, body, secret)
    assert not wh.verify("github", {"X-Hub-Signature-256": documented}, body + b" ", secret)
    assert not wh.verify("github", {"X-Hub-Signature-256": documented}, body, secret + "x")
    assert not wh.verify("github", {"X-Hub-Signature-256": documented.removeprefix("sha256=")}, body, secret)
    assert wh.verify("github", [(b"x-hub-signature-256", documented.encode())], body, secret)  # ASGI pairs


@pytest.mark.parametrize("provider", P.PROVIDERS)
def test_detect_provider_from_each_providers_full_header_set(provider):
    d = P.push(provider, "s", P.fake_sha("a"))
    assert wh.detect_provider(d.headers) == provider
    assert wh.detect_provider({k.lower(): v for k, v in d.headers.items()}) == provider


def test_detect_provider_gitea_before_github_and_bitbucket_needs_hook_uuid():
    gitea = P.gitea_push("s", P.fake_sha("a"))
    assert "X-GitHub-Event" in gitea.headers and wh.detect_provider(gitea.headers) == "gitea"
    assert wh.detect_provider({"X-Gogs-Event": "push", "X-GitHub-Event": "push"}) == "gitea"
    assert wh.detect_provider({"X-Event-Key": "repo:push"}) is None  # Bitbucket Data Center: out of scope
    assert wh.detect_provider({"X-Event-Key": "repo:push", "X-Hook-UUID": "{x}"}) == "bitbucket"
    assert wh.detect_provider({"Content-Type": "application/json"}) is None


@pytest.mark.parametrize("provider", P.PROVIDERS)
@pytest.mark.matrix('attacks', 'a tampered body under a real signature', 'webhooks',
                    expect='refused by the constant-time check')
def test_verify_accepts_the_provider_signature_and_refuses_forged_unsigned_tampered(provider):
    d = P.push(provider, "hook-secret", P.fake_sha("v"))
    assert wh.verify(provider, d.headers, d.body, "hook-secret")
    assert not wh.verify(provider, d.forged().headers, d.body, "hook-secret")
    assert not wh.verify(provider, d.unsigned().headers, d.body, "hook-secret")
    assert not wh.verify(provider, d.headers, d.body, "")  # no secret configured: everything refused
    assert not wh.verify(provider, d.unsigned().headers, d.body, "")
    if provider != "gitlab":  # GitLab's token does not cover the body
        assert not wh.verify(provider, d.headers, d.body.replace(b"Update flows", b"Update flowz"), "hook-secret")
    for other in P.PROVIDERS:
        if other != provider and not (provider == "gitea" and other == "github"):
            assert not wh.verify(other, d.headers, d.body, "hook-secret"), other
    assert not wh.verify("generic", d.headers, d.body, "hook-secret")


def test_gitea_also_satisfies_github_check_because_it_sends_the_same_header():
    d = P.gitea_push("s", P.fake_sha("g"))  # JSON delivery: X-Hub-Signature-256 is over the same bytes
    assert wh.verify("github", d.headers, d.body, "s")


def test_gitlab_token_is_the_secret_without_line_breaks():
    assert wh.verify("gitlab", {"X-Gitlab-Token": "abc"}, b"{}", "abc")
    assert wh.verify("gitlab", {"X-Gitlab-Token": "abcdef"}, b"{}", "abc\ndef")
    assert not wh.verify("gitlab", {"X-Gitlab-Token": "abc "}, b"{}", "abc")
    assert not wh.verify("gitlab", {"X-Gitlab-Token": ""}, b"{}", "abc")
    assert not wh.verify("gitlab", {"X-Gitlab-Token": "ab"}, b"{}", "abc")
    assert not wh.verify("gitlab", {"X-Gitlab-Token": "a" * 10000}, b"{}", "abc")


def test_bitbucket_parses_the_algorithm_prefix():
    body, secret = b'{"push": {"changes": []}}', "bb"
    good = P.hmac_hex(secret, body)
    h = lambda v: {"X-Hub-Signature": v}
    assert wh.verify("bitbucket", h("sha256=" + good), body, secret)
    assert wh.verify("bitbucket", h("SHA256=" + good.upper()), body, secret)  # case does not matter in hex
    assert not wh.verify("bitbucket", h(good), body, secret)  # no prefix
    assert not wh.verify("bitbucket", h("sha1=" + P.hmac_hex(secret, body, hashlib.sha1)), body, secret)  # GitHub's legacy meaning
    assert not wh.verify("bitbucket", h("sha1=" + good), body, secret)  # right digest, wrong algorithm name
    assert not wh.verify("bitbucket", h("sha256="), body, secret)
    assert not wh.verify("bitbucket", h("sha256"), body, secret)
    assert not wh.verify("bitbucket", {"X-Hub-Signature-256": "sha256=" + good}, body, secret)  # GitHub's header, not Bitbucket's


def test_gitea_form_delivery_is_checked_against_the_payload_field():
    d = P.gitea_push("gt", P.fake_sha("f"), form=True)
    assert d.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert wh.verify("gitea", d.headers, d.body, "gt")
    # a raw-body verifier (go-github's way) would fail here: the body is not what Gitea signs
    assert d.headers["X-Gitea-Signature"] != P.hmac_hex("gt", d.body)
    forged_body = urlencode({"payload": json.dumps(dict(d.payload, after=P.fake_sha("evil")))}).encode()
    assert not wh.verify("gitea", d.headers, forged_body, "gt")
    assert not wh.verify("gitea", d.headers, b"nopayload=1", "gt")
    assert wh.parse_push("gitea", d.headers, d.body).after == d.payload["after"]
    # Gitea with no secret sends the headers, empty
    assert not wh.verify("gitea", {"X-Gitea-Signature": "", "X-Hub-Signature": "sha1="}, d.body, "gt")


def test_github_form_delivery_signs_the_form_body():
    d = P.github_push("gh", P.fake_sha("f"), form=True)
    assert wh.verify("github", d.headers, d.body, "gh")
    assert wh.parse_push("github", d.headers, d.body).after == d.payload["after"]


def test_delivery_ids_and_replay_keys_per_provider():
    gh = P.github_push("s", P.fake_sha("1"))
    assert wh.delivery_id("github", gh.headers) == gh.headers["X-GitHub-Delivery"]
    assert wh.delivery_id("github", gh.replayed().headers) == gh.headers["X-GitHub-Delivery"]
    gl = P.gitlab_push("s", P.fake_sha("2"))
    assert wh.delivery_id("gitlab", gl.headers) == gl.headers["Idempotency-Key"]
    assert wh.delivery_id("gitlab", gl.replayed().headers) == gl.headers["Idempotency-Key"]
    old = P.gitlab_push("s", P.fake_sha("2"), idempotency=False)  # before 17.4
    assert wh.delivery_id("gitlab", old.headers) == old.headers["X-Gitlab-Event-UUID"]
    assert wh.delivery_id("gitlab", old.replayed().headers) == old.headers["X-Gitlab-Event-UUID"]
    bb = P.bitbucket_push("s", P.fake_sha("3"))
    assert wh.delivery_id("bitbucket", bb.headers) == bb.headers["X-Request-UUID"] != bb.headers["X-Hook-UUID"]
    gt = P.gitea_push("s", P.fake_sha("4"))
    assert wh.delivery_id("gitea", gt.headers) == gt.headers["X-Gitea-Delivery"]
    replay = gt.replayed()
    assert wh.delivery_id("gitea", replay.headers) != wh.delivery_id("gitea", gt.headers)  # a new UUID ...
    first = wh.replay_keys("gitea", gt.headers, gt.body, wh.parse_push("gitea", gt.headers, gt.body))
    again = wh.replay_keys("gitea", replay.headers, replay.body, wh.parse_push("gitea", replay.headers, replay.body))
    assert set(first) & set(again)  # ... but the same announced push
    assert wh.replay_keys("github", {}, b"") == []
    # a branch force-pushed back to an earlier commit is a new push, not a replay
    a, b = P.fake_sha("A"), P.fake_sha("B")
    to_a = P.github_push("s", a, before=P.fake_sha("X"))
    back_to_a = P.github_push("s", a, before=b, forced=True)
    k1 = wh.replay_keys("github", to_a.headers, to_a.body, wh.parse_push("github", *_hb(to_a)))
    k2 = wh.replay_keys("github", back_to_a.headers, back_to_a.body, wh.parse_push("github", *_hb(back_to_a)))
    assert not set(k1) & set(k2)


def test_parse_github_push_unions_files_over_commits():
    a, b, after = P.fake_sha("c1"), P.fake_sha("c2"), P.fake_sha("c3")
    d = P.github_push("s", after, before=P.fake_sha("b"), forced=True, commits=[
        {"id": a, "message": "Add two flows", "added": ["dev/a.json", "dev/b.json"], "modified": ["package.json"]},
        {"id": b, "message": "Drop b, touch config", "removed": ["dev/b.json", "dev/old.json"], "modified": ["dev/config.json"]},
        {"id": after, "message": "Rename tab\n\nBody text", "modified": ["dev/a.json"]},
    ])
    e = wh.parse_push("github", d.headers, d.body)
    assert (e.provider, e.ref, e.branch, e.after, e.forced, e.created, e.deleted, e.tag) == (
        "github", "refs/heads/main", "main", after, True, False, False, False)
    assert e.added == () and e.removed == ("dev/old.json",)
    assert e.modified == ("dev/a.json", "dev/b.json", "dev/config.json", "package.json")
    assert e.message == "Rename tab\n\nBody text" and e.commits == 3 and e.files_complete
    assert e.delivery == d.headers["X-GitHub-Delivery"]
    assert set(e.changed) == {"dev/a.json", "dev/b.json", "dev/config.json", "package.json", "dev/old.json"}


def test_parse_github_branch_created_and_deleted_and_tag():
    created = wh.parse_push("github", *_hb(P.github_push("s", P.fake_sha("n"), before=P.ZERO)))
    assert created.created and not created.deleted
    gone = wh.parse_push("github", *_hb(P.github_push("s", P.ZERO, before=P.fake_sha("o"))))
    assert gone.deleted and gone.after == P.ZERO and gone.message == "" and not gone.files_complete
    tag = wh.parse_push("github", *_hb(P.github_push("s", P.fake_sha("t"), ref="refs/tags/v1.0")))
    assert tag.tag and tag.branch == "" and tag.ref == "refs/tags/v1.0"


def _hb(d):
    return d.headers, d.body


def test_parse_gitlab_push_truncated_commit_list():
    commits = [{"id": P.fake_sha(f"gl{i}"), "message": f"c{i}", "modified": [f"f{i}.json"]} for i in range(25)]
    d = P.gitlab_push("s", commits[-1]["id"], commits=commits)  # GitLab lists the newest 20 of 25
    assert len(d.payload["commits"]) == 20 and d.payload["total_commits_count"] == 25
    e = wh.parse_push("gitlab", d.headers, d.body)
    assert e.commits == 25 and not e.files_complete and len(e.modified) == 20 and e.message == "c24"
    assert wh.event_kind("gitlab", d.headers) == "push"
    tag = P.gitlab_push("s", P.fake_sha("tg"), ref="refs/tags/v2")
    assert wh.event_kind("gitlab", tag.headers) == "tag_push" and wh.parse_push("gitlab", *_hb(tag)).tag
    deleted = wh.parse_push("gitlab", *_hb(P.gitlab_push("s", P.ZERO)))
    assert deleted.deleted and deleted.commits == 0


def test_parse_gitea_push_newest_first_and_capped_at_five():
    commits = [{"id": P.fake_sha(f"gt{i}"), "message": f"m{i}", "added": [f"a{i}.json"]} for i in range(7)]
    d = P.gitea_push("s", commits[-1]["id"], commits=commits)
    assert d.payload["commits"][0]["id"] == commits[-1]["id"] and len(d.payload["commits"]) == 5
    e = wh.parse_push("gitea", d.headers, d.body)
    assert e.message == "m6" and e.commits == 7 and not e.files_complete
    assert e.added == tuple(sorted(f"a{i}.json" for i in range(2, 7)))


def test_parse_bitbucket_push_changes():
    main_after, other_after = P.fake_sha("bm"), P.fake_sha("bo")
    d = P.bitbucket_push("s", main_after, message="Deploy v2", forced=True,
                         extra_changes=[P.bitbucket_change("feature/x", other_after, P.fake_sha("bx"))])
    events = wh.parse_pushes("bitbucket", d.headers, d.body)
    assert [e.branch for e in events] == ["feature/x", "main"]
    e = wh.parse_push("bitbucket", d.headers, d.body, branch="main")
    assert (e.after, e.message, e.forced, e.files_complete, e.added) == (main_after, "Deploy v2", True, False, ())
    assert wh.parse_push("bitbucket", d.headers, d.body).branch == "feature/x"  # no branch asked: the first change
    created = wh.parse_push("bitbucket", *_hb(P.bitbucket_push("s", P.fake_sha("c"), created=True)))
    assert created.created and created.before == P.ZERO
    closed = wh.parse_push("bitbucket", *_hb(P.bitbucket_push("s", P.ZERO)))
    assert closed.deleted and closed.branch == "main" and closed.after == P.ZERO
    tag = wh.parse_push("bitbucket", *_hb(P.bitbucket_push("s", P.fake_sha("t"), branch="v1", tag=True)))
    assert tag.tag and tag.ref == "refs/tags/v1" and tag.branch == ""


def test_non_push_events_are_not_pushes_and_bad_json_is_a_payload_error():
    ping = P.github_ping("s")
    assert wh.event_kind("github", ping.headers) == "ping" and wh.parse_push("github", *_hb(ping)) is None
    pr = P.github_pull_request("s")
    assert wh.parse_push("github", *_hb(pr)) is None and wh.parse_merge("github", *_hb(P.github_push("s", P.fake_sha()))) is None
    with pytest.raises(wh.PayloadError):
        wh.parse_push("github", {"X-GitHub-Event": "push"}, b"{not json")
    with pytest.raises(wh.PayloadError):
        wh.parse_push("github", {"X-GitHub-Event": "push"}, b"[1, 2]")
    with pytest.raises(wh.PayloadError):
        wh.parse_push("gitea", {"X-Gitea-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}, b"x=1")
    assert wh.parse_push("github", {"X-GitHub-Event": "push"}, b'{"ref": 5, "after": null}') is None
    odd = wh.parse_push("github", {"X-GitHub-Event": "push"}, b'{"ref": "refs/heads/main", "after": "not-a-sha", "commits": "x"}')
    assert odd.after == P.ZERO and odd.deleted


@pytest.mark.parametrize("provider,builder,merged_kw,open_kw", [
    ("github", P.github_pull_request, {}, {"action": "closed", "merged": False}),
    ("gitlab", P.gitlab_merge_request, {}, {"action": "close"}),
    ("bitbucket", P.bitbucket_pull_request, {}, {"event": "rejected"}),
    ("gitea", P.gitea_pull_request, {}, {"action": "closed", "merged": False}),
])
def test_parse_merge_per_provider(provider, builder, merged_kw, open_kw):
    head_sha, merge_sha = P.fake_sha("head-" + provider), P.fake_sha("merge-" + provider)
    d = builder("s", head_sha=head_sha, merge_sha=merge_sha, **merged_kw) if provider != "gitlab" else \
        builder("s", last_commit=head_sha, merge_sha=merge_sha)
    m = wh.parse_merge(provider, d.headers, d.body)
    assert m.merged and m.base == "production" and m.head == "promote/dev-to-production" and m.number > 0
    if provider == "bitbucket":  # 12-character abbreviations: compare by prefix
        assert len(m.merge_sha) == 12 and merge_sha.startswith(m.merge_sha) and head_sha.startswith(m.head_sha)
    else:
        assert m.merge_sha == merge_sha and m.head_sha == head_sha
    assert m.url.startswith("https://")
    closed = builder("s", **open_kw)
    c = wh.parse_merge(provider, closed.headers, closed.body)
    assert c is not None and not c.merged and c.merge_sha == ""
    if provider == "github":
        opened = wh.parse_merge("github", *_hb(P.github_pull_request("s", action="opened", merged=False)))
        assert opened.action == "opened" and not opened.merged


def test_replay_guard_ttl_and_capacity():
    g = wh.ReplayGuard(capacity=3, ttl=100.0)
    assert not g.check_and_remember(["a"], now=0)
    assert g.check_and_remember(["a"], now=50)
    assert g.check_and_remember(["x", "a"], now=60)  # any key seen → duplicate
    assert not g.check_and_remember(["a"], now=160)  # expired (remembered at 0)
    for k in "bcd":
        g.check_and_remember([k], now=161)
    assert len(g) == 3 and not g.seen(["a"], now=161)  # oldest dropped at capacity
    assert not g.check_and_remember([], now=162)


def test_rate_limiter_bucket_per_source():
    r = wh.RateLimiter(per_minute=6)  # burst 6, one token every 10 s
    assert all(r.allow("1.2.3.4", now=0.0) for _ in range(6))
    assert not r.allow("1.2.3.4", now=0.0)
    assert r.retry_after("1.2.3.4", now=0.0) == 10
    assert r.allow("5.6.7.8", now=0.0)  # another source has its own bucket
    assert not r.allow("1.2.3.4", now=9.0)
    assert r.allow("1.2.3.4", now=15.0) and not r.allow("1.2.3.4", now=15.0)  # 0.9 + 0.6 tokens
    assert all(r.allow("1.2.3.4", now=1000.0) for _ in range(6)) and not r.allow("1.2.3.4", now=1000.0)
    small = wh.RateLimiter(per_minute=1, max_sources=2)
    for src in ("a", "b", "c"):
        assert small.allow(src, now=0.0)
    assert small.allow("a", now=0.0)  # "a" was dropped (LRU), it starts with a full bucket again


def test_webhooks_config_section_and_validation():
    cfg = configmod.from_dict({"webhooks": {"enabled": "true", "secret": SECRET_PATH, "max_body_bytes": 2048, "rate_per_minute": 5}})
    assert cfg.webhooks.enabled is True and cfg.webhooks.max_body_bytes == 2048
    assert configmod.Config().webhooks.enabled is False and configmod.Config().webhooks.max_body_bytes == 1024 * 1024
    assert configmod.Config().webhooks.rate_per_minute == 120
    bad = configmod.from_dict({"webhooks": {"secret": "plaintext-secret", "max_body_bytes": 10, "rate_per_minute": 0}})
    fields = {v.field for v in configmod.validate(bad)}
    assert {"webhooks.secret", "webhooks.max_body_bytes", "webhooks.rate_per_minute"} <= fields
    assert not [v for v in configmod.validate(cfg) if v.field.startswith("webhooks")]
    missing = configmod.validate(cfg, secret_exists=lambda p: False)
    assert any(v.field == "webhooks.secret" and "does not exist" in v.message for v in missing)


# =========================================================================== end to end


def make_repo(repos):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Example flows")
    return remote, sha


def settle(rs) -> None:
    """Let any sync a request may have triggered run to the end."""
    time.sleep(0.3)
    assert rs.app.service.wait_idle(30)


def jobs(rs) -> list:
    return rs.app.store.jobs(100)


def post(rs, d: P.Delivery, path: str = "/webhooks", **kw) -> requests.Response:
    return requests.post(rs.http_url + path, data=d.body, headers=d.headers, timeout=30, **kw)


def started(flowapp, repos, running_sidecar, webhooks: dict | None = None, sync: dict | None = None):
    remote, first = make_repo(repos)
    extra = {"webhooks": {"enabled": True, "secret": SECRET_PATH, **(webhooks or {})}}
    if sync:
        extra["sync"] = sync
    rs = running_sidecar(flowapp, remote.file_url, extra=extra)
    wait_local(rs, first)
    settle(rs)
    return rs, remote, first


def metric(rs, provider: str, result: str) -> float:
    text = requests.get(rs.http_url + "/metrics", timeout=10).text
    line = f'flow_gitops_webhook_requests_total{{provider="{provider}",result="{result}"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return float(row.split()[-1])
    return 0.0


@pytest.mark.parametrize("provider", P.PROVIDERS)
@pytest.mark.matrix('attacks', 'forged, unsigned and replayed webhook deliveries, per provider', 'webhooks',
                    expect='refused (401) or ignored as a replay; nothing synced; the signed one syncs')
def test_signed_push_deploys_the_new_commit_and_forgeries_and_replays_do_nothing(provider, flowapp, repos, running_sidecar):
    rs, remote, first = started(flowapp, repos, running_sidecar)
    n = len(jobs(rs))
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    d = P.push(provider, CANARY, second)

    # forged, unsigned, tampered: 401, the same answer every time, and no sync
    for bad in (d.forged(), d.unsigned(), d.with_body(d.body.replace(b"Update flows", b"Update flowz")) if provider != "gitlab"
                else d.forged()):
        r = post(rs, bad)
        assert r.status_code == 401 and r.json() == {"result": "unauthorized", "message": "unauthorized"}
    settle(rs)
    assert len(jobs(rs)) == n and status(rs).local.sha == first

    r = post(rs, d)
    assert r.status_code == 202 and r.json()["result"] == "accepted", r.text
    wait_local(rs, second)
    settle(rs)
    new = jobs(rs)[: len(jobs(rs)) - n]
    assert [j.trigger for j in new] == ["webhook"] and new[0].status == "succeeded" and new[0].to_commit == second
    last = rs.app.store.get(WEBHOOK_LAST)
    assert last["after"] == second and last["provider"] == provider and last["branch"] == "main" and last["at"] > 0

    # the same delivery again (as the provider replays it): ignored, no second sync job
    r = post(rs, d.replayed())
    assert r.status_code == 200 and r.json() == {"result": "duplicate", "message": "duplicate, ignored"}
    r = post(rs, d)
    assert r.status_code == 200 and r.json()["result"] == "duplicate"
    settle(rs)
    assert len(jobs(rs)) == n + 1
    assert metric(rs, provider, "accepted") == 1 and metric(rs, provider, "duplicate") == 2
    assert metric(rs, provider, "unauthorized") == 3
    # explicit provider path works the same
    third = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="three"))}, "Third")
    r = post(rs, P.push(provider, CANARY, third), path=f"/webhooks/{provider}")
    assert r.status_code == 202, r.text
    wait_local(rs, third)


def test_gitea_form_delivery_and_github_form_delivery_end_to_end(flowapp, repos, running_sidecar):
    rs, remote, _first = started(flowapp, repos, running_sidecar)
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    d = P.gitea_push(CANARY, second, form=True)
    assert post(rs, d).status_code == 202
    wait_local(rs, second)
    third = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="three"))}, "Third")
    d = P.github_push(CANARY, third, form=True)
    assert post(rs, d).status_code == 202
    wait_local(rs, third)


@pytest.mark.matrix('attacks', 'signed deliveries for another branch, a tag, a ping', 'webhooks',
                    expect='acknowledged but nothing synced')
def test_wrong_branch_tags_pings_and_pull_requests_are_ignored(flowapp, repos, running_sidecar):
    rs, remote, first = started(flowapp, repos, running_sidecar)
    n = len(jobs(rs))
    other = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="x"))}, "Feature", branch="feature/x")
    r = post(rs, P.push("github", CANARY, other, branch="feature/x"))
    assert r.status_code == 202 and r.json() == {"result": "ignored", "message": "ignored: branch feature/x"}
    r = post(rs, P.bitbucket_push(CANARY, other, branch="feature/x"))
    assert r.status_code == 202 and r.json()["message"] == "ignored: branch feature/x"
    r = post(rs, P.gitlab_push(CANARY, P.fake_sha("tag"), ref="refs/tags/v1.0"))
    assert r.status_code == 202 and r.json()["message"] == "ignored: tag v1.0"
    r = post(rs, P.github_push(CANARY, P.ZERO, before=first))  # the branch deleted
    assert r.status_code == 202 and r.json()["result"] == "ignored"
    r = post(rs, P.github_ping(CANARY))
    assert r.status_code == 200 and r.json() == {"result": "ignored", "message": "ignored: event ping"}
    for d in (P.github_pull_request(CANARY), P.gitlab_merge_request(CANARY), P.bitbucket_pull_request(CANARY),
              P.gitea_pull_request(CANARY)):
        r = post(rs, d)
        assert r.status_code == 200 and r.json() == {"result": "ignored", "message": "ignored: event pull_request"}, d.provider
    bad = P.Delivery("github", {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "z"}, b"{oops")
    r = post(rs, P.SIGNERS["github"](bad, CANARY))
    assert r.status_code == 400 and r.json()["result"] == "rejected"
    settle(rs)
    assert len(jobs(rs)) == n and rs.app.store.get(WEBHOOK_LAST) is None
    assert metric(rs, "github", "ignored") == 4 and metric(rs, "gitlab", "ignored") == 2


@pytest.mark.matrix('attacks', 'a webhook body above the size cap', 'webhooks',
                    expect='413 without reading the body')
def test_oversized_body_is_refused_without_being_read(flowapp, repos, running_sidecar):
    rs, remote, first = started(flowapp, repos, running_sidecar, webhooks={"max_body_bytes": 4096})
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    d = P.github_push(CANARY, second, commits=[{"id": second, "message": "x" * 5000, "modified": ["flows.json"]}])
    assert len(d.body) > 4096
    r = post(rs, d)
    assert r.status_code == 413 and r.json()["result"] == "too_large"

    # a chunked body (no Content-Length) that grows past the limit
    def chunks():
        yield d.body[:2000]
        yield d.body[2000:]
    r = requests.post(rs.http_url + "/webhooks", data=chunks(), headers=d.headers, timeout=30)
    assert r.status_code == 413

    # a client that declares 100 MB and sends almost nothing gets its answer at once
    with socket.create_connection(("127.0.0.1", rs.server.http_port), timeout=10) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in d.headers.items())
        s.sendall(f"POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n{head}\r\n".encode() + b"{")
        answer = s.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413")
    settle(rs)
    assert status(rs).local.sha == first and metric(rs, "github", "too_large") == 3
    small = P.github_push(CANARY, second)
    assert len(small.body) < 4096 and post(rs, small).status_code == 202
    wait_local(rs, second)


@pytest.mark.matrix('attacks', 'a webhook flood from one address', 'webhooks',
                    expect='429 beyond the per-source rate')
def test_rate_limit_per_client_address(flowapp, repos, running_sidecar):
    rs, remote, _first = started(flowapp, repos, running_sidecar, webhooks={"rate_per_minute": 5})
    codes = [post(rs, P.github_ping(CANARY)).status_code for _ in range(5)]
    assert codes == [200] * 5
    r = post(rs, P.github_ping(CANARY))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["result"] == "rate_limited"
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    assert post(rs, P.github_push(CANARY, second)).status_code == 429  # even a good one, until tokens return
    assert post(rs, P.github_push(CANARY, second).forged()).status_code == 429  # checked before anything else
    assert metric(rs, "github", "rate_limited") == 3


@pytest.mark.matrix('attacks', 'deliveries while webhooks are off', 'webhooks',
                    expect='every delivery refused')
def test_webhooks_disabled_are_rejected(flowapp, repos, running_sidecar):
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url)  # webhooks off by default
    wait_local(rs, first)
    settle(rs)
    n = len(jobs(rs))
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    for provider in P.PROVIDERS:
        r = post(rs, P.push(provider, CANARY, second))
        assert r.status_code == 404 and r.json()["result"] == "rejected"
        assert post(rs, P.push(provider, CANARY, second), path=f"/webhooks/{provider}").status_code == 404
    assert requests.get(rs.http_url + "/webhooks", timeout=10).status_code == 404
    settle(rs)
    assert len(jobs(rs)) == n and status(rs).local.sha == first
    assert rs.server.webhooks.secret() == "" and rs.server.webhooks.reveal_secret() is None
    assert metric(rs, "github", "rejected") == 2


def test_paused_sync_takes_note_but_does_not_sync(flowapp, repos, running_sidecar):
    rs, remote, first = started(flowapp, repos, running_sidecar)
    rs.stub.Pause(pb.PauseRequest(), metadata=rs.md)
    n = len(jobs(rs))
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    r = post(rs, P.gitlab_push(CANARY, second))
    assert r.status_code == 202 and r.json() == {"result": "ignored", "message": "ignored: sync is paused"}
    assert rs.app.store.get(WEBHOOK_LAST)["after"] == second  # announced, all the same
    settle(rs)
    assert len(jobs(rs)) == n and status(rs).local.sha == first
    assert requests.get(rs.http_url + "/webhooks", timeout=10).status_code == 405


@pytest.mark.matrix('attacks', 'reading the generated webhook secret a second time; using it after the mode went off', 'webhooks',
                    expect='shown once; cleared with the mode, then every delivery is refused')
def test_generated_secret_shown_once_used_and_cleared_when_turned_off(flowapp, repos, running_sidecar, caplog):
    caplog.set_level(logging.DEBUG)
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url, extra={"webhooks": {"enabled": True}})
    wait_local(rs, first)
    endpoint: WebhookEndpoint = rs.server.webhooks
    stored = rs.app.store.get(WEBHOOK_SECRET)
    assert stored["shown"] is False and len(stored["value"]) >= 40
    assert endpoint.info()["secret_source"] == "generated" and "value" not in json.dumps(endpoint.info())
    secret = endpoint.reveal_secret()
    assert secret == stored["value"] and endpoint.reveal_secret() is None  # once
    assert endpoint.info()["secret_shown"] is True
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    assert post(rs, P.github_push(CANARY, second)).status_code == 401  # the secret path's value is not it
    r = post(rs, P.gitea_push(secret, second))
    assert r.status_code == 202 and secret not in r.text
    wait_local(rs, second)
    metrics_text = requests.get(rs.http_url + "/metrics", timeout=10).text
    assert secret not in metrics_text and secret not in caplog.text
    rs.stop()

    # restarted with the same secret kept
    rs2 = running_sidecar(flowapp, remote.file_url, extra={"webhooks": {"enabled": True}})
    assert rs2.server.webhooks.secret() == secret and rs2.server.webhooks.reveal_secret() is None
    rs2.stop()
    # turned off: the secret is cleared and every webhook is rejected
    rs3 = running_sidecar(flowapp, remote.file_url, extra={"webhooks": {"enabled": False}})
    assert rs3.app.store.get(WEBHOOK_SECRET) is None and rs3.server.webhooks.secret() == ""
    assert post(rs3, P.gitea_push(secret, P.fake_sha("z"))).status_code == 404
    rs3.stop()
    # on again: a new secret, shown once again
    rs4 = running_sidecar(flowapp, remote.file_url, extra={"webhooks": {"enabled": True}})
    fresh = rs4.server.webhooks.reveal_secret()
    assert fresh and fresh != secret


@pytest.mark.matrix('attacks', 'looking for the webhook secret in answers, logs and metrics', 'secrets',
                    expect='not there')
def test_the_secret_never_appears_in_responses_logs_or_metrics(flowapp, repos, running_sidecar, caplog):
    caplog.set_level(logging.DEBUG)
    rs, remote, _first = started(flowapp, repos, running_sidecar, webhooks={"rate_per_minute": 40})
    assert rs.server.webhooks.secret() == CANARY
    assert rs.server.webhooks.reveal_secret() is None  # a secret-path secret is never shown
    assert CANARY not in json.dumps(rs.server.webhooks.info())
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    texts = []
    deliveries = [P.gitlab_push(CANARY, second), P.gitlab_push(CANARY, second).forged(), P.github_push(CANARY, second).unsigned(),
                  P.github_ping(CANARY), P.gitea_push(CANARY, second, form=True), P.bitbucket_push(CANARY, second, branch="x")]
    for d in deliveries:
        r = post(rs, d)
        texts.append(r.text + json.dumps(dict(r.headers)))
    wait_local(rs, second)
    settle(rs)
    texts.append(requests.get(rs.http_url + "/metrics", timeout=10).text)
    blob = "\n".join(texts)
    assert CANARY not in blob and CANARY not in caplog.text
    assert "unauthorized" in blob and "accepted" in blob
    assert all(CANARY not in json.dumps(j.to_dict()) for j in jobs(rs))
    assert CANARY not in json.dumps(rs.app.store.get(WEBHOOK_LAST))


def test_an_explicit_repository_provider_decides_how_webhooks_are_checked(flowapp, repos, running_sidecar):
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, remote.file_url, extra={**ENABLED, "repository": {"provider": "gitea"}})
    wait_local(rs, first)
    settle(rs)
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second")
    r = post(rs, P.gitlab_push(CANARY, second))  # a valid GitLab delivery, but this repository is on Gitea
    assert r.status_code == 401 and metric(rs, "gitea", "unauthorized") == 1
    assert post(rs, P.gitlab_push(CANARY, second), path="/webhooks/gitlab").status_code == 202  # the path wins
    wait_local(rs, second)


def test_get_webhook_reveals_a_generated_secret_once_and_spots_a_broken_webhook(flowapp, repos, running_sidecar):
    from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
    from sidecar.core.schedule import Trigger
    from tests import flowgen as fg

    remote = repos.create("flows")
    remote.commit({"flows.json": fg.dumps(fg.example())}, "Flows")
    rs = running_sidecar(flowapp, remote.file_url, extra={"webhooks": {"enabled": True}})
    rs.app.service.wait_idle(30)
    first = rs.stub.GetWebhook(pb.GetWebhookRequest(reveal_secret=True), metadata=rs.md)
    assert first.enabled and first.secret_source == "generated" and len(first.secret) >= 32
    assert "/webhooks/github" in first.paths
    again = rs.stub.GetWebhook(pb.GetWebhookRequest(reveal_secret=True), metadata=rs.md)
    assert again.secret == "" and again.secret_shown
    # a commit the poll finds, that no webhook announced: the webhook looks broken
    remote.commit({"flows.json": fg.dumps(fg.example(variant="x"))}, "Unannounced")
    assert rs.app.store.job(rs.app.engine.run(Trigger("timer"))).status == "succeeded"
    assert rs.stub.GetWebhook(pb.GetWebhookRequest(), metadata=rs.md).looks_broken is True


@pytest.mark.matrix("attacks", "deliveries before the first configuration, then with the secret generated at that moment", "webhooks",
                    expect="refused until configured; the first save generates the secret, shown once, and only it verifies")
def test_the_first_saved_configuration_generates_the_webhook_secret(flowapp, repos, running_sidecar):
    remote, first = make_repo(repos)
    rs = running_sidecar(flowapp, "", extra={"webhooks": {"enabled": True}})
    endpoint: WebhookEndpoint = rs.server.webhooks
    assert rs.app.store.get(WEBHOOK_SECRET) is None and endpoint.secret() == ""
    assert post(rs, P.gitea_push("anything", first)).status_code == 404  # not configured: no webhooks at all
    rs.app.save_config({"repository": {"protocol": "file", "url": remote.file_url, "branch": "main"}})
    secret = rs.stub.GetWebhook(pb.GetWebhookRequest(reveal_secret=True), metadata=rs.md).secret
    assert secret and rs.stub.GetWebhook(pb.GetWebhookRequest(reveal_secret=True), metadata=rs.md).secret == ""
    assert post(rs, P.gitea_push("not-" + secret, first)).status_code == 401
    r = post(rs, P.gitea_push(secret, first))
    assert r.status_code == 202 and r.json()["result"] == "ignored"  # verified; sync is paused after a first save
