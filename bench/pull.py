"""PULL-mode benchmarks against a real Node-RED and real Git, with a baseline in the same run.

Figures (issue #8):
  commit_to_running     forced sync of a 500-node / 20-tab repository where one tab changed:
                        from the commit to the new flows running (median, p95), ours vs the
                        baseline a team would script: `git fetch && git reset --hard` then a full
                        `POST /flows`, confirmed the same way (comms websocket).
  nodes_restarted       share of function nodes restarted by that deploy (ours vs baseline).
  noop_poll             a timer check with nothing new over HTTPS: remote round trips,
                        Flow App calls, wall time and CPU time (sidecar + its git children).

Ours and the baseline run interleaved in one process, so machine noise hits both alike.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from sidecar.adapters.nodered import CommsListener  # noqa: E402
from sidecar.app import App  # noqa: E402
from sidecar.core.config import from_dict  # noqa: E402
from sidecar.core.schedule import Trigger  # noqa: E402
from tests import flowgen  # noqa: E402
from tests.servers.common import make_tls_cert  # noqa: E402
from tests.servers.githttp import GitHttpServer  # noqa: E402
from tests.servers.gitrepo import GitRepoFactory, hermetic_git_env  # noqa: E402
from tests.servers.nodered import NodeRedServer  # noqa: E402

TOKEN = "bench-admin-token-0123456789"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def function_starts(nr: NodeRedServer, ids: list[str]) -> dict[str, int]:
    return {i: nr.global_value(f"starts_{i}") or 0 for i in ids}


class Baseline:
    """What a team scripts without us: fetch + hard reset, then a full deploy of the file."""

    def __init__(self, work: Path, remote_url: str, nr: NodeRedServer, env: dict) -> None:
        self.work, self.nr, self.env = work, nr, env
        subprocess.run(["git", "clone", "-q", remote_url, str(work)], check=True, env=env, capture_output=True)

    def sync(self) -> None:
        subprocess.run(["git", "fetch", "-q", "origin"], cwd=self.work, check=True, env=self.env)
        subprocess.run(["git", "reset", "-q", "--hard", "origin/main"], cwd=self.work, check=True, env=self.env)
        flows = json.loads((self.work / "flows.json").read_text())
        with CommsListener(self.nr.url, TOKEN) as comms:
            comms.wait_retained(2.0)
            r = requests.post(self.nr.url + "/flows", json={"flows": flows},
                              headers=self.nr.headers({"Node-RED-Deployment-Type": "full"}), timeout=60)
            r.raise_for_status()
            comms.wait_started(r.json()["rev"], 60)


def run(rounds: int, nodes: int, out: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="flow-gitops-bench-"))
    nr = NodeRedServer(tmp / "nr", admin_token=TOKEN).start()
    secrets = tmp / "secrets"
    (secrets / "nodered").mkdir(parents=True)
    (secrets / "nodered" / "token").write_text(TOKEN)
    (secrets / "git").mkdir()
    (secrets / "git" / "user").write_text("bench")
    (secrets / "git" / "token").write_text("bench-token")
    repos = GitRepoFactory(tmp / "remote")
    remote = repos.create("flows")
    cert, key = make_tls_cert(tmp / "tls")
    git_http = GitHttpServer(repos.root, "bench", "bench-token", cert, key).start()
    try:
        remote.commit({"flows.json": flowgen.dumps(flowgen.sized(nodes, 20))}, "initial")
        cfg = from_dict({
            "environment": "bench", "data_dir": str(tmp / "data"),
            "flow_app": {"url": nr.url, "token": "global.SECRETS.nodered.token"},
            "secrets": {"dir": str(secrets)},
            "repository": {"protocol": "https", "url": git_http.url_for("flows"), "branch": "main", "ca_file": cert,
                           "username": "global.SECRETS.git.user", "password": "global.SECRETS.git.token"},
            "sync": {"paused": False},
        })
        app = App(cfg, watch_deploys=False)
        assert app.store.job(app.engine.run(Trigger("force"))).status == "succeeded"
        # the baseline reads the same HTTPS remote, credentials through a helper as a careful script would
        helper = '!f() { test "$1" = get && printf "username=bench\\npassword=bench-token\\n"; }; f'
        env = hermetic_git_env(tmp / "home", GIT_SSL_CAINFO=cert, GIT_CONFIG_COUNT="1",
                               GIT_CONFIG_KEY_0="credential.helper", GIT_CONFIG_VALUE_0=helper)
        baseline = Baseline(tmp / "baseline", git_http.url_for("flows"), nr, env)
        fn_ids = [n["id"] for n in flowgen.sized(nodes, 20) if n["type"] == "function"]
        ours_t, base_t, ours_restart, base_restart, phases = [], [], [], [], []
        for i in range(rounds):
            for who in (("ours", "base") if i % 2 == 0 else ("base", "ours")):
                remote.commit({"flows.json": flowgen.dumps(flowgen.sized(nodes, 20, variant=f"{who}-{i}"))}, f"change {who} {i}")
                before = function_starts(nr, fn_ids)
                t0 = time.perf_counter()
                if who == "ours":
                    job = app.store.job(app.engine.run(Trigger("force")))
                    assert job.status == "succeeded", job.error_message
                    phases.append(job.detail.get("timings_ms", {}))
                else:
                    baseline.sync()
                elapsed = time.perf_counter() - t0
                after = function_starts(nr, fn_ids)
                restarted = sum(1 for k in fn_ids if after[k] != before[k]) / len(fn_ids)
                (ours_t if who == "ours" else base_t).append(elapsed)
                (ours_restart if who == "ours" else base_restart).append(restarted)
            # the baseline deployed behind our back: resync so our next run starts clean
            app.engine.run(Trigger("force"))

        # no-change poll over HTTPS
        app.engine.run(Trigger("force"))
        walls, cpus, trips, calls = [], [], [], []
        for _ in range(max(5, rounds)):
            app.git.round_trips, app.flowapp.calls = 0, 0
            c0 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
            w0 = time.perf_counter()
            job = app.store.job(app.engine.run(Trigger("timer")))
            walls.append(time.perf_counter() - w0)
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(time.process_time() + ru.ru_utime + ru.ru_stime - c0)
            assert job.status == "noop"
            trips.append(app.git.round_trips)
            calls.append(app.flowapp.calls)
        app.stop()

        # 5,000 nodes: plan (dry run) time and commit → running with one tab changed
        big = repos.create("big")
        big.commit({"flows.json": flowgen.dumps(flowgen.sized(5000, 20))}, "5000 nodes")
        cfg_big = from_dict({**cfg.to_dict(), "data_dir": str(tmp / "data-big"),
                             "repository": {**cfg.to_dict()["repository"], "url": git_http.url_for("big")}})
        app_big = App(cfg_big, watch_deploys=False)
        assert app_big.store.job(app_big.engine.run(Trigger("force"))).status == "succeeded"
        plan_times, pure_plan, big_running = [], [], []
        for i in range(3):
            big.commit({"flows.json": flowgen.dumps(flowgen.sized(5000, 20, variant=f"big-{i}"))}, f"big change {i}")
            t0 = time.perf_counter()
            plan = app_big.engine.plan()
            plan_times.append(time.perf_counter() - t0)
            assert plan["changes"], plan
            current, _ = nr.flows()
            target = flowgen.sized(5000, 20, variant=f"big-{i}")
            t0 = time.perf_counter()
            from sidecar.core.flows import make_plan
            make_plan(current, target, set())
            pure_plan.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            job = app_big.store.job(app_big.engine.run(Trigger("force")))
            big_running.append(time.perf_counter() - t0)
            assert job.status == "succeeded", job.error_message
        app_big.stop()
    finally:
        git_http.stop()
        nr.stop()

    med_o, med_b = statistics.median(ours_t), statistics.median(base_t)
    results = {
        "commit_to_running_median": {"value": round(med_o, 3), "unit": "s", "target": "<= 1.0", "baseline": round(med_b, 3),
                                     "ratio_to_baseline": round(med_o / med_b, 3), "pass": med_o <= 1.0},
        "commit_to_running_p95": {"value": round(pct(ours_t, 95), 3), "unit": "s", "baseline": round(pct(base_t, 95), 3)},
        "nodes_restarted_one_tab_of_20": {"value": round(100 * statistics.mean(ours_restart), 1), "unit": "%", "target": "<= 10",
                                          "baseline": round(100 * statistics.mean(base_restart), 1),
                                          "pass": statistics.mean(ours_restart) <= 0.10},
        "noop_poll_round_trips": {"value": max(trips), "unit": "count", "target": "1", "pass": max(trips) == 1},
        "noop_poll_nodered_calls": {"value": max(calls), "unit": "count", "target": "0", "pass": max(calls) == 0},
        "noop_poll_wall": {"value": round(1000 * statistics.median(walls), 1), "unit": "ms"},
        "noop_poll_cpu": {"value": round(1000 * statistics.median(cpus), 1), "unit": "ms", "target": "<= 50",
                          "pass": statistics.median(cpus) <= 0.050},
        "plan_5000_nodes": {"value": round(1000 * statistics.median(plan_times)), "unit": "ms", "target": "<= 300",
                            "pass": statistics.median(plan_times) <= 0.300,
                            "note": f"dry run incl. remote check, reading the commit and two Admin API calls; the diff alone: "
                                    f"{round(1000 * statistics.median(pure_plan))} ms"},
        "commit_to_running_5000_nodes": {"value": round(statistics.median(big_running), 3), "unit": "s", "target": "<= 3",
                                         "pass": statistics.median(big_running) <= 3.0},
        "_meta": {"nodes": nodes, "tabs": 20, "rounds": rounds,
                  "ours_phase_median_ms": {k: statistics.median(p.get(k, 0) for p in phases) for k in phases[0]} if phases else {}},
    }
    out.write_text(json.dumps(results, indent=2))
    return results


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--out", default=str(ROOT / "bench" / "pull-results.json"))
    args = p.parse_args()
    res = run(5 if args.quick else 15, args.nodes, Path(args.out))
    print(f"{'figure':34} {'value':>10} {'baseline':>10} {'target':>8}  pass")
    for name, r in res.items():
        if name.startswith("_"):
            continue
        print(f"{name:34} {str(r['value']) + ' ' + r['unit']:>10} {str(r.get('baseline', '')):>10} {r.get('target', ''):>8}  {r.get('pass', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
