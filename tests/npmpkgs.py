"""Real, loadable Node-RED node packages as npm tarballs, built in Python.

:func:`make_node_package` writes ``<dest>/<scope->name-version.tgz`` (the file
name ``npm pack`` would use) with the ``package/`` prefix. The tarball is
byte-for-byte deterministic (fixed mtime, uid/gid 0, sorted entries, gzip
mtime 0), so its sha1/sha512 are stable across runs and machines.

Every node type ``T`` echoes: on input it sends
``msg.payload = {"from": T, "payload": <old payload>}``.

The fixed set from :func:`standard_packages` (shared by the tests; publish it to
``tests.servers.npmreg.NpmRegistry``):

=================================  ============  ==============================  ==========================================
package                            versions      types                           purpose
=================================  ============  ==============================  ==========================================
node-red-contrib-fg-alpha          1.0.0, 1.1.0  fg-alpha                        install / upgrade; ``latest`` = 1.1.0
                                   2.0.0-beta.1  fg-alpha                        a prerelease: never ``latest``
node-red-contrib-fg-beta           2.0.0         fg-beta-in, fg-beta-out         one set with two types
node-red-contrib-fg-gamma          0.3.0         fg-gamma                        a 0.x version (``~0.3.0``)
@fg-test/node-red-delta            1.0.0         fg-delta                        scoped name (``/@fg-test%2fnode-red-delta``)
node-red-contrib-fg-shared-a       1.0.0         fg-shared                       two packages claiming one type
node-red-contrib-fg-shared-b       1.0.0         fg-shared                       (ambiguous type -> module mapping)
node-red-contrib-fg-epsilon        1.0.0         fg-epsilon                      depends on ``fg-lib-util@^1.0.0``
fg-lib-util                        1.0.0         (none: a plain library)         the dependency above; not a Node-RED module
node-red-contrib-fg-broken         1.0.0         fg-broken                       its .js throws at load time
node-red-contrib-fg-future         1.0.0         fg-future                       needs Node-RED ``>=99.0.0`` (not loaded)
=================================  ============  ==============================  ==========================================

Types are globally unique except ``fg-shared``. None of these exist on the
public registry's side of the tests: the registry is always 127.0.0.1.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "NODE_RED_DEFAULT_PACKAGE_JSON",
    "NODE_RED_INSTALL_ARGS",
    "STANDARD_SET",
    "STANDARD_TYPES",
    "init_user_dir",
    "make_library_package",
    "make_node_package",
    "set_name_for",
    "standard_packages",
    "tarball_name",
]

# 1985-10-26T08:15:00Z, the fixed mtime npm pack itself uses
TAR_MTIME = 499162500

# What Node-RED writes into a fresh userDir (@node-red/registry installer.js).
NODE_RED_DEFAULT_PACKAGE_JSON = {
    "name": "node-red-project",
    "description": "A Node-RED Project",
    "version": "0.0.1",
    "private": True,
}

# The palette manager's npm arguments (NODE-RED.md §3), followed by "--" and the spec.
NODE_RED_INSTALL_ARGS = ["install", "--no-audit", "--no-update-notifier", "--no-fund", "--save",
                         "--save-prefix=~", "--omit=dev", "--engine-strict"]

_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$")


def tarball_name(name: str, version: str) -> str:
    """The file name ``npm pack`` gives: ``@scope/pkg`` -> ``scope-pkg-1.0.0.tgz``."""
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def set_name_for(name: str) -> str:
    """Default node-set name: the package name without scope and ``node-red-contrib-``-style prefix."""
    short = name.rsplit("/", 1)[-1]
    for prefix in ("node-red-contrib-", "node-red-node-", "node-red-"):
        if short.startswith(prefix) and len(short) > len(prefix):
            return short[len(prefix):]
    return short


def init_user_dir(user_dir: str | Path) -> Path:
    """Create a Node-RED userDir holding only Node-RED's default package.json."""
    d = Path(user_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "package.json").write_text(json.dumps(NODE_RED_DEFAULT_PACKAGE_JSON, indent=4) + "\n")
    return d


def _js(types: list[str], broken: bool) -> str:
    lines = ["module.exports = function (RED) {", '    "use strict";']
    if broken:
        # thrown while Node-RED loads the set: the module shows up with an error, no types registered
        lines.insert(0, 'throw new Error("fg-test: this package is broken on purpose");')
    for t in types:
        tj = json.dumps(t)
        lines += [
            f"    RED.nodes.registerType({tj}, function (config) {{",
            "        RED.nodes.createNode(this, config);",
            "        const node = this;",
            "        node.on('input', (msg, send, done) => {",
            f"            msg.payload = {{from: {tj}, payload: msg.payload}};",
            "            send(msg);",
            "            done();",
            "        });",
            "    });",
        ]
    lines.append("};")
    return "\n".join(lines) + "\n"


def _html(types: list[str]) -> str:
    out = []
    for t in types:
        tj = json.dumps(t).replace("</", "<\\/")
        out.append(
            '<script type="text/javascript">\n'
            f"    RED.nodes.registerType({tj}, {{\n"
            "        category: 'function',\n"
            "        color: '#a6bbcf',\n"
            "        defaults: {name: {value: ''}},\n"
            "        inputs: 1,\n"
            "        outputs: 1,\n"
            f"        label: function () {{ return this.name || {tj}; }}\n"
            "    });\n"
            "</script>\n\n"
            f'<script type="text/html" data-template-name="{t}">\n'
            '    <div class="form-row">\n'
            '        <label for="node-input-name"><i class="fa fa-tag"></i> Name</label>\n'
            '        <input type="text" id="node-input-name" placeholder="Name">\n'
            "    </div>\n"
            "</script>\n\n"
            f'<script type="text/html" data-help-name="{t}">\n'
            f"    <p>Test node <code>{t}</code>: sends <code>{{from: \"{t}\", payload}}</code>.</p>\n"
            "</script>\n"
        )
    return "\n".join(out)


