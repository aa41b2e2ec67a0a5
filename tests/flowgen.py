"""Realistic Node-RED flows for tests and benchmarks.

Each tab holds inject → function → debug chains. Every function node counts its
own starts in global context (`starts_<id>`), so a test can tell which nodes a
deploy restarted. The set also has a subflow and a global config node.
"""
from __future__ import annotations

import json


def _counter(node_id: str) -> str:
    key = f"starts_{node_id}"
    return f"global.set('{key}', (global.get('{key}') || 0) + 1);"


def tab(tab_id: str, label: str, chains: int = 1, code: str = "return msg;") -> list[dict]:
    nodes: list[dict] = [{"id": tab_id, "type": "tab", "label": label, "disabled": False, "info": ""}]
    for i in range(chains):
        inj, fn, dbg = f"{tab_id}i{i}", f"{tab_id}f{i}", f"{tab_id}d{i}"
        nodes += [
            {"id": inj, "type": "inject", "z": tab_id, "name": f"tick {i}", "props": [{"p": "payload"}], "repeat": "",
             "once": False, "topic": "", "payload": "", "payloadType": "date", "x": 120, "y": 60 + 60 * i, "wires": [[fn]]},
            {"id": fn, "type": "function", "z": tab_id, "name": f"work {i}", "func": code, "outputs": 1,
             "initialize": _counter(fn), "finalize": "", "libs": [], "x": 300, "y": 60 + 60 * i, "wires": [[dbg]]},
            {"id": dbg, "type": "debug", "z": tab_id, "name": f"out {i}", "active": False, "tosidebar": True,
             "complete": "false", "x": 480, "y": 60 + 60 * i, "wires": []},
        ]
    return nodes


def subflow(sf_id: str = "sf1", name: str = "Double it") -> list[dict]:
    return [
        {"id": sf_id, "type": "subflow", "name": name, "info": "", "category": "", "in": [{"x": 40, "y": 40, "wires": [{"id": f"{sf_id}f"}]}],
         "out": [{"x": 300, "y": 40, "wires": [{"id": f"{sf_id}f", "port": 0}]}], "env": [], "color": "#DDAA99"},
        {"id": f"{sf_id}f", "type": "function", "z": sf_id, "name": "double", "func": "msg.payload = msg.payload * 2;\nreturn msg;",
         "outputs": 1, "initialize": "", "finalize": "", "libs": [], "x": 160, "y": 40, "wires": [[]]},
    ]


def config_node(node_id: str = "cfg1") -> dict:
    # A global-config node: core type, present in every Node-RED.
    return {"id": node_id, "type": "global-config", "env": [{"name": "REGION", "value": "eu", "type": "str"}], "modules": {}}


def example(tabs: int = 3, chains: int = 1, variant: str = "") -> list[dict]:
    """A small realistic set: `tabs` tabs, a subflow used on the first tab, a config node."""
    nodes: list[dict] = []
    for t in range(tabs):
        code = f"// {variant}\nreturn msg;" if variant and t == 0 else "return msg;"
        nodes += tab(f"t{t}", f"Flow {t}", chains, code)
    nodes += subflow()
    nodes.append({"id": "t0sf", "type": "subflow:sf1", "z": "t0", "name": "", "x": 300, "y": 400, "wires": [[]]})
    nodes.append(config_node())
    return nodes


def sized(nodes_total: int, tabs: int = 20, variant: str = "") -> list[dict]:
    """About `nodes_total` nodes in `tabs` tabs; `variant` changes only the first tab."""
    chains = max(1, round(nodes_total / tabs / 3))
    out: list[dict] = []
    for t in range(tabs):
        code = f"// {variant}\nreturn msg;" if variant and t == 0 else "return msg;"
        out += tab(f"t{t}", f"Flow {t}", chains, code)
    return out


def dumps(nodes: list[dict]) -> str:
    return json.dumps(nodes, indent=2)
