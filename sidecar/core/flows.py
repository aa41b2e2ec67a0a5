"""Flows: parse and check a flows file, group nodes, and plan what a deploy changes.

A Node-RED flows file is a JSON array of node objects. We group them into the
things a person sees in the editor:

* a **flow** — a `tab` and every node whose `z` is that tab;
* a **subflow** — a `subflow` definition and the nodes inside it;
* a **config node** — a node with no `z` (global configuration such as an MQTT broker).

Plans compare groups by content, so a change anywhere inside a tab marks that one
flow as changed and leaves the other flows alone.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import FILE_TOO_LARGE, FLOWS_INVALID, SyncError

# Node types Node-RED provides itself and never reports as missing (NODE-RED.md §2).
ALWAYS_PRESENT_TYPES = frozenset({"tab", "subflow", "group", "junction", "global-config"})

DEFAULT_MAX_FLOWS_BYTES = 16 * 1024 * 1024


def canonical_json(value: Any) -> str:
    """A stable JSON text for hashing and comparing (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def parse_flows(data: bytes, source: str = "flows file", max_bytes: int = DEFAULT_MAX_FLOWS_BYTES) -> list[dict]:
    """Parse and check a flows file; raise `SyncError(flows_invalid)` naming the problem."""
    if len(data) > max_bytes:
        raise SyncError(FILE_TOO_LARGE, f"{source} is {len(data)} bytes, above the {max_bytes}-byte limit", retryable=False)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SyncError(FLOWS_INVALID, f"{source} is not UTF-8 text (byte {exc.start})", retryable=False) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SyncError(FLOWS_INVALID, f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", retryable=False) from None
    if isinstance(value, dict) and isinstance(value.get("flows"), list):
        value = value["flows"]  # the Admin API v2 shape {"flows": [...], "rev": ...}
    if not isinstance(value, list):
        raise SyncError(FLOWS_INVALID, f"{source} must be a JSON array of nodes, found {type(value).__name__}", retryable=False)
    check_flows(value, source)
    return value


def check_flows(nodes: list, source: str = "flows") -> None:
    """Structural checks Node-RED itself would trip over later, reported up front."""
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise SyncError(FLOWS_INVALID, f"{source}: item {index} is not an object", retryable=False)
        node_id, node_type = node.get("id"), node.get("type")
        if not isinstance(node_id, str) or not node_id:
            raise SyncError(FLOWS_INVALID, f"{source}: item {index} has no string 'id'", retryable=False)
        if not isinstance(node_type, str) or not node_type:
            raise SyncError(FLOWS_INVALID, f"{source}: node {node_id!r} has no string 'type'", retryable=False)
        if node_id in seen:
            raise SyncError(FLOWS_INVALID, f"{source}: node id {node_id!r} appears more than once", retryable=False)
        seen.add(node_id)
    containers = {n["id"] for n in nodes if n["type"] in ("tab", "subflow")}
    for node in nodes:
        z = node.get("z")
        if z not in (None, "") and z not in containers:
            raise SyncError(FLOWS_INVALID, f"{source}: node {node['id']!r} ({node['type']}) belongs to flow {z!r}, which is not in the file", retryable=False)


@dataclass(frozen=True)
class Group:
    """One flow, subflow or config node with its content hash."""

    kind: str  # "flow" | "subflow" | "config"
    id: str
    label: str
    node_count: int
    content: str  # sha256 of the canonical content


def _comparable(node: dict) -> dict:
    # GET /flows never returns credentials, so they cannot take part in comparisons.
    if "credentials" in node:
        node = {k: v for k, v in node.items() if k != "credentials"}
    return node


def group_flows(nodes: Iterable[dict]) -> dict[str, Group]:
    """Group nodes into flows, subflows and config nodes, keyed by `kind:id`."""
    nodes = list(nodes)
    heads: dict[str, dict] = {}
    members: dict[str, list[dict]] = {}
    for node in nodes:
        if node.get("type") in ("tab", "subflow"):
            heads[node["id"]] = node
            members.setdefault(node["id"], [])
    loose: list[dict] = []
    for node in nodes:
        if node.get("type") in ("tab", "subflow"):
            continue
        z = node.get("z")
        if z and z in heads:
            members[z].append(node)
        else:
            loose.append(node)
    groups: dict[str, Group] = {}
    for cid, head in heads.items():
        kind = "flow" if head["type"] == "tab" else "subflow"
        body = sorted((_comparable(n) for n in members[cid]), key=lambda n: n["id"])
        label = head.get("label") or head.get("name") or cid
        groups[f"{kind}:{cid}"] = Group(kind, cid, str(label), len(body) + 1, digest([_comparable(head), body]))
    for node in loose:
        label = node.get("name") or node.get("label") or node["type"]
        groups[f"config:{node['id']}"] = Group("config", node["id"], f"{label} ({node['type']})", 1, digest(_comparable(node)))
    return groups


def types_needed(nodes: Iterable[dict]) -> set[str]:
    """Node types the flows use that a Node-RED install must provide."""
    nodes = list(nodes)
    subflows = {n["id"] for n in nodes if n.get("type") == "subflow"}
    needed = set()
    for node in nodes:
        t = node.get("type")
        if t in ALWAYS_PRESENT_TYPES:
            continue
        if t.startswith("subflow:") and t[len("subflow:"):] in subflows:
            continue
        needed.add(t)
    return needed


@dataclass(frozen=True)
class Change:
    kind: str  # flow | subflow | config
    id: str
    label: str
    action: str  # added | changed | removed

    def to_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "label": self.label, "action": self.action}


@dataclass
class Plan:
    """What deploying `target` over `current` would do. Pure data; `to_dict` for output."""

    changes: list[Change] = field(default_factory=list)
    types_needed: list[str] = field(default_factory=list)
    types_missing: list[str] = field(default_factory=list)
    node_count: int = 0
    target_digest: str = ""

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "changed": 0, "removed": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def summary(self) -> str:
        if not self.changes:
            return "no changes"
        c = self.counts()
        parts = [f"{n} {a}" for a, n in c.items() if n]
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "counts": self.counts(),
            "summary": self.summary(),
            "types_needed": self.types_needed,
            "types_missing": self.types_missing,
            "node_count": self.node_count,
        }


def make_plan(current: list[dict], target: list[dict], installed_types: set[str] | None = None) -> Plan:
    """Diff the Flow App's flows (`current`) against the repository's (`target`)."""
    before, after = group_flows(current), group_flows(target)
    changes: list[Change] = []
    order = {"flow": 0, "subflow": 1, "config": 2}
    for key, g in after.items():
        old = before.get(key)
        if old is None:
            changes.append(Change(g.kind, g.id, g.label, "added"))
        elif old.content != g.content:
            changes.append(Change(g.kind, g.id, g.label, "changed"))
    for key, g in before.items():
        if key not in after:
            changes.append(Change(g.kind, g.id, g.label, "removed"))
    changes.sort(key=lambda c: (order[c.kind], c.label, c.id))
    needed = types_needed(target)
    missing = sorted(needed - installed_types) if installed_types is not None else []
    return Plan(changes, sorted(needed), missing, len(target), flows_digest(target))


def flows_digest(nodes: Iterable[dict]) -> str:
    """Content identity of a whole flow set, independent of node order."""
    return digest(sorted((_comparable(n) for n in nodes), key=lambda n: n.get("id", "")))