def _write_tgz(path: Path, files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for rel in sorted(files):
            data = files[rel]
            info = tarfile.TarInfo("package/" + rel)
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(raw.getvalue())
    tmp.replace(path)


def make_node_package(dest_dir: str | Path, name: str, version: str, types: list[str], *,
                      dependencies: dict[str, str] | None = None, node_red_engine: str | None = None,
                      broken: bool = False, sets: dict[str, list[str]] | None = None,
                      description: str | None = None) -> Path:
    """Write a Node-RED node package tarball into ``dest_dir`` and return its path.

    By default one node set (named by :func:`set_name_for`) registers all
    ``types``; ``sets`` = ``{set_name: [types]}`` makes several (``types`` is
    then ignored). ``node_red_engine`` replaces the ``node-red.version``
    range (default ``>=3.0.0``). ``broken=True`` makes every set's .js throw
    when Node-RED loads it.
    """
    if sets is None:
        sets = {set_name_for(name): list(types)}
    if not sets or not all(sets.values()):
        raise ValueError("a node package needs at least one type per set")
    for t in (t for ts in sets.values() for t in ts):
        if not _TYPE_RE.match(t):
            raise ValueError(f"bad node type {t!r}")
    pkg: dict = {
        "name": name,
        "version": version,
        "description": description or f"flow-gitops test nodes: {', '.join(t for ts in sets.values() for t in ts)}",
        "keywords": ["node-red"],
        "license": "Apache-2.0",
        "node-red": {
            "version": node_red_engine or ">=3.0.0",
            "nodes": {s: f"{s}.js" for s in sets},
        },
    }
    if dependencies:
        pkg["dependencies"] = dict(dependencies)
    files = {"package.json": (json.dumps(pkg, indent=2) + "\n").encode()}
    for s, ts in sets.items():
        files[f"{s}.js"] = _js(ts, broken).encode()
        files[f"{s}.html"] = _html(ts).encode()
    files["README.md"] = f"# {name}\n\nGenerated by tests/npmpkgs.py for flow-gitops tests.\n".encode()
    out = Path(dest_dir) / tarball_name(name, version)
    _write_tgz(out, files)
    return out


def make_library_package(dest_dir: str | Path, name: str, version: str, *,
                         dependencies: dict[str, str] | None = None) -> Path:
    """A plain (non-Node-RED) library: ``module.exports = {name, version, tag(x)}``."""
    pkg: dict = {"name": name, "version": version, "description": "flow-gitops test library",
                 "license": "Apache-2.0", "main": "index.js"}
    if dependencies:
        pkg["dependencies"] = dict(dependencies)
    files = {
        "package.json": (json.dumps(pkg, indent=2) + "\n").encode(),
        "index.js": (f"module.exports = {{name: {json.dumps(name)}, version: {json.dumps(version)}, "
                     "tag: (x) => ({lib: module.exports.name, value: x})};\n").encode(),
    }
    out = Path(dest_dir) / tarball_name(name, version)
    _write_tgz(out, files)
    return out


# (name, version, types, options) -- see the table in the module docstring
STANDARD_SET: list[tuple[str, str, list[str], dict]] = [
    ("node-red-contrib-fg-alpha", "1.0.0", ["fg-alpha"], {}),
    ("node-red-contrib-fg-alpha", "1.1.0", ["fg-alpha"], {}),
    ("node-red-contrib-fg-alpha", "2.0.0-beta.1", ["fg-alpha"], {}),
    ("node-red-contrib-fg-beta", "2.0.0", ["fg-beta-in", "fg-beta-out"], {}),
    ("node-red-contrib-fg-gamma", "0.3.0", ["fg-gamma"], {}),
    ("@fg-test/node-red-delta", "1.0.0", ["fg-delta"], {}),
    ("node-red-contrib-fg-shared-a", "1.0.0", ["fg-shared"], {}),
    ("node-red-contrib-fg-shared-b", "1.0.0", ["fg-shared"], {}),
    ("node-red-contrib-fg-epsilon", "1.0.0", ["fg-epsilon"], {"dependencies": {"fg-lib-util": "^1.0.0"}}),
    ("node-red-contrib-fg-broken", "1.0.0", ["fg-broken"], {"broken": True}),
    ("node-red-contrib-fg-future", "1.0.0", ["fg-future"], {"node_red_engine": ">=99.0.0"}),
]

# type -> modules claiming it (for type -> module mapping tests)
STANDARD_TYPES: dict[str, list[str]] = {}
for _n, _v, _ts, _o in STANDARD_SET:
    for _t in _ts:
        if _n not in STANDARD_TYPES.setdefault(_t, []):
            STANDARD_TYPES[_t].append(_n)


def standard_packages(dest_dir: str | Path) -> list[Path]:
    """Build the fixed set documented above into ``dest_dir``; returns the tarball paths."""
    out = [make_node_package(dest_dir, n, v, ts, **o) for n, v, ts, o in STANDARD_SET]
    out.append(make_library_package(dest_dir, "fg-lib-util", "1.0.0"))
    return out


def iter_files(tgz: str | Path) -> Iterable[str]:
    """Member names of a tarball (for assertions)."""
    with tarfile.open(tgz, "r:gz") as tf:
        return [m.name for m in tf.getmembers()]
