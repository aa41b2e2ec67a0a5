"""The private npm registry (tests/servers/npmreg.py) and the test node packages
(tests/npmpkgs.py), driven by a real npm exactly as Node-RED's palette manager
runs it, and one end-to-end check with a real Node-RED loading an installed node.

Everything talks to 127.0.0.1 only; npm runs with a hermetic config (no
~/.npmrc, no global npmrc, a private cache) and ``--fetch-retries=0``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.npmpkgs import NODE_RED_INSTALL_ARGS, STANDARD_TYPES, init_user_dir, make_node_package, standard_packages
from tests.servers.nodered import NodeRedServer
from tests.servers.npmreg import NpmRegistry, semver_key

ALPHA = "node-red-contrib-fg-alpha"
DELTA = "@fg-test/node-red-delta"


def npm_command() -> list[str]:
    """System npm 11 (FLOW_GITOPS_NPM may name another npm, e.g. Node-RED's bundled npm-cli.js)."""
    override = os.environ.get("FLOW_GITOPS_NPM")
    if override:
        return override.split()
    npm = shutil.which("npm")
    assert npm, "npm is not on PATH: run scripts/setup"
    return [npm]


def palette_install(cwd: Path, env: dict, *specs: str, extra: list[str] = (), timeout: float = 60):
    """What the palette manager runs: npm install ... --engine-strict -- <spec>."""
    cmd = npm_command() + NODE_RED_INSTALL_ARGS + ["--fetch-retries=0", *extra, "--", *specs]
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, check=False)
    return r, time.monotonic() - t0


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> list[Path]:
    return standard_packages(tmp_path_factory.mktemp("npm-packages"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, packages):
    with NpmRegistry(tmp_path_factory.mktemp("npm-registry")) as reg:
        reg.publish_all(packages)
        yield reg


@pytest.fixture
def reg(registry) -> NpmRegistry:
    registry.fault = None
    registry.requests.clear()
    yield registry
    registry.fault = None


@pytest.fixture
def npm_env(reg, tmp_path) -> dict:
    return reg.npm_env(tmp_path / "npm")


def _get(url: str, accept: str = "application/json"):
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- the registry on its own ---------------------------------------------------

def test_semver_precedence():
    order = ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "10.0.0"]
    shuffled = order[5:] + order[:5][::-1]
    assert sorted(shuffled, key=semver_key) == order


def test_packages_are_deterministic(tmp_path, packages):
    again = standard_packages(tmp_path)
    assert [p.name for p in again] == [p.name for p in packages]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in packages]
    with tarfile.open(packages[0], "r:gz") as tf:
        names = sorted(m.name for m in tf.getmembers())
        pkg = json.loads(tf.extractfile("package/package.json").read())
    assert names == ["package/README.md", "package/fg-alpha.html", "package/fg-alpha.js", "package/package.json"]
    assert pkg["keywords"] == ["node-red"]
    assert pkg["node-red"] == {"version": ">=3.0.0", "nodes": {"fg-alpha": "fg-alpha.js"}}
    assert STANDARD_TYPES["fg-shared"] == ["node-red-contrib-fg-shared-a", "node-red-contrib-fg-shared-b"]


