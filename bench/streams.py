"""Event-stream and memory benchmarks of the API, against a real Node-RED and a real Git repository.

Figures:
  watch_native_*        N (default 200) concurrent native gRPC WatchStatus streams. Every stream first
                        gets its snapshot; then the benchmark calls Pause and Resume alternately
                        (`--triggers` times, one every 100 ms; each Resume also runs a real, no-op sync
                        job, so bursts of status and job events go out as they would in service).
  watch_web_*           The same with 20 gRPC-web streams (binary, HTTP/1.1, tests/grpcweb.py clients,
                        one thread and one connection each) — and, for a fair comparison, 20 native ones.
  rss_per_stream        (RSS after N native streams are open − RSS before) / N, of the process that
                        runs the sidecar and its API.
  serve_idle_rss        VmRSS of a real `python -m sidecar serve --config FILE` (file:// repository,
                        sync active) after its first sync and ~3 s idle; its child processes, if any,
                        are listed separately.

How latency is measured (all clocks are time.time() on one machine, so they compare across processes):
  publish time          The sidecar runs in this process (tests/apiserver.RunningSidecar: its own asyncio
                        loop thread). Before the API server starts, the benchmark subscribes its own
                        listener to the status Board; the Board calls listeners in subscription order, so
                        this listener stamps each `seq` immediately before the API's listener hands the
                        event to the EventHub. That stamp is the publish time of that seq.
  receive time          The streams live in ONE separate client process (this file, run with --client):
                        grpc.aio for native (one channel = one HTTP/2 connection per stream by default,
                        as N independent clients would have), threads for gRPC-web. A stream stamps each
                        message as soon as its iterator yields it (after the client parsed it).
  delivery latency      receive − publish, over every (stream, status seq published after its snapshot).
                        After the last trigger the benchmark waits until the sync is idle and every
                        server-side stream queue is empty (late is not lost; that wait is reported as
                        backlog_after_idle_ms), then 0.5 s more; a seq a stream still lacks is missed.
  trigger latency       For each Pause/Resume: receive of the first seq carrying the new `paused` value −
                        the moment the benchmark sent the RPC (includes the RPC itself, the worker thread
                        and the state-database write before the publish).
  Breakdown (_meta)     The hub's loop-side delivery is stamped too (an instance wrapper on
                        EventHub._deliver in this process), splitting delivery latency into
                        publish → loop picks it up and loop → client has it.

The client process is a separate interpreter, so its CPU does not share the GIL with the server; on a
small machine they still share cores (see _meta.cpus). Nothing here asserts: it prints a table and writes
JSON like bench/pull.py.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import queue
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from sidecar.api.gen.flowgitops.v1 import gitops_pb2_grpc as pb_grpc

TOKEN = "bench-admin-token-0123456789"
SPACING = 0.100  # seconds between triggering RPCs


def pct(values: list[float], p: float) -> float | None:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else None


def vmrss_kb(pid: int | str = "self", field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def children_of(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out + [g for c in out for g in children_of(c)]


# ----------------------------------------------------------------------------------------------
# The client process: `streams.py --client grpc|web --target … --streams N`, token in $BENCH_STREAMS_TOKEN.
# stdout protocol (one JSON object per line): {"ready": …} once every stream has its snapshot,
# then, after "stop" on stdin, {"records": [[stream, seq, paused, is_snapshot, t_recv], …], …}.
# ----------------------------------------------------------------------------------------------
def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _status_of(msg: pb.WatchStatusResponse):
    kind = msg.WhichOneof("event")
    if kind == "snapshot":
        return msg.snapshot, True
    if kind == "status":
        return msg.status, False
    return None, False


async def _client_grpc(target: str, token: str, n: int, channels: int) -> None:
    import grpc

    md = (("authorization", f"Bearer {token}"),)
    # a local subchannel pool gives every channel its own TCP connection
    chans = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(channels)]
    stubs = [pb_grpc.GitOpsServiceStub(c) for c in chans]
    records: list = []
    other = {"job": 0, "heartbeat": 0}
    errors: list[str] = []
    have_snapshot = [False] * n
    all_ready = asyncio.Event()
    left = [n]
    calls = []

    async def watch(i: int) -> None:
        call = stubs[i % channels].WatchStatus(pb.WatchStatusRequest(), metadata=md)
        calls.append(call)
        try:
            async for msg in call:
                t = time.time()
                st, snap = _status_of(msg)
                if st is None:
                    other[msg.WhichOneof("event")] += 1
                    continue
                records.append((i, st.seq, st.paused, snap, t))
                if snap and not have_snapshot[i]:
                    have_snapshot[i] = True
                    left[0] -= 1
                    if not left[0]:
                        all_ready.set()
        except asyncio.CancelledError:
            pass
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                errors.append(f"{i}: {err.code().name} {err.details()}")

    t0 = time.time()
    tasks = [asyncio.create_task(watch(i)) for i in range(n)]
    try:
        await asyncio.wait_for(all_ready.wait(), 60)
    except TimeoutError:
        errors.append(f"only {n - left[0]} of {n} streams got a snapshot in 60 s")
    _emit({"ready": n - left[0], "open_s": time.time() - t0, "errors": errors})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for c in calls:
        c.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in chans:
        await c.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    _emit({"records": records, "other": other, "errors": errors, "cpu_s": ru.ru_utime + ru.ru_stime})


def _client_web(url: str, token: str, n: int) -> None:
    from tests.grpcweb import GrpcWebClient

    records: list = []
    other = {"job": 0, "heartbeat": 0}
    errors: list[str] = []
    ready = threading.Semaphore(0)

    def watch(i: int) -> None:
        got = False
        try:
            client = GrpcWebClient(url, token)
            for msg in client.stream("WatchStatus", pb.WatchStatusRequest(), pb.WatchStatusResponse, timeout=None):
                t = time.time()
                st, snap = _status_of(msg)
                if st is None:
                    other[msg.WhichOneof("event")] += 1
                    continue
                records.append((i, st.seq, st.paused, snap, t))
                if not got:
                    got = True
                    ready.release()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            errors.append(f"{i}: {exc!r}")
            if not got:
                ready.release()

    t0 = time.time()
    for i in range(n):
        threading.Thread(target=watch, args=(i,), daemon=True).start()
    for _ in range(n):
        ready.acquire(timeout=60)
    _emit({"ready": len({r[0] for r in records if r[3]}), "open_s": time.time() - t0, "errors": list(errors)})
    sys.stdin.readline()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    _emit({"records": list(records), "other": other, "errors": errors, "cpu_s": ru.ru_utime + ru.ru_stime})
    sys.stdout.flush()
    os._exit(0)  # the reader threads block in recv; the server end closes their connections


# ----------------------------------------------------------------------------------------------
# The benchmark process.
# ----------------------------------------------------------------------------------------------
class ClientProc:
    def __init__(self, mode: str, rs, n: int, channels: int) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--client", mode, "--streams", str(n),
               "--channels", str(channels),
               "--target", rs.grpc_target if mode == "grpc" else rs.http_url]
        # the token goes through the environment: not on a command line, and it may start with "-"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                     env=dict(os.environ, BENCH_STREAMS_TOKEN=rs.token))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout: float) -> dict:
        msg = self.lines.get(timeout=timeout)
        if msg is None:
            raise RuntimeError(f"the client process exited ({self.proc.wait()})")
        return msg

    def finish(self) -> dict:
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        result = self.next(60)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return result


class Probe:
    """Publish stamps per seq (a Board listener subscribed before the API's) and loop-side delivery stamps."""

    def __init__(self, app) -> None:
        self.published: dict[int, tuple[float, bool]] = {}
        self.delivered: dict[int, float] = {}
        app.board.subscribe(self._on_status)

    def _on_status(self, snap: dict) -> None:
        self.published.setdefault(snap["seq"], (time.time(), snap["paused"]))

    def wrap_hub(self, hub) -> None:
        original = hub._deliver

        def deliver(event):
            kind, payload = event
            if kind == "status":
                self.delivered.setdefault(payload["seq"], time.time())
            original(event)

        hub._deliver = deliver


def wait_until(pred, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}")


def idle_in_sync(stub, md) -> bool:
    st = stub.GetStatus(pb.GetStatusRequest(), metadata=md).status
    return st.state == pb.SYNC_STATE_IN_SYNC and not st.phase


def stream_phase(rs, probe: Probe, mode: str, n: int, channels: int, triggers: int) -> dict:
    """Open n streams in a client process, fire `triggers` Pause/Resume RPCs, collect the latencies."""
    wait_until(lambda: idle_in_sync(rs.stub, rs.md), 30, "an idle, in-sync sidecar")
    for _ in range(3):
        gc.collect()
    subs0 = rs.server.hub.subscribers
    rss0 = vmrss_kb()
    client = ClientProc(mode, rs, n, channels)
    ready = client.next(90)
    wait_until(lambda: rs.server.hub.subscribers >= subs0 + ready["ready"], 10, "the server to count every stream")
    time.sleep(0.5)  # let allocations settle
    gc.collect()
    rss1 = vmrss_kb()

    sent = []  # (kind, t_send, t_return)
    cpu0, wall0 = time.process_time(), time.time()
    for k in range(triggers):
        target = wall0 + k * SPACING
        time.sleep(max(0.0, target - time.time()))
        kind = "Pause" if k % 2 == 0 else "Resume"
        t_send = time.time()
        getattr(rs.stub, kind)(getattr(pb, f"{kind}Request")(), metadata=rs.md)
        sent.append((kind, t_send, time.time()))
    if triggers % 2:
        rs.stub.Resume(pb.ResumeRequest(), metadata=rs.md)
    wait_until(lambda: idle_in_sync(rs.stub, rs.md), 30, "the last sync to finish")
    t_idle = time.time()
    # late is not lost: wait until every stream has taken all its events off its hub queue
    wait_until(lambda: not any(q.qsize() for q in list(rs.server.hub._subscribers)), 60, "the streams to drain", 0.01)
    drain = time.time() - t_idle
    time.sleep(0.5)  # the last writes reach the client
    server_cpu = time.process_time() - cpu0
    result = client.finish()
    rss_closed = vmrss_kb()

    records = result["records"]
    by_stream: dict[int, dict[int, float]] = {}
    snap_seq: dict[int, int] = {}
    for i, seq, _paused, is_snap, t in records:
        if is_snap:
            snap_seq.setdefault(i, seq)
        else:
            by_stream.setdefault(i, {}).setdefault(seq, t)
    last_seq = max(probe.published)
    delivery, loop_wait, loop_to_client, missed = [], [], [], 0
    for i, first in snap_seq.items():
        got = by_stream.get(i, {})
        for seq in range(first + 1, last_seq + 1):
            if seq not in probe.published:
                continue
            t_pub = probe.published[seq][0]
            if seq not in got:
                missed += 1
                continue
            delivery.append(got[seq] - t_pub)
            if seq in probe.delivered:
                loop_to_client.append(got[seq] - probe.delivered[seq])
    for seq in range(min(snap_seq.values(), default=last_seq) + 1, last_seq + 1):
        if seq in probe.delivered and seq in probe.published:
            loop_wait.append(probe.delivered[seq] - probe.published[seq][0])

    # trigger → the first status carrying the new `paused` value, per stream
    trig = []
    for kind, t_send, _t_ret in sent:
        want = kind == "Pause"
        seq = next((s for s, (t, p) in sorted(probe.published.items()) if t >= t_send and p == want), None)
        if seq is None:
            continue
        for i, got in by_stream.items():
            t = next((got[s] for s in sorted(got) if s >= seq), None)
            if t is not None:
                trig.append(t - t_send)

    # receive spread of one event across streams: last receiver − first receiver
    spread = []
    for seq in range(min(snap_seq.values(), default=last_seq) + 1, last_seq + 1):
        ts = [got[seq] for got in by_stream.values() if seq in got]
        if len(ts) > 1:
            spread.append(max(ts) - min(ts))
    events = sum(1 for s in probe.published if s > min(snap_seq.values(), default=last_seq))
    ms = lambda v: None if v is None else round(1000 * v, 2)
    return {
        "mode": mode, "streams": n, "ready": ready["ready"], "open_s": round(ready["open_s"], 2),
        "connections": channels if mode == "grpc" else n,
        "status_events": events, "job_events_per_stream": round(result["other"]["job"] / max(1, n), 1),
        "pairs": len(delivery), "missed": missed,
        "delivery_p50_ms": ms(pct(delivery, 50)), "delivery_p99_ms": ms(pct(delivery, 99)),
        "delivery_max_ms": ms(max(delivery)) if delivery else None,
        "trigger_p50_ms": ms(pct(trig, 50)), "trigger_p99_ms": ms(pct(trig, 99)),
        "publish_to_loop_p50_ms": ms(pct(loop_wait, 50)), "publish_to_loop_p99_ms": ms(pct(loop_wait, 99)),
        "loop_to_client_p50_ms": ms(pct(loop_to_client, 50)), "loop_to_client_p99_ms": ms(pct(loop_to_client, 99)),
        "fanout_spread_p50_ms": ms(pct(spread, 50)), "fanout_spread_p99_ms": ms(pct(spread, 99)),
        "backlog_after_idle_ms": ms(drain),
        "rpc_p50_ms": ms(statistics.median(r - s for _, s, r in sent)),
        "messages_received": len(records) - len(snap_seq) + result["other"]["job"],
        "server_process_cpu_s": round(server_cpu, 2), "client_cpu_s": round(result["cpu_s"], 2),
        "rss_before_kb": rss0, "rss_open_kb": rss1, "rss_after_close_kb": rss_closed,
        "rss_per_stream_kb": round((rss1 - rss0) / max(1, ready["ready"]), 1),
        "errors": (ready["errors"] + result["errors"])[:10],
    }


def serve_idle(tmp: Path, nr_url: str, secrets: Path, repo_url: str, idle: float) -> dict:
    """A real `python -m sidecar serve`: its RSS after the first sync and `idle` quiet seconds."""
    import grpc
    import yaml

    cfg_path = tmp / "serve.yaml"
    data = tmp / "serve-data"
    cfg_path.write_text(yaml.safe_dump({
        "environment": "bench-serve", "data_dir": str(data),
        "flow_app": {"url": nr_url, "token": "global.SECRETS.nodered.token"},
        "secrets": {"dir": str(secrets)},
        "repository": {"protocol": "file", "url": repo_url, "branch": "main"},
        "sync": {"paused": False},
        "api": {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0"},
    }))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "sidecar", "serve", "--config", str(cfg_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    seen: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            seen.append(line)
            lines.put(line)

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            try:
                m = re.search(r"gRPC :(\d+), HTTP :(\d+)", lines.get(timeout=1))
                port = m and int(m.group(1))
            except queue.Empty:
                if proc.poll() is not None:
                    time.sleep(0.2)
                    raise RuntimeError(f"flow-gitops serve exited with {proc.returncode}:\n{''.join(seen[-30:])}")
        if port is None:
            raise RuntimeError("flow-gitops serve did not report its ports")
        token = (data / "api-token").read_text().strip()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pb_grpc.GitOpsServiceStub(ch)
            md = [("authorization", f"Bearer {token}")]

            def synced() -> bool:
                st = stub.GetStatus(pb.GetStatusRequest(), metadata=md).status
                return st.state == pb.SYNC_STATE_IN_SYNC and not st.phase and bool(st.local.sha)

            wait_until(synced, 60, "serve's first sync", 0.1)
        synced = time.monotonic() - t0
        time.sleep(idle)
        kids = [{"pid": c, "comm": Path(f"/proc/{c}/comm").read_text().strip(), "rss_mb": round(vmrss_kb(c) / 1024, 1)}
                for c in children_of(proc.pid)]
        return {"rss_kb": vmrss_kb(proc.pid), "hwm_kb": vmrss_kb(proc.pid, "VmHWM"),
                "threads": int(next(li.split()[1] for li in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                                    if li.startswith("Threads:"))),
                "children": kids, "synced_after_s": round(synced, 2)}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(streams: int, web_streams: int, triggers: int, channels: int | None, idle: float, out: Path) -> dict:
    from sidecar.app import App
    from sidecar.core.config import from_dict
    from tests import flowgen
    from tests.apiserver import RunningSidecar
    from tests.servers.gitrepo import GitRepoFactory
    from tests.servers.nodered import NodeRedServer

    load_before = os.getloadavg()  # other work on the machine skews the latencies: recorded with them
    tmp = Path(tempfile.mkdtemp(prefix="flow-gitops-bench-streams-"))
    nr = NodeRedServer(tmp / "nr", admin_token=TOKEN).start()
    secrets = tmp / "secrets"
    (secrets / "nodered").mkdir(parents=True)
    (secrets / "nodered" / "token").write_text(TOKEN)
    remote = GitRepoFactory(tmp / "remote").create("flows")
    rs = None
    phases: dict[str, dict] = {}
    try:
        remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "initial")
        app = App(from_dict({
            "environment": "bench", "data_dir": str(tmp / "data"),
            "flow_app": {"url": nr.url, "token": "global.SECRETS.nodered.token"},
            "secrets": {"dir": str(secrets)},
            "repository": {"protocol": "file", "url": remote.file_url, "branch": "main"},
            "sync": {"paused": False},
            "api": {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0"},
        }), watch_deploys=False)
        probe = Probe(app)  # before the API server subscribes: this listener runs first
        rs = RunningSidecar(app)
        probe.wrap_hub(rs.server.hub)
        wait_until(lambda: idle_in_sync(rs.stub, rs.md), 60, "the first sync")
        phases["native"] = stream_phase(rs, probe, "grpc", streams, channels or streams, triggers)
        phases["native_small"] = stream_phase(rs, probe, "grpc", web_streams, channels or web_streams, triggers)
        phases["web"] = stream_phase(rs, probe, "web", web_streams, web_streams, triggers)
        rs.stop()
        rs = None
        serve = serve_idle(tmp, nr.url, secrets, remote.file_url, idle)
    finally:
        if rs is not None:
            rs.stop()
        nr.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    nat, small, web = phases["native"], phases["native_small"], phases["web"]
    idle_mb = serve["rss_kb"] / 1024
    results = {
        f"watch_native_{streams}_p50": {"value": nat["delivery_p50_ms"], "unit": "ms"},
        f"watch_native_{streams}_p99": {"value": nat["delivery_p99_ms"], "unit": "ms", "target": "<= 20",
                                        "pass": nat["delivery_p99_ms"] is not None and nat["delivery_p99_ms"] <= 20},
        f"watch_native_{streams}_missed": {"value": nat["missed"], "unit": "events", "target": "0", "pass": nat["missed"] == 0},
        f"watch_native_{streams}_trigger_p99": {"value": nat["trigger_p99_ms"], "unit": "ms"},
        f"watch_native_{web_streams}_p50": {"value": small["delivery_p50_ms"], "unit": "ms"},
        f"watch_native_{web_streams}_p99": {"value": small["delivery_p99_ms"], "unit": "ms"},
        f"watch_web_{web_streams}_p50": {"value": web["delivery_p50_ms"], "unit": "ms"},
        f"watch_web_{web_streams}_p99": {"value": web["delivery_p99_ms"], "unit": "ms"},
        f"watch_web_{web_streams}_missed": {"value": web["missed"], "unit": "events", "target": "0", "pass": web["missed"] == 0},
        "rss_per_stream": {"value": nat["rss_per_stream_kb"], "unit": "KB"},
        "serve_idle_rss": {"value": round(idle_mb, 1), "unit": "MB", "target": "<= 90", "pass": idle_mb <= 90},
        "_meta": {"streams": streams, "web_streams": web_streams, "triggers": triggers, "spacing_s": SPACING,
                  "cpus": os.cpu_count(), "python": sys.version.split()[0],
                  "loadavg_1m_before": round(load_before[0], 2), "loadavg_1m_after": round(os.getloadavg()[0], 2),
                  "client": "one separate process: grpc.aio for native, one thread per gRPC-web stream",
                  # the server's CPU per extra message sent (one event to one stream), from the two native runs
                  "server_cpu_per_message_us": round(1e6 * (nat["server_process_cpu_s"] - small["server_process_cpu_s"])
                                                     / max(1, nat["messages_received"] - small["messages_received"]), 1),
                  "phases": phases, "serve": serve},
    }
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer triggers and a shorter idle wait (well under 60 s)")
    p.add_argument("--streams", type=int, default=200, help="native gRPC streams (default 200)")
    p.add_argument("--web-streams", type=int, default=20, help="gRPC-web streams, and native ones to compare (default 20)")
    p.add_argument("--triggers", type=int, help="Pause/Resume RPCs, 100 ms apart (default 50, --quick 20)")
    p.add_argument("--channels", type=int, default=0, help="native connections shared by the streams (default: one each)")
    p.add_argument("--out", default=str(ROOT / "bench" / "streams-results.json"))
    p.add_argument("--client", choices=("grpc", "web"), help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    args = p.parse_args()
    token = os.environ.get("BENCH_STREAMS_TOKEN", "")
    if args.client == "grpc":
        asyncio.run(_client_grpc(args.target, token, args.streams, args.channels or args.streams))
        return 0
    if args.client == "web":
        _client_web(args.target, token, args.streams)
        return 0
    triggers = args.triggers or (20 if args.quick else 50)
    res = run(args.streams, args.web_streams, triggers, args.channels or None, 3.0, Path(args.out))
    print(f"{'figure':32} {'value':>12} {'target':>8}  pass")
    for name, r in res.items():
        if name.startswith("_"):
            continue
        print(f"{name:32} {str(r['value']) + ' ' + r['unit']:>12} {r.get('target', ''):>8}  {r.get('pass', '')}")
    meta = res["_meta"]
    print(f"\n{'phase':13} {'streams':>7} {'events':>6} {'pairs':>6} {'missed':>6} {'p50':>7} {'p99':>7} {'max':>7} "
          f"{'trig p99':>8} {'pub→loop p99':>12} {'loop→cli p99':>12} {'spread p99':>10} {'KB/stream':>9}")
    for name, ph in meta["phases"].items():
        v = {k: ("-" if x is None else x) for k, x in ph.items()}  # diagnostics may be absent
        print(f"{name:13} {v['streams']:>7} {v['status_events']:>6} {v['pairs']:>6} {v['missed']:>6} "
              f"{v['delivery_p50_ms']:>7} {v['delivery_p99_ms']:>7} {v['delivery_max_ms']:>7} {v['trigger_p99_ms']:>8} "
              f"{v['publish_to_loop_p99_ms']:>12} {v['loop_to_client_p99_ms']:>12} {v['fanout_spread_p99_ms']:>10} "
              f"{v['rss_per_stream_kb']:>9}")
        if ph["errors"]:
            print(f"  errors: {ph['errors']}")
    print(f"server CPU per message (one event to one native stream): {meta['server_cpu_per_message_us']} µs; "
          f"{meta['cpus']} CPUs, load average {meta['loadavg_1m_before']} before, {meta['loadavg_1m_after']} after")
    s = meta["serve"]
    print(f"\nserve: {s['rss_kb'] / 1024:.1f} MB RSS (peak {s['hwm_kb'] / 1024:.1f} MB, {s['threads']} threads), "
          f"children: {s['children'] or 'none'}; first sync after {s['synced_after_s']} s")
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
