"""npm, run the way Node-RED's palette manager runs it, with the sidecar's own settings.

Installs go into the Flow App's userDir (`npm install --save --save-prefix=~ …`) with
the registry from the sidecar's configuration on the command line — a `.npmrc` from
anywhere else never redirects it — a private user config (auth token by environment
reference only), no retries inside npm, a timeout, and the output captured.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from ..core.errors import SyncError
from ..failpoints import failpoint
from .runner import RunResult, Runner

INSTALL_ARGS = ["--no-audit", "--no-update-notifier", "--no-fund", "--save", "--save-prefix=~", "--omit=dev", "--engine-strict"]
NPM_FAILED = "npm_install_failed"
DEFAULT_REGISTRY = "https://registry.npmjs.org/"


def explain(output: str) -> str:
    """A short reason from npm's output."""
    s = output
    stopped = next((line.strip() for line in s.splitlines() if "timed out: npm took longer than" in line), "")
    if stopped:  # our own timeout (install): the registry answered too slowly or not at all
        return stopped[stopped.find("the registry"):][:200]
    for code, text in (("E404", "not found in the registry"), ("ETARGET", "no version matches the requested range"),
                       ("EBADENGINE", "needs a different Node.js or Node-RED version"), ("ENOTFOUND", "the registry host was not found"),
                       ("ECONNREFUSED", "the registry refused the connection"), ("ECONNRESET", "the connection to the registry was reset"),
                       ("ETIMEDOUT", "the registry timed out"), ("EIDLETIMEOUT", "the registry timed out"),
                       ("E500", "the registry answered HTTP 500"), ("E503", "the registry answered HTTP 503"),
                       ("E401", "the registry refused the credentials"), ("E403", "the registry refused access"),
                       ("ENOSPC", "no space left on the device")):
        if code in s:
            return f"{code}: {text}"
    m = re.search(r"npm (?:ERR!|error) (.+)", s)
    return m.group(1).strip()[:200] if m else (s.strip().splitlines()[-1][:200] if s.strip() else "npm failed")


class Npm:
    def __init__(self, user_dir: str, registry: str, token: callable, runner: Runner, runtime_dir: Path,
                 timeout: float = 300.0, npm: str = "npm") -> None:
        self.user_dir = user_dir
        self.registry = registry or DEFAULT_REGISTRY
        if not self.registry.endswith("/"):
            self.registry += "/"
        self.token = token
        self.runner = runner
        self.runtime_dir = runtime_dir
        self.timeout = timeout
        self.npm = npm

    def _env(self) -> tuple[dict[str, str], list[str]]:
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        rc = self.runtime_dir / "npmrc"
        host = urlsplit(self.registry)
        lines = [f"registry={self.registry}", "update-notifier=false", "audit=false", "fund=false", "fetch-retries=0"]
        token = self.token() or ""
        if token:  # only a reference: the value stays in the child's environment
            lines.append(f"//{host.netloc}{host.path}:_authToken=${{FLOW_GITOPS_NPM_TOKEN}}")
        rc.write_text("\n".join(lines) + "\n")
        env = {
            "npm_config_userconfig": str(rc),
            "npm_config_globalconfig": str(self.runtime_dir / "npmrc-global-none"),
            "npm_config_update_notifier": "false",
            "FLOW_GITOPS_NPM_TOKEN": token,
            "NO_UPDATE_NOTIFIER": "1",
        }
        return env, [token]

    def install(self, target: str) -> RunResult:
        """`npm install <target>` in the userDir. Returns the run; a timeout is a failed run whose
        output says so (an attempt like any other: retried, then reported with the rest, D4)."""
        if not self.user_dir or not os.path.isdir(self.user_dir):
            raise SyncError(NPM_FAILED, f"the Flow App's userDir {self.user_dir!r} is not available to the sidecar "
                                        "(set flow_app.user_dir to the shared volume)", retryable=False)
        env, secrets = self._env()
        scope = [f"--{target.split('/', 1)[0]}:registry={self.registry}"] if target.startswith("@") else []
        # --registry alone does not override a "@scope:registry=" line in a .npmrc of the userDir
        res = self.runner.run([self.npm, "install", *INSTALL_ARGS, "--fetch-retries=0", f"--registry={self.registry}", *scope, "--", target],
                              timeout=self.timeout, env=env, cwd=self.user_dir, secrets=secrets)
        if res.timed_out:
            where = urlsplit(self.registry).netloc.rpartition("@")[2]
            res.stderr = (res.stderr + f"\nnpm install {target}: the registry {where} timed out: "
                                       f"npm took longer than {self.timeout:g} s and was stopped").strip()
        if res.ok:
            failpoint("install")  # tests: the module is on disk, Node-RED has not loaded it
        return res

    def installed(self) -> dict[str, str]:
        """Modules the userDir has (package.json dependencies found in node_modules) → version."""
        out: dict[str, str] = {}
        try:
            deps = json.loads(Path(self.user_dir, "package.json").read_text()).get("dependencies") or {}
        except (OSError, ValueError):
            deps = {}
        for name in deps:
            v = self.version_on_disk(name)
            if v:
                out[name] = v
        return out

    def version_on_disk(self, module: str) -> str:
        try:
            return json.loads(Path(self.user_dir, "node_modules", module, "package.json").read_text()).get("version", "")
        except (OSError, ValueError):
            return ""

    def is_node_module(self, module: str) -> bool:
        """True when the module on disk declares Node-RED nodes or plugins."""
        try:
            pkg = json.loads(Path(self.user_dir, "node_modules", module, "package.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(pkg.get("node-red"), dict)

    def pack(self, spec: str, dest: Path) -> Path:
        """Download `spec`'s tarball from the registry (for `catalog build`)."""
        env, secrets = self._env()
        dest.mkdir(parents=True, exist_ok=True)
        res = self.runner.run([self.npm, "pack", "--json", f"--registry={self.registry}", f"--pack-destination={dest}", "--", spec],
                              timeout=self.timeout, env=env, cwd=str(dest), secrets=secrets)
        if not res.ok:
            raise SyncError(NPM_FAILED, f"npm pack {spec}: {explain(res.stderr)}")
        info = json.loads(res.stdout.decode() or "[]")
        return dest / info[0]["filename"]
