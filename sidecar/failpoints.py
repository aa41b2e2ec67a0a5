"""Failpoints: named spots where a test can freeze the sidecar. A TEST-ONLY hook.

The idea is the one of etcd's gofail and TiKV's fail-rs: the code says
`failpoint("deploy")` at a spot worth breaking, and a test arms that name from
outside. Here the only action is `pause`: the process writes a marker file named
after the failpoint, then sleeps forever, so a crash test can wait for the marker
and `kill -9` the process at exactly that spot (tests/test_crash.py).

Arming happens once, when this module is imported, from the environment:

    FLOW_GITOPS_FAILPOINTS=deploy:pause          one failpoint
    FLOW_GITOPS_FAILPOINTS=plan:pause,confirm    a comma list (the action defaults to pause)
    FLOW_GITOPS_FAILPOINT_DIR=/some/dir          where the marker `<name>` is written

Unset (always, outside tests), `failpoint(name)` costs one lookup in an empty dict
and does nothing. A malformed value fails the import loudly, so a typo never lets a
crash test pass without having crashed anything.

Failpoints in the sidecar: the start of each engine phase (fetch, plan, recover,
deploy, record, push — the phase is already recorded on the job), `install` (a
module installed by npm, not yet loaded into Node-RED), `confirm` (Node-RED answered
POST /flows, the comms websocket has not confirmed the start yet) and `recorded`
(the job and the applied commit were committed).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ENV, DIR_ENV = "FLOW_GITOPS_FAILPOINTS", "FLOW_GITOPS_FAILPOINT_DIR"
ACTIONS = ("pause",)


def parse(spec: str) -> dict[str, str]:
    """`name[:action],…` → {name: action}."""
    armed: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, action = item.partition(":")
        name, action = name.strip(), (action.strip() or "pause")
        if not name or action not in ACTIONS:
            raise ValueError(f"{ENV}: cannot use {item!r} (expected name[:{'|'.join(ACTIONS)}])")
        armed[name] = action
    return armed


_armed: dict[str, str] = parse(os.environ.get(ENV, ""))
_dir: str = os.environ.get(DIR_ENV, "")


def failpoint(name: str) -> None:
    """Does nothing unless `name` was armed through the environment at import."""
    if name not in _armed:
        return
    _pause(name)


def _pause(name: str) -> None:
    if _dir:
        marker = Path(_dir, name)
        tmp = marker.with_name(f".{name}.{os.getpid()}")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, marker)  # appears whole: the test may kill us as soon as it sees it
    print(f"failpoint {name}: paused (pid {os.getpid()})", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
