"""Bad input, generated (issue #9): parsers and planners never crash on arbitrary input —
they answer with our own error naming the problem, or nothing — and forged signatures
never verify."""
from __future__ import annotations

import pytest

import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sidecar.core import flows as flowlib
from sidecar.core import webhooks as wh
from sidecar.core.catalog import Catalog
from sidecar.core.deps import plan_dependencies
from sidecar.core.errors import SyncError

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
header_names = st.sampled_from(["X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event", "X-Event-Key", "X-Hook-UUID",
                                "X-Hub-Signature-256", "X-Hub-Signature", "X-Gitlab-Token", "X-Gitea-Signature",
                                "Content-Type", "X-GitHub-Delivery", "Idempotency-Key"])
headers = st.dictionaries(header_names, st.text(max_size=40), max_size=6)
secrets_ = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=30)
bodies = st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(PROVIDERS), h=headers, body=bodies, secret=secrets_)
@pytest.mark.matrix('inputs', 'webhook deliveries (hypothesis: any headers and bodies, four providers)', '',
                    expect='no crash; a forged signature never verifies')
def test_webhook_parsing_never_crashes_and_forgeries_never_verify(provider, h, body, secret):
    assume(h.get("X-Gitlab-Token", "").strip() != secret)  # GitLab's token is the secret itself
    # a signature we did not make with this secret never verifies
    assert wh.verify(provider, h, body, secret) is False
    assert wh.verify(provider, h, body, "") is False
    wh.detect_provider(h)
    wh.delivery_id(provider, h, body)
    wh.event_kind(provider, h, body)
    for parse in (wh.parse_pushes, wh.parse_merge):
        try:
            parse(provider, h, body)
        except wh.PayloadError as exc:
            assert str(exc)  # an error that names the problem


@settings(max_examples=200, deadline=None)
@given(provider=st.sampled_from(PROVIDERS), payload=json_values, secret=secrets_)
def test_our_own_signature_round_trips_for_every_provider(provider, payload, secret):
    body = json.dumps(payload).encode()
    assert wh.verify(provider, wh.sign(provider, body, secret), body, secret) is True
    assert wh.verify(provider, wh.sign(provider, body, secret + "x"), body, secret) is False


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), json_values.map(lambda v: json.dumps(v).encode())))
@pytest.mark.matrix('inputs', 'flows files (hypothesis: any JSON shape)', '',
                    expect='accepted, or refused with a message naming the problem')
def test_flows_files_are_accepted_or_refused_with_a_reason(data):
    try:
        nodes = flowlib.parse_flows(data, "flows.json")
    except SyncError as err:
        assert err.code in ("flows_invalid", "file_too_large") and err.message.startswith("flows.json")
        return
    plan = flowlib.make_plan([], nodes, set())
    assert plan.node_count == len(nodes)


@settings(max_examples=200, deadline=None)
@given(deps=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=20), max_size=6),
       installed=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=12), max_size=6),
       missing=st.lists(st.text(min_size=1, max_size=15), max_size=5))
@pytest.mark.matrix('inputs', 'package.json dependencies (hypothesis: any names and specs)', '',
                    expect='planned or reported as unsupported; no crash')
def test_package_json_dependencies_of_any_shape_plan_without_crashing(deps, installed, missing):
    out = plan_dependencies(deps, installed, set(), missing, Catalog())
    assert set(out.unresolved_types) <= set(missing)
    for i in out.installs:
        assert i.module in deps
