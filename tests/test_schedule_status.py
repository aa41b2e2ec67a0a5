"""Unit tests for the timer, backoff and coalescing (P1, P6), the status model (P9) and providers."""
from __future__ import annotations

import random

import pytest

from sidecar.core import provider
from sidecar.core.schedule import MAX_JITTER, Coalescer, Trigger, next_check, retry_delay
from sidecar.core.status import STATES, Board, CommitInfo, Facts, fold, snapshot

# --------------------------------------------------------------------------- timer


@pytest.mark.parametrize("interval", [120, 300, 3600])
def test_next_check_within_interval_plus_jitter(interval):
    rng = random.Random(1)
    now = 1_700_000_000.0
    for _ in range(1000):
        t = next_check(now, interval, rng)
        assert now + interval <= t <= now + interval + 60


def test_jitter_covers_range_roughly_uniformly():
    rng = random.Random(42)
    draws = [next_check(0.0, 120, rng) - 120 for _ in range(10_000)]
    assert MAX_JITTER == 60
    assert min(draws) < 0.5 and max(draws) > 59.5
    bins = [0] * 6
    for d in draws:
        bins[min(int(d // 10), 5)] += 1
    # expected 1667 per 10-s bin; allow a generous ±15 %
    assert all(1417 <= b <= 1917 for b in bins), bins
    assert 28 < sum(draws) / len(draws) < 32


def test_jitter_differs_between_draws():
    rng = random.Random(7)
    assert len({next_check(0, 120, rng) for _ in range(50)}) == 50


def test_retry_delay_doubles_from_30_and_caps_at_interval():
    assert [retry_delay(n, 600) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    assert [retry_delay(n, 120) for n in range(1, 5)] == [30, 60, 120, 120]
    assert retry_delay(50, 900) == 900
    assert retry_delay(0, 300) == 300


# --------------------------------------------------------------------------- coalescer


def test_coalescer_one_running_one_waiting():
    c = Coalescer()
    assert c.take() is None
    assert c.offer(Trigger("timer")) == "queued"
    first = c.take()
    assert first == Trigger("timer") and c.running == first and c.waiting is None
    assert c.offer(Trigger("timer")) == "queued"
    assert c.offer(Trigger("timer")) == "coalesced"
    assert c.offer(Trigger("webhook")) == "coalesced"
    assert c.take() is None  # one is running: nothing else starts
    assert c.running == first
    c.done()
    assert c.running is None
    second = c.take()
    assert second == Trigger("webhook") and c.waiting is None
    c.done()
    assert c.take() is None


def test_stronger_trigger_replaces_weaker_waiting_one():
    c = Coalescer()
    c.offer(Trigger("timer"))
    c.offer(Trigger("force"))
    assert c.waiting == Trigger("force")
    c.offer(Trigger("retry", "job-7"))
    assert c.waiting == Trigger("retry", "job-7")
    c.offer(Trigger("approve", "abc123"))
    assert c.waiting == Trigger("approve", "abc123")


@pytest.mark.parametrize("strong,weak", [("force", "timer"), ("webhook", "startup"), ("approve", "force"), ("retry", "webhook")])
def test_weaker_trigger_does_not_replace_stronger(strong, weak):
    c = Coalescer()
    c.offer(Trigger(strong))
    assert c.offer(Trigger(weak)) == "coalesced"
    assert c.waiting == Trigger(strong)


def test_unknown_trigger_kind_is_weakest():
    c = Coalescer()
    c.offer(Trigger("mystery"))
    c.offer(Trigger("timer"))
    assert c.waiting == Trigger("timer")
    c.offer(Trigger("mystery"))
    assert c.waiting == Trigger("timer")


# --------------------------------------------------------------------------- status fold


def _facts(**kw) -> Facts:
    base = dict(configured=True, paused=False)
    base.update(kw)
    return Facts(**base)


A, B = CommitInfo("a" * 40), CommitInfo("b" * 40)


@pytest.mark.parametrize(
    "facts,state",
    [
        (Facts(), "not_configured"),
        (Facts(configured=False, running="fetch", last_error_code="x", pending_commit="a"), "not_configured"),
        (_facts(running="deploy", pending_commit="a", last_error_code="x", paused=True), "syncing"),
        (_facts(running="recover", recovering=True, last_error_code="x"), "recovering"),
        (_facts(recovering=True, remote=A, local=A), "in_sync"),  # recovering only counts while a job runs
        (_facts(pending_commit="b" * 40, last_error_code="x", paused=True), "pending_approval"),
        (_facts(last_error_code="git_auth_failed", paused=True, remote=B, local=A), "error"),
        (_facts(paused=True, remote=B, local=A), "paused"),
        (_facts(remote=B, local=A), "behind"),
        (_facts(remote=B), "behind"),
        (_facts(remote=A, local=CommitInfo("a" * 40)), "in_sync"),
        (_facts(), "behind"),  # configured and active, nothing applied yet
        (_facts(local=A), "in_sync"),  # applied, remote not checked yet since a restart
    ],
)
def test_fold_order(facts, state):
    assert state in STATES
    assert fold(facts) == state


def test_every_state_reachable():
    examples = [Facts(), _facts(paused=True), _facts(running="x"), _facts(running="x", recovering=True),
                _facts(pending_commit="c"), _facts(last_error_code="e"), _facts(remote=A), _facts(local=A)]
    assert {fold(f) for f in examples} == set(STATES)


def test_snapshot_carries_reason_and_commits():
    f = _facts(last_error_code="nodered_rejected", last_error_message="HTTP 400", remote=B, local=A)
    s = snapshot(f, 9)
    assert s["seq"] == 9 and s["state"] == "error" and s["behind"] is True
    assert (s["reason_code"], s["reason_message"]) == ("nodered_rejected", "HTTP 400")
    assert s["remote"]["sha"] == "b" * 40 and s["remote"]["short"] == "b" * 8
    assert s["local"]["sha"] == "a" * 40


# --------------------------------------------------------------------------- board


def test_board_notifies_only_on_real_change_and_seq_increases():
    board = Board()
    seen: list[dict] = []
    unsubscribe = board.subscribe(seen.append)
    assert board.current()["seq"] == 0 and board.current()["state"] == "not_configured"

    assert board.update(paused=True)["seq"] == 0  # already paused: nothing changed
    assert seen == []

    s1 = board.update(configured=True)
    assert s1["seq"] == 1 and s1["state"] == "paused" and seen == [s1]

    board.update(configured=True, paused=True)
    assert len(seen) == 1

    s2 = board.update(paused=False, remote=CommitInfo("c" * 40))
    assert s2["seq"] == 2 and s2["state"] == "behind"
    board.update(remote=CommitInfo("c" * 40))  # equal value, new object
    assert len(seen) == 2

    s3 = board.update(progress="installing 1 of 2: node-red-dashboard@3.6.0")
    assert s3["seq"] == 3 and s3["state"] == "behind" and len(seen) == 3  # not a state change, still a change
    assert [s["seq"] for s in seen] == [1, 2, 3]
    assert board.current() == s3

    unsubscribe()
    board.update(paused=True)
    assert len(seen) == 3
    assert board.current()["seq"] == 4


def test_board_rejects_unknown_fact():
    board = Board()
    with pytest.raises(AttributeError, match="bogus"):
        board.update(bogus=1)


def test_board_facts_is_a_copy():
    board = Board(Facts(configured=True, remote=CommitInfo("a" * 40)))
    f = board.facts()
    f.remote.sha = "z" * 40
    f.paused = False
    assert board.facts().remote.sha == "a" * 40 and board.facts().paused is True


# --------------------------------------------------------------------------- providers

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://github.com/o/r.git", "github"),
        ("git@github.com:o/r.git", "github"),
        ("ssh://git@github.com/o/r.git", "github"),
        ("https://GitHub.com/o/r", "github"),
        ("https://gitlab.com/g/sub/r.git", "gitlab"),
        ("git@gitlab.com:g/r.git", "gitlab"),
        ("https://bitbucket.org/team/r.git", "bitbucket"),
        ("git@bitbucket.org:team/r.git", "bitbucket"),
        ("https://codeberg.org/o/r.git", "gitea"),
        ("https://gitea.com/o/r.git", "gitea"),
        ("https://git.example.com/o/r.git", "generic"),
        ("git@git.example.com:o/r.git", "generic"),
        ("file:///srv/git/r.git", "generic"),
        ("", "generic"),
    ],
)
def test_detect_from_host(url, expected):
    assert provider.detect(url) == expected
    assert provider.detect(url, "auto") == expected


def test_detect_explicit_provider_wins():
    assert provider.detect("https://git.example.com/o/r.git", "gitlab") == "gitlab"
    assert provider.detect("https://github.com/o/r.git", "gitea") == "gitea"


@pytest.mark.parametrize(
    "url,prov,link",
    [
        ("https://github.com/o/r.git", "github", f"https://github.com/o/r/commit/{SHA}"),
        ("git@github.com:o/r.git", "github", f"https://github.com/o/r/commit/{SHA}"),
        ("ssh://git@github.com/o/r.git", "github", f"https://github.com/o/r/commit/{SHA}"),
        ("https://gitlab.com/g/sub/r.git", "gitlab", f"https://gitlab.com/g/sub/r/-/commit/{SHA}"),
        ("git@gitlab.com:g/sub/r.git", "gitlab", f"https://gitlab.com/g/sub/r/-/commit/{SHA}"),
        ("https://bitbucket.org/team/r.git", "bitbucket", f"https://bitbucket.org/team/r/commits/{SHA}"),
        ("git@bitbucket.org:team/r.git", "bitbucket", f"https://bitbucket.org/team/r/commits/{SHA}"),
        ("https://codeberg.org/o/r.git", "gitea", f"https://codeberg.org/o/r/commit/{SHA}"),
        ("https://github.com/o/r/", "github", f"https://github.com/o/r/commit/{SHA}"),
        # self-hosted with an explicit provider
        ("https://git.example.com/o/r.git", "gitlab", f"https://git.example.com/o/r/-/commit/{SHA}"),
        ("git@git.example.com:o/r.git", "gitea", f"https://git.example.com/o/r/commit/{SHA}"),
        ("ssh://git@git.example.com:2222/o/r.git", "gitlab", f"https://git.example.com/o/r/-/commit/{SHA}"),
    ],
)
def test_commit_link(url, prov, link):
    assert provider.commit_link(url, prov, SHA) == link


@pytest.mark.parametrize(
    "url,prov,link",
    [
        ("https://git.example.com:8443/o/r.git", "gitlab", f"https://git.example.com:8443/o/r/-/commit/{SHA}"),
        ("http://gitea.local:3000/o/r.git", "gitea", f"http://gitea.local:3000/o/r/commit/{SHA}"),
    ],
)
def test_commit_link_keeps_web_scheme_and_port(url, prov, link):
    # P9: a self-hosted Gitea/GitLab served on its own port/scheme must still be linked correctly.
    assert provider.commit_link(url, prov, SHA) == link


@pytest.mark.parametrize("url,prov", [("https://git.example.com/o/r.git", "generic"), ("https://github.com/o/r.git", "auto"),
                                      ("https://github.com/o/r.git", ""), ("https://github.com/", "github"), ("", "github")])
def test_commit_link_empty_when_unknown(url, prov):
    assert provider.commit_link(url, prov, SHA) == ""


def test_host_and_path_forms():
    assert provider.host_and_path("git@GitHub.com:o/r.git") == ("github.com", "o/r")
    assert provider.host_and_path("ssh://git@h:22/o/r.git") == ("h", "o/r")
    assert provider.host_and_path("https://h/g/s/r") == ("h", "g/s/r")


def test_health_folds_failures_into_three_levels():
    from sidecar.core.status import health

    assert health(_facts(local=A)) == "healthy"
    assert health(_facts(last_error_code="git_unreachable", consecutive_failures=1)) == "pending_retries"
    assert health(_facts(consecutive_failures=4, last_error_code="git_unreachable")) == "failed"
    assert health(_facts(last_error_code="git_sync_failed")) == "failed"
    assert health(_facts(last_error_code="recovery_failed")) == "failed"
    assert snapshot(_facts(local=A), 1)["health"] == "healthy"
