"""A static npm registry for tests: stdlib ``ThreadingHTTPServer`` on 127.0.0.1.

Runs in the test process (a background thread, port 0) and serves tarballs
that were handed to :meth:`NpmRegistry.publish`::

    with NpmRegistry(tmp_path / "registry") as reg:
        reg.publish(tgz)                          # reads package/package.json
        env = reg.npm_env(tmp_path / "npm")       # hermetic npm config
        subprocess.run(["npm", "install", "--fetch-retries=0", ...], env=env, cwd=user_dir)
        assert reg.requests.count("GET", "node-red-contrib-fg-alpha/-/") == 1
        reg.fault = {"status": 500}               # every request -> 500
        reg.fault = {"status": 500, "paths": ".tgz"}   # only matching paths
        reg.fault = {"delay": 2.0}                # slow, then normal answer
        reg.fault = "down"                        # close without answering
        reg.fault = None

Routes (everything else is 404 ``{"error":"Not found"}``):

* ``GET /-/ping`` -> ``{}``
* ``GET /<name>`` -> the packument (scoped names arrive as ``/@scope%2fname``;
  ``/@scope/name`` works too). npm 11 asks with
  ``Accept: application/vnd.npm.install-v1+json``; it gets the full packument.
* ``GET /<name>/<version-or-tag>`` -> that version's manifest.
* ``GET /<name>/-/<file>.tgz`` -> the tarball.

Packuments are built in memory from the tarballs: each version is the
tarball's package.json plus ``_id``, ``_hasShrinkwrap`` and ``dist``
(``tarball`` URL on this server, ``shasum`` = sha1 hex, ``integrity`` =
``sha512-<base64>``). ``dist-tags.latest`` is the highest non-prerelease
version by semver precedence; prereleases never become ``latest``.
Tarballs are copied to ``storage_dir/<name>/-/<unscoped>-<version>.tgz``.

``.requests`` records ``(method, path)`` on arrival (raw path, so faulted
requests count too); ``.fault`` may be changed while the server runs.
``disable_nagle_algorithm`` avoids a 40 ms Nagle/delayed-ACK stall per
response (TESTBED.md §1).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import socket
import tarfile
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from .common import RequestLog

__all__ = ["NpmRegistry", "RequestLog", "is_prerelease", "semver_key"]

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")


def semver_key(version: str) -> tuple:
    """Sort key implementing semver 2.0 precedence (build metadata ignored)."""
    m = _SEMVER.match(version)
    if not m:
        raise ValueError(f"not a semver version: {version!r}")
    major, minor, patch, pre = m.groups()
    if pre is None:
        pre_key: tuple = (1,)  # a release sorts after all of its prereleases
    else:
        # numeric identifiers sort before alphanumeric ones, numerically
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(major), int(minor), int(patch), pre_key)


def is_prerelease(version: str) -> bool:
    m = _SEMVER.match(version)
    return bool(m and m.group(4))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: NpmRegistry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: npm reuses connections
    disable_nagle_algorithm = True
    timeout = 60
    server_version = "npmreg-test/1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _other(self) -> None:
        owner = self.server.owner
        owner.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self._apply_fault(owner):
            return
        self._json(405, {"error": "Method not allowed"})

    do_PUT = do_POST = do_DELETE = _other

    # -- helpers ----------------------------------------------------------
    def _apply_fault(self, owner: NpmRegistry) -> bool:
        """Apply ``owner.fault`` (one snapshot per request). True if the request was consumed."""
        fault = owner.fault
        if not fault:
            return False
        if fault == "down":
            fault = {"down": True}
        if not isinstance(fault, dict):
            raise TypeError(f"bad fault {fault!r}")
        paths = fault.get("paths")
        if paths and str(paths) not in self.path and str(paths) not in urllib.parse.unquote(self.path):
            return False
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("down"):
            # no answer at all: the client sees the connection close (FIN)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if fault.get("status"):
            self._json(int(fault["status"]), {"error": "injected fault"})
            return True
        return False

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None, with_body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, with_body: bool = True) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        # no-cache: npm must come back to us, so tests can count requests
        self._send(status, body, "application/json", {"Cache-Control": "no-cache"}, with_body)

    def _serve(self, body: bool) -> None:
        owner = self.server.owner
        owner.requests.append((self.command, self.path))
        if self._apply_fault(owner):
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/-/ping", "/-/ping/"):
            self._json(200, {}, body)
            return
        parts = path.lstrip("/").split("/")
        if parts and parts[0].startswith("@") and len(parts) >= 2:
            parts = [parts[0] + "/" + parts[1]] + parts[2:]
        name, rest = parts[0], parts[1:]
        if not name or not rest or rest == [""]:
            doc = owner.packument(name) if name else None
            if doc is None:
                self._json(404, {"error": "Not found"}, body)
            else:
                self._json(200, doc, body)
            return
        if len(rest) == 2 and rest[0] == "-":
            data = owner.tarball_bytes(name, rest[1])
            if data is None:
                self._json(404, {"error": "Not found"}, body)
            else:
                self._send(200, data, "application/octet-stream", None, body)
            return
        if len(rest) == 1:
            doc = owner.packument(name)
            if doc is not None:
                version = doc["dist-tags"].get(rest[0], rest[0])
                if version in doc["versions"]:
                    self._json(200, doc["versions"][version], body)
                    return
        self._json(404, {"error": "Not found"}, body)


class NpmRegistry:
    """Static npm registry on ``http://127.0.0.1:<port>/``; see the module docstring."""

    def __init__(self, storage_dir: str | os.PathLike[str], host: str = "127.0.0.1") -> None:
        self.storage_dir = Path(storage_dir)
        self.host = host
        self.port = 0
        self.requests = RequestLog()
        self.fault: None | str | dict[str, Any] = None
        self._lock = threading.Lock()
        self._packuments: dict[str, dict[str, Any]] = {}
        self._files: dict[tuple[str, str], Path] = {}   # (name, file name) -> stored tarball
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------
    @property
    def url(self) -> str:
        """Registry URL with a trailing slash, e.g. ``http://127.0.0.1:40123/``."""
        if not self.port:
            raise RuntimeError("registry not started")
        return f"http://{self.host}:{self.port}/"

    def start(self) -> NpmRegistry:
        if self._httpd is not None:
            return self
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        httpd = _Server((self.host, 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"npmreg:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> NpmRegistry:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content ----------------------------------------------------------
    def publish(self, tarball_path: str | os.PathLike[str], tag: str | None = None) -> dict[str, Any]:
        """Add the version in ``tarball_path`` (an npm .tgz) and return its manifest.

        May be called before or after :meth:`start` (tarball URLs are built
        when the packument is served). Re-publishing identical bytes is a
        no-op; different bytes for an existing version raise ``ValueError``,
        as a real registry refuses. ``tag`` additionally points that dist-tag
        (e.g. ``"next"``) at this version.
        """
        src = Path(tarball_path)
        data = src.read_bytes()
        manifest = _read_package_json(src)
        name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{src}: bad package name {name!r}")
        if not isinstance(version, str) or not _SEMVER.match(version):
            raise ValueError(f"{src}: bad version {version!r}")
        version = version.lstrip("v")
        shasum = hashlib.sha1(data).hexdigest()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        fname = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
        with self._lock:
            doc = self._packuments.get(name)
            if doc and version in doc["versions"]:
                if doc["versions"][version]["dist"]["shasum"] != shasum:
                    raise ValueError(f"{name}@{version} is already published with different content")
                if tag:
                    doc["dist-tags"][tag] = version
                return copy.deepcopy(doc["versions"][version])
            dest = self.storage_dir / name / "-" / fname
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            entry = dict(manifest)
            entry.update({
                "name": name,
                "version": version,
                "_id": f"{name}@{version}",
                "_hasShrinkwrap": bool(manifest.get("_hasShrinkwrap", False)),
                # "_file" becomes dist.tarball (a URL on this server) when served
                "dist": {"shasum": shasum, "integrity": integrity, "_file": fname},
            })
            now = _iso(time.time())
            if doc is None:
                doc = {"_id": name, "name": name, "dist-tags": {}, "versions": {}, "time": {"created": now}}
                self._packuments[name] = doc
            doc["versions"][version] = entry
            doc["time"][version] = now
            doc["time"]["modified"] = now
            doc["modified"] = now
            for key in ("description", "keywords", "license", "readme", "homepage", "repository"):
                if key in manifest:
                    doc[key] = manifest[key]
            releases = [v for v in doc["versions"] if not is_prerelease(v)]
            if releases:
                doc["dist-tags"]["latest"] = max(releases, key=semver_key)
            if tag:
                doc["dist-tags"][tag] = version
            self._files[(name, fname)] = dest
            return self._render_version(entry)

    def publish_all(self, tarballs: list[str | os.PathLike[str]]) -> None:
        for t in tarballs:
            self.publish(t)

    def set_dist_tag(self, name: str, tag: str, version: str | None) -> None:
        """Point ``tag`` at ``version`` (``None`` removes the tag)."""
        with self._lock:
            doc = self._packuments[name]
            if version is None:
                doc["dist-tags"].pop(tag, None)
            elif version not in doc["versions"]:
                raise KeyError(f"{name}@{version} not published")
            else:
                doc["dist-tags"][tag] = version

    def deprecate(self, name: str, version: str, message: str) -> None:
        """Mark a version deprecated, as ``npm deprecate`` does (npm then warns)."""
        with self._lock:
            self._packuments[name]["versions"][version]["deprecated"] = message

    def unpublish(self, name: str, version: str | None = None) -> None:
        """Remove one version, or the whole package (then GET gives 404)."""
        with self._lock:
            doc = self._packuments.get(name)
            if doc is None:
                return
            if version is None:
                del self._packuments[name]
                self._files = {k: v for k, v in self._files.items() if k[0] != name}
                return
            entry = doc["versions"].pop(version, None)
            doc["time"].pop(version, None)
            if entry is not None:
                self._files.pop((name, entry["dist"]["_file"]), None)
            for tag, v in list(doc["dist-tags"].items()):
                if v == version:
                    del doc["dist-tags"][tag]
            releases = [v for v in doc["versions"] if not is_prerelease(v)]
            if releases:
                doc["dist-tags"]["latest"] = max(releases, key=semver_key)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._packuments)

    def versions(self, name: str) -> list[str]:
        """Published versions of ``name`` in semver order (empty if unknown)."""
        with self._lock:
            doc = self._packuments.get(name)
            return sorted(doc["versions"], key=semver_key) if doc else []

    def packument(self, name: str) -> dict[str, Any] | None:
        """The packument as served (a deep copy), or ``None``."""
        with self._lock:
            doc = self._packuments.get(name)
            if doc is None:
                return None
            out = copy.deepcopy(doc)
        out["versions"] = {v: self._render_version(e) for v, e in out["versions"].items()}
        return out

    def tarball_url(self, name: str, version: str) -> str:
        return self.url + f"{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"

    def tarball_bytes(self, name: str, fname: str) -> bytes | None:
        with self._lock:
            path = self._files.get((name, fname))
        return path.read_bytes() if path else None

    def _render_version(self, entry: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(entry)
        fname = out["dist"].pop("_file")
        out["dist"]["tarball"] = (self.url if self.port else "http://127.0.0.1:0/") + f"{out['name']}/-/{fname}"
        return out

    # -- client side ------------------------------------------------------
    def write_npmrc(self, path: str | os.PathLike[str], extra: dict[str, str] | None = None) -> Path:
        """Write a minimal npmrc pointing at this registry."""
        settings = {"registry": self.url, "update-notifier": "false", "audit": "false", "fund": "false",
                    "fetch-retries": "0", "loglevel": "warn"}
        settings.update(extra or {})
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return p

    def npm_env(self, work_dir: str | os.PathLike[str], base: dict[str, str] | None = None) -> dict[str, str]:
        """A hermetic environment for ``npm`` against this registry (TESTBED.md §4).

        ``work_dir`` receives ``npmrc`` and ``cache/``. The machine's
        ``~/.npmrc`` and global npmrc are ignored, and no inherited
        ``npm_config_*`` variable leaks in. Still pass ``--fetch-retries=0``
        on the command line if a test relies on it (the npmrc sets it too).
        """
        d = Path(work_dir)
        d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.lower().startswith("npm_config_")}
        env.update({
            "npm_config_userconfig": str(self.write_npmrc(d / "npmrc")),
            "npm_config_globalconfig": "/dev/null",
            "npm_config_cache": str(d / "cache"),
            "npm_config_update_notifier": "false",
            "NO_UPDATE_NOTIFIER": "1",
        })
        return env


def _read_package_json(tgz: Path) -> dict[str, Any]:
    """package.json of an npm tarball (``package/`` prefix, or any single top directory)."""
    with tarfile.open(tgz, "r:gz") as tf:
        candidates = [m for m in tf.getmembers()
                      if m.isfile() and m.name.lstrip("./").count("/") == 1 and m.name.endswith("/package.json")]
        if not candidates:
            raise ValueError(f"{tgz}: no <dir>/package.json")
        candidates.sort(key=lambda m: not m.name.lstrip("./").startswith("package/"))
        fh = tf.extractfile(candidates[0])
        assert fh is not None
        manifest = json.loads(fh.read().decode("utf-8"))
        names = {m.name.lstrip("./").split("/", 1)[-1] for m in tf.getmembers()}
    if "npm-shrinkwrap.json" in names:
        manifest["_hasShrinkwrap"] = True
    return manifest


if __name__ == "__main__":  # manual use: python -m tests.servers.npmreg DIR_WITH_TGZ [STORAGE]
    import sys
    import tempfile

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with NpmRegistry(sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="npmreg-")) as _reg:
        for _tgz in sorted(src.glob("*.tgz")) if src else []:
            _reg.publish(_tgz)
        print(f"registry={_reg.url}  ({len(_reg.names())} packages; Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