def test_registry_http_surface(reg, packages):
    assert _get(reg.url + "-/ping") == (200, b"{}")

    status, body = _get(reg.url + ALPHA, accept="application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
    assert status == 200
    doc = json.loads(body)
    assert doc["name"] == ALPHA
    assert set(doc["versions"]) == {"1.0.0", "1.1.0", "2.0.0-beta.1"}
    assert doc["dist-tags"] == {"latest": "1.1.0"}           # the prerelease never becomes latest
    dist = doc["versions"]["1.0.0"]["dist"]
    assert dist["tarball"] == reg.url + f"{ALPHA}/-/{ALPHA}-1.0.0.tgz"
    tgz = next(p for p in packages if p.name == f"{ALPHA}-1.0.0.tgz").read_bytes()
    assert dist["shasum"] == hashlib.sha1(tgz).hexdigest()
    assert dist["integrity"] == "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    assert _get(dist["tarball"]) == (200, tgz)

    # scoped: npm asks for /@scope%2fname; /@scope/name works too; tarball under /@scope/name/-/
    s1, b1 = _get(reg.url + "@fg-test%2fnode-red-delta")
    s2, b2 = _get(reg.url + "@fg-test/node-red-delta")
    assert s1 == s2 == 200 and b1 == b2
    scoped = json.loads(b1)
    assert scoped["dist-tags"]["latest"] == "1.0.0"
    assert _get(scoped["versions"]["1.0.0"]["dist"]["tarball"])[0] == 200

    assert _get(reg.url + ALPHA + "/latest")[0] == 200
    assert json.loads(_get(reg.url + ALPHA + "/latest")[1])["version"] == "1.1.0"
    assert _get(reg.url + "no-such-package") == (404, b'{"error":"Not found"}')
    assert _get(reg.url + f"{ALPHA}/-/{ALPHA}-9.9.9.tgz")[0] == 404

    assert reg.requests.count("GET", "/-/ping") == 1
    assert ("GET", "/@fg-test%2fnode-red-delta") in reg.requests


def test_registry_faults(reg):
    reg.fault = {"status": 500}
    assert _get(reg.url + ALPHA)[0] == 500
    reg.fault = {"status": 503, "paths": ".tgz"}
    assert _get(reg.url + ALPHA)[0] == 200
    assert _get(reg.url + f"{ALPHA}/-/{ALPHA}-1.0.0.tgz")[0] == 503
    reg.fault = {"delay": 0.3}
    t0 = time.monotonic()
    assert _get(reg.url + "-/ping")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    reg.fault = "down"
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(reg.url + ALPHA)
    reg.fault = None
    assert _get(reg.url + "-/ping")[0] == 200


def test_publish_rules(tmp_path):
    with NpmRegistry(tmp_path / "store") as reg:
        a1 = make_node_package(tmp_path / "a", "node-red-contrib-fg-x", "1.0.0", ["fg-x"])
        reg.publish(a1)
        reg.publish(a1)                                      # identical bytes: no-op
        other = make_node_package(tmp_path / "b", "node-red-contrib-fg-x", "1.0.0", ["fg-x", "fg-y"])
        with pytest.raises(ValueError):
            reg.publish(other)                               # same version, other content
        reg.publish(make_node_package(tmp_path / "a", "node-red-contrib-fg-x", "1.10.0", ["fg-x"]))
        reg.publish(make_node_package(tmp_path / "a", "node-red-contrib-fg-x", "1.9.0", ["fg-x"]))
        reg.publish(make_node_package(tmp_path / "a", "node-red-contrib-fg-x", "3.0.0-rc.1", ["fg-x"]), tag="next")
        doc = reg.packument("node-red-contrib-fg-x")
        assert doc["dist-tags"] == {"latest": "1.10.0", "next": "3.0.0-rc.1"}
        assert reg.versions("node-red-contrib-fg-x") == ["1.0.0", "1.9.0", "1.10.0", "3.0.0-rc.1"]


# --- npm as Node-RED's palette manager runs it ---------------------------------

def test_palette_install_plain_and_scoped(reg, npm_env, tmp_path):
    user_dir = init_user_dir(tmp_path / "userdir")
    r, took = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0")
    assert r.returncode == 0, r.stderr
    r2, took2 = palette_install(user_dir, npm_env, f"{DELTA}@1.0.0")
    assert r2.returncode == 0, r2.stderr
    print(f"npm install {ALPHA}: {took:.2f}s, {DELTA}: {took2:.2f}s")

    pkg = json.loads((user_dir / "package.json").read_text())
    assert pkg["name"] == "node-red-project" and pkg["private"] is True
    assert pkg["dependencies"] == {ALPHA: "~1.0.0", DELTA: "~1.0.0"}
    mod = user_dir / "node_modules" / ALPHA
    assert sorted(p.name for p in mod.iterdir()) == ["README.md", "fg-alpha.html", "fg-alpha.js", "package.json"]
    assert json.loads((mod / "package.json").read_text())["version"] == "1.0.0"
    assert (user_dir / "node_modules" / "@fg-test" / "node-red-delta" / "delta.js").is_file()
    lock = json.loads((user_dir / "package-lock.json").read_text())
    entry = lock["packages"][f"node_modules/{ALPHA}"]
    assert entry["resolved"].startswith(reg.url) and entry["integrity"].startswith("sha512-")

    paths = reg.requests.paths()
    assert f"/{ALPHA}" in paths                                        # packument
    assert f"/{ALPHA}/-/{ALPHA}-1.0.0.tgz" in paths                    # tarball
    assert "/@fg-test/node-red-delta" in paths                         # scoped packument (sent %2f-encoded)
    assert ("GET", "/@fg-test%2fnode-red-delta") in reg.requests
    assert "/@fg-test/node-red-delta/-/node-red-delta-1.0.0.tgz" in paths
    assert took < 10 and took2 < 10


def test_dependency_and_latest(reg, npm_env, tmp_path):
    """No version: latest (1.1.0, not the prerelease); dependencies come from the registry too."""
    user_dir = init_user_dir(tmp_path / "userdir")
    r, _ = palette_install(user_dir, npm_env, ALPHA, "node-red-contrib-fg-epsilon")
    assert r.returncode == 0, r.stderr
    deps = json.loads((user_dir / "package.json").read_text())["dependencies"]
    assert deps == {ALPHA: "~1.1.0", "node-red-contrib-fg-epsilon": "~1.0.0"}
    assert (user_dir / "node_modules" / "fg-lib-util" / "index.js").is_file()
    assert reg.requests.count("GET", "/fg-lib-util/-/fg-lib-util-1.0.0.tgz") == 1


def test_unknown_package_is_e404(reg, npm_env, tmp_path):
    user_dir = init_user_dir(tmp_path / "userdir")
    r, took = palette_install(user_dir, npm_env, "node-red-contrib-fg-nonexistent@1.0.0")
    assert r.returncode != 0
    assert "E404" in r.stderr
    assert took < 5
    assert reg.requests.count("GET", "/node-red-contrib-fg-nonexistent") == 1
    assert "dependencies" not in json.loads((user_dir / "package.json").read_text())


def test_missing_version_is_etarget(reg, npm_env, tmp_path):
    user_dir = init_user_dir(tmp_path / "userdir")
    r, took = palette_install(user_dir, npm_env, f"{ALPHA}@9.9.9")
    assert r.returncode != 0 and "ETARGET" in r.stderr
    assert took < 5


def test_registry_500_fails_fast(reg, npm_env, tmp_path):
    user_dir = init_user_dir(tmp_path / "userdir")
    reg.fault = {"status": 500}
    r, took = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0")
    assert r.returncode != 0
    assert "500" in r.stderr
    assert took < 5, f"npm took {took:.1f}s against a 500 (retries not off?)"
    assert reg.requests.count("GET", f"/{ALPHA}") == 1                # exactly one try
    assert not (user_dir / "node_modules" / ALPHA).exists()


def test_tarball_500_and_registry_down_fail_fast(reg, npm_env, tmp_path):
    user_dir = init_user_dir(tmp_path / "userdir")
    reg.fault = {"status": 500, "paths": ".tgz"}
    r, took = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0")
    assert r.returncode != 0 and took < 5, r.stderr
    assert reg.requests.count("GET", ".tgz") == 1
    reg.fault = "down"
    r, took = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0")
    assert r.returncode != 0 and took < 5, r.stderr
    assert not (user_dir / "node_modules" / ALPHA).exists()


@pytest.mark.matrix('attacks', 'a .npmrc in the Node-RED userDir pointing at another registry', 'npm',
                    expect='the configured registry overrides it')
def test_cli_registry_overrides_project_npmrc(reg, npm_env, tmp_path):
    """A repository-level .npmrc in the userDir is read by npm; --registry on the command line wins."""
    user_dir = init_user_dir(tmp_path / "userdir")
    (user_dir / ".npmrc").write_text("registry=http://127.0.0.1:9/\n")
    r, _ = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0")
    assert r.returncode != 0 and "127.0.0.1:9" in r.stderr, r.stderr   # proves the .npmrc is honoured
    assert reg.requests.count() == 0
    r, _ = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0", extra=["--registry", reg.url])
    assert r.returncode == 0, r.stderr
    assert json.loads((user_dir / "package.json").read_text())["dependencies"] == {ALPHA: "~1.0.0"}
    assert reg.requests.count("GET", f"/{ALPHA}/-/{ALPHA}-1.0.0.tgz") == 1


def test_project_scoped_registry_beats_cli_registry(reg, npm_env, tmp_path):
    """Pitfall: --registry does NOT override a project's @scope:registry; --@scope:registry does."""
    user_dir = init_user_dir(tmp_path / "userdir")
    (user_dir / ".npmrc").write_text("@fg-test:registry=http://127.0.0.1:9/\n")
    r, _ = palette_install(user_dir, npm_env, f"{DELTA}@1.0.0", extra=["--registry", reg.url])
    assert r.returncode != 0 and "127.0.0.1:9" in r.stderr, r.stderr
    r, _ = palette_install(user_dir, npm_env, f"{DELTA}@1.0.0",
                           extra=["--registry", reg.url, f"--@fg-test:registry={reg.url}"])
    assert r.returncode == 0, r.stderr


# --- a real Node-RED loads what npm installed ----------------------------------

def test_real_nodered_runs_installed_node(reg, npm_env, tmp_path):
    user_dir = init_user_dir(tmp_path / "nr-user")
    r, _ = palette_install(user_dir, npm_env, f"{ALPHA}@1.0.0")
    assert r.returncode == 0, r.stderr
    # out-of-band extras: a package whose JS throws, and one needing Node-RED >= 99
    r, _ = palette_install(user_dir, npm_env, "node-red-contrib-fg-broken@1.0.0", "node-red-contrib-fg-future@1.0.0")
    assert r.returncode == 0, r.stderr

    token = "npmreg-admin-" + os.urandom(8).hex()
    with NodeRedServer(user_dir, admin_token=token) as nr:
        resp = requests.get(nr.url + "/nodes", timeout=10,
                            headers={"Accept": "application/json", "Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
        sets = {s["id"]: s for s in resp.json()}
        alpha = sets[f"{ALPHA}/fg-alpha"]
        assert alpha["types"] == ["fg-alpha"] and alpha["enabled"] and alpha["version"] == "1.0.0"
        assert alpha["module"] == ALPHA
        all_types = {t for s in sets.values() if "err" not in s for t in s["types"]}
        assert "fg-alpha" in all_types
        # Pitfall: a set whose JS threw is still listed WITH its types, plus "err" (an Error
        # serialised as {}): exclude sets with "err" when computing the registered types.
        broken = sets["node-red-contrib-fg-broken/fg-broken"]
        assert broken["types"] == ["fg-broken"] and "err" in broken
        assert "fg-broken" not in all_types
        # a module whose node-red.version does not match is left out of /nodes entirely (log warning only)
        assert not any(s["module"] == "node-red-contrib-fg-future" for s in sets.values())
        assert "Requires: >=99.0.0" in nr.log_path.read_text()

        flows = [
            {"id": "t1", "type": "tab", "label": "npmreg"},
            {"id": "in1", "type": "inject", "z": "t1", "name": "", "props": [{"p": "payload"}], "repeat": "",
             "crontab": "", "once": True, "onceDelay": 0.1, "topic": "", "payload": "hello", "payloadType": "str",
             "x": 100, "y": 80, "wires": [["a1"]]},
            {"id": "a1", "type": "fg-alpha", "z": "t1", "name": "", "x": 300, "y": 80, "wires": [["f1"]]},
            {"id": "f1", "type": "function", "z": "t1", "name": "", "func": "global.set('seen', msg.payload);\nreturn msg;",
             "outputs": 1, "timeout": 0, "noerr": 0, "initialize": "", "finalize": "", "libs": [],
             "x": 500, "y": 80, "wires": [[]]},
        ]
        nr.deploy(flows)
        deadline = time.monotonic() + 10
        seen = None
        while seen is None and time.monotonic() < deadline:
            seen = nr.global_value("seen")
            if seen is None:
                time.sleep(0.05)
        assert seen == {"from": "fg-alpha", "payload": "hello"}
