"""Unit tests for flows parsing, grouping and deploy plans (P4)."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.core.errors import FILE_TOO_LARGE, FLOWS_INVALID, SyncError
from sidecar.core.flows import flows_digest, group_flows, make_plan, parse_flows, types_needed


def _raw(value) -> bytes:
    return json.dumps(value).encode()


def _parse_error(data: bytes, **kw) -> SyncError:
    with pytest.raises(SyncError) as ei:
        parse_flows(data, source="flows.json", **kw)
    assert ei.value.retryable is False
    return ei.value


def sample() -> list[dict]:
    return [
        {"id": "t1", "type": "tab", "label": "Ingest"},
        {"id": "t2", "type": "tab", "label": "Report"},
        {"id": "n1", "type": "inject", "z": "t1", "wires": [["n2"]]},
        {"id": "n2", "type": "mqtt out", "z": "t1", "broker": "c1", "wires": []},
        {"id": "n3", "type": "debug", "z": "t2", "wires": []},
        {"id": "n4", "type": "subflow:s1", "z": "t2", "wires": []},
        {"id": "s1", "type": "subflow", "name": "Cleaner", "in": [], "out": []},
        {"id": "s1a", "type": "function", "z": "s1", "func": "return msg;"},
        {"id": "c1", "type": "mqtt-broker", "name": "Broker", "broker": "mqtt.local"},
        {"id": "c2", "type": "global-config", "env": []},
    ]


# --------------------------------------------------------------------------- parse errors


@pytest.mark.matrix('inputs', 'a flows file that is not JSON', '',
                    expect='refused naming line and column')
def test_not_json_names_line_and_column():
    err = _parse_error(b'[\n  {"id": "a",\n   "type": }\n]')
    assert err.code == FLOWS_INVALID
    assert "flows.json" in err.message and "not valid JSON" in err.message
    assert "line 3" in err.message and "column" in err.message


def test_not_utf8_refused():
    err = _parse_error(b'[{"id": "\xff"}]')
    assert err.code == FLOWS_INVALID and "UTF-8" in err.message


@pytest.mark.parametrize("value,found", [({"id": "a"}, "dict"), ("x", "str"), (3, "int"), (None, "NoneType")])
def test_not_an_array(value, found):
    err = _parse_error(_raw(value))
    assert err.code == FLOWS_INVALID and "JSON array" in err.message and found in err.message


def test_admin_api_v2_shape_accepted():
    assert parse_flows(_raw({"flows": sample(), "rev": "abc"})) == sample()


def test_utf8_bom_accepted():
    assert parse_flows(b"\xef\xbb\xbf" + _raw(sample())) == sample()


def test_item_not_object():
    err = _parse_error(_raw([{"id": "a", "type": "tab"}, ["nope"]]))
    assert "item 1 is not an object" in err.message


@pytest.mark.parametrize("node", [{"type": "inject"}, {"id": "", "type": "inject"}, {"id": 5, "type": "inject"}])
def test_missing_id(node):
    err = _parse_error(_raw([node]))
    assert "item 0" in err.message and "'id'" in err.message


@pytest.mark.parametrize("node", [{"id": "a"}, {"id": "a", "type": ""}, {"id": "a", "type": 3}])
def test_missing_type(node):
    err = _parse_error(_raw([node]))
    assert "'a'" in err.message and "'type'" in err.message


@pytest.mark.matrix('inputs', 'a flows file with duplicate node ids', '',
                    expect='refused naming the id')
def test_duplicate_id():
    err = _parse_error(_raw([{"id": "a", "type": "tab"}, {"id": "a", "type": "inject", "z": "a"}]))
    assert "'a'" in err.message and "more than once" in err.message


@pytest.mark.matrix('inputs', 'nodes on a tab that does not exist', '',
                    expect='refused naming the node')
def test_z_pointing_to_missing_tab():
    err = _parse_error(_raw([{"id": "t1", "type": "tab"}, {"id": "n1", "type": "debug", "z": "gone"}]))
    assert "'n1'" in err.message and "'gone'" in err.message and "not in the file" in err.message


@pytest.mark.matrix('inputs', 'a flows file above the size limit', '',
                    expect='refused before parsing')
def test_oversize_refused_before_parsing():
    data = _raw(sample())
    err = _parse_error(data, max_bytes=len(data) - 1)
    assert err.code == FILE_TOO_LARGE
    assert str(len(data)) in err.message and str(len(data) - 1) in err.message
    assert parse_flows(data, max_bytes=len(data)) == sample()


def test_empty_array_is_valid():
    assert parse_flows(b"[]") == []


# --------------------------------------------------------------------------- grouping


def test_grouping_tabs_subflows_and_config_nodes():
    groups = group_flows(sample())
    assert set(groups) == {"flow:t1", "flow:t2", "subflow:s1", "config:c1", "config:c2"}
    assert (groups["flow:t1"].kind, groups["flow:t1"].label, groups["flow:t1"].node_count) == ("flow", "Ingest", 3)
    assert groups["flow:t2"].node_count == 3
    assert (groups["subflow:s1"].label, groups["subflow:s1"].node_count) == ("Cleaner", 2)
    assert groups["config:c1"].label == "Broker (mqtt-broker)"
    assert groups["config:c2"].label == "global-config (global-config)"
    assert groups["config:c1"].node_count == 1


def test_node_with_empty_z_is_config():
    groups = group_flows([{"id": "c", "type": "tls-config", "z": ""}])
    assert list(groups) == ["config:c"]


def test_tab_without_label_uses_id():
    assert group_flows([{"id": "t9", "type": "tab"}])["flow:t9"].label == "t9"


# --------------------------------------------------------------------------- plans


def _actions(plan) -> set[tuple[str, str, str]]:
    return {(c.kind, c.id, c.action) for c in plan.changes}


def test_identical_flows_no_changes():
    plan = make_plan(sample(), sample())
    assert plan.changes == [] and not plan.has_changes
    assert plan.summary() == "no changes"
    assert plan.node_count == len(sample())


def test_added_changed_removed_per_flow():
    current = sample()
    target = copy.deepcopy(current)
    target = [n for n in target if n["id"] not in ("t2", "n3", "n4")]  # remove tab t2
    target.append({"id": "t3", "type": "tab", "label": "New"})
    target.append({"id": "n5", "type": "debug", "z": "t3"})
    for n in target:
        if n["id"] == "c1":
            n["broker"] = "mqtt.prod"
    plan = make_plan(current, target)
    assert _actions(plan) == {("flow", "t2", "removed"), ("flow", "t3", "added"), ("config", "c1", "changed")}
    assert plan.counts() == {"added": 1, "changed": 1, "removed": 1}
    assert plan.summary() == "1 added, 1 changed, 1 removed"
    d = plan.to_dict()
    assert d["counts"] == plan.counts() and len(d["changes"]) == 3
    assert [c["kind"] for c in d["changes"]] == ["flow", "flow", "config"]  # flows, subflows, config


def test_change_in_one_tab_marks_only_that_tab():
    target = sample()
    target[4] = {**target[4], "active": False}  # n3 in t2
    assert _actions(make_plan(sample(), target)) == {("flow", "t2", "changed")}


def test_tab_property_change_marks_that_tab():
    target = sample()
    target[0] = {**target[0], "label": "Ingest v2"}
    plan = make_plan(sample(), target)
    assert _actions(plan) == {("flow", "t1", "changed")}
    assert plan.changes[0].label == "Ingest v2"


def test_moving_node_between_tabs_changes_both():
    target = sample()
    target[4] = {**target[4], "z": "t1"}
    assert _actions(make_plan(sample(), target)) == {("flow", "t1", "changed"), ("flow", "t2", "changed")}


def test_subflow_inner_change_marks_subflow_only():
    target = sample()
    target[7] = {**target[7], "func": "return null;"}
    assert _actions(make_plan(sample(), target)) == {("subflow", "s1", "changed")}


def test_node_order_and_key_order_do_not_matter():
    target = [dict(reversed(list(n.items()))) for n in reversed(sample())]
    assert make_plan(sample(), target).changes == []
    assert flows_digest(sample()) == flows_digest(target)


def test_credentials_ignored_in_comparisons():
    target = sample()
    target[8] = {**target[8], "credentials": {"user": "u", "password": "p"}}
    assert make_plan(sample(), target).changes == []
    assert flows_digest(sample()) == flows_digest(target)
    target[8] = {**target[8], "broker": "other"}
    assert _actions(make_plan(sample(), target)) == {("config", "c1", "changed")}


def test_types_needed_excludes_builtins_and_defined_subflows():
    nodes = sample() + [
        {"id": "g1", "type": "group", "z": "t1"},
        {"id": "j1", "type": "junction", "z": "t1"},
        {"id": "n6", "type": "subflow:undefined99", "z": "t1"},
    ]
    assert types_needed(nodes) == {"inject", "mqtt out", "debug", "function", "mqtt-broker", "subflow:undefined99"}
    plan = make_plan([], nodes)
    assert plan.types_needed == sorted(types_needed(nodes))
    assert plan.types_missing == []  # no installed set given: nothing claimed missing


def test_types_missing_against_installed_set():
    installed = {"inject", "debug", "function", "mqtt out", "mqtt-broker"}
    plan = make_plan([], sample() + [{"id": "x", "type": "ui_button", "z": "t1"}], installed_types=installed)
    assert plan.types_missing == ["ui_button"]
    assert make_plan([], sample(), installed_types=installed).types_missing == []
    assert make_plan([], sample(), installed_types=set()).types_missing == sorted(installed)


def test_plan_against_empty_current_adds_everything():
    plan = make_plan([], sample())
    assert plan.counts() == {"added": 5, "changed": 0, "removed": 0}


# --------------------------------------------------------------------------- property

_ids = st.text(alphabet="abcdef0123456789", min_size=1, max_size=6)
_props = st.dictionaries(
    st.sampled_from(["name", "x", "y", "func", "topic", "active", "wires"]),
    st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.lists(st.lists(_ids, max_size=2), max_size=2)),
    max_size=3,
)


@st.composite
def flow_sets(draw):
    ids = draw(st.lists(_ids, min_size=0, max_size=14, unique=True))
    n_tabs = draw(st.integers(0, min(3, len(ids))))
    n_subs = draw(st.integers(0, min(2, len(ids) - n_tabs)))
    tabs, subs, rest = ids[:n_tabs], ids[n_tabs:n_tabs + n_subs], ids[n_tabs + n_subs:]
    nodes = [{"id": t, "type": "tab", "label": draw(st.text(max_size=4))} for t in tabs]
    nodes += [{"id": s, "type": "subflow", "name": draw(st.text(max_size=4))} for s in subs]
    types = st.sampled_from(["inject", "debug", "function", "mqtt-broker", "group"] + [f"subflow:{s}" for s in subs])
    for nid in rest:
        node = {"id": nid, "type": draw(types), **draw(_props)}
        z = draw(st.sampled_from([None, *tabs, *subs]))
        if z is not None:
            node["z"] = z
        if draw(st.booleans()):
            node["credentials"] = {"password": draw(st.text(max_size=4))}
        nodes.append(node)
    return draw(st.permutations(nodes))


@settings(max_examples=150, deadline=None)
@given(flow_sets(), st.randoms(use_true_random=False))
def test_plan_of_same_or_shuffled_flows_has_no_changes(nodes, rnd):
    assert parse_flows(_raw(nodes)) == nodes
    assert make_plan(nodes, nodes).changes == []
    shuffled = [dict(rnd.sample(list(n.items()), len(n))) for n in nodes]
    rnd.shuffle(shuffled)
    assert make_plan(nodes, shuffled).changes == []
    assert make_plan(shuffled, nodes).changes == []
    stripped = [{k: v for k, v in n.items() if k != "credentials"} for n in shuffled]
    assert make_plan(nodes, stripped).changes == []


@settings(max_examples=100, deadline=None)
@given(flow_sets())
def test_plan_from_empty_adds_every_group_and_back_removes_them(nodes):
    groups = group_flows(nodes)
    added = make_plan([], nodes)
    assert {(c.kind, c.id) for c in added.changes} == {(g.kind, g.id) for g in groups.values()}
    assert all(c.action == "added" for c in added.changes)
    removed = make_plan(nodes, [])
    assert all(c.action == "removed" for c in removed.changes) and len(removed.changes) == len(groups)
