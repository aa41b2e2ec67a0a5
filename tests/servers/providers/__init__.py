"""Loopback fakes of the hosted providers' pull/merge request APIs (PROVIDERS.md §4–§6).

Each fake is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) that *checks*
every request against the provider's documented shape: the route (GitLab's on the
raw, still-encoded path), the auth scheme, the documented Accept/version headers,
the JSON content type and the required fields with their types. A request that is
off gets the provider's error shape and a line in ``.errors`` (tests assert it
stays empty); a wrong token, an unknown repository, a duplicate or a spent rate
limit get the documented answer *without* a violation, as they are what tests
provoke::

    with FakeGitHub(token="tok") as gh:
        gh.add_repo("acme/flows", {"main": SHA1, "promote/x": SHA2})
        client = client_for("https://github.com/acme/flows", lambda: "tok", api_base=gh.api_root)
        pr = client.open_pull_request("main", "promote/x", "t", "b")
        gh.merge(pr.number, SHA3)
        gh.rate_limit_remaining = 0          # next request: the documented limit answer
        assert gh.errors == []

State: ``.repos[path].branches`` (name → SHA), ``.repos[path].pulls`` (number →
record; ``open_from_fork`` adds one from someone's fork). ``.requests`` logs every
request; ``.delay`` stalls answers; ``.fault_status`` answers every request with that
status and ``.fault_message`` in the provider's error shape; ``fail_next(handler,
status, after=)`` fails one request of one route (``status=0``: the connection is cut
with no answer; ``after=True``: the request takes effect and its answer is lost);
``down()`` / ``up()`` stop and resume listening on the same port (connection refused
in between). Choices PROVIDERS.md leaves unconfirmed are marked "assumed".

Besides create and get, each fake serves its provider's list call with the documented
query parameters (anything else is a violation): GitHub ``GET …/pulls?state=&head=
owner:branch&base=`` (a bare ``head`` is flagged: GitHub would silently ignore it),
GitLab ``GET …/merge_requests?state=opened&source_branch=&target_branch=``, Bitbucket
``GET …/pullrequests?q=<BBQL>`` (``field = "value"`` clauses joined by ``AND``; paged
with ``next``), Gitea ``GET …/pulls?state=&page=&limit=`` (no branch filter; ``limit``
capped at 50).

Modules: ``base`` (server, checks, faults, state), ``github``, ``gitlab``,
``bitbucket``, ``gitea``.
"""
from __future__ import annotations

from .base import Reply, Repo, Seen, check_fields
from .bitbucket import FakeBitbucket
from .gitea import FakeGitea
from .github import FakeGitHub
from .gitlab import FakeGitLab

__all__ = ["FakeBitbucket", "FakeGitHub", "FakeGitLab", "FakeGitea", "Reply", "Repo", "Seen", "check_fields"]
