"""Command line: `flow-gitops serve | sync --once | plan | status | jobs | config validate`."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

from . import __version__, configload, logsetup
from .adapters.clock import iso
from .app import App, DataDirBusy
from .core.config import ConfigError, validate
from .core.errors import SyncError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML configuration file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. sync.interval=300")
    p.add_argument("--data-dir", help="override data_dir")


def _load(args) -> "configload.Config":
    return configload.load(args.config, os.environ, args.set, args.data_dir)


class DataDirUnusable(Exception):
    pass


def _inside(path, directory: str) -> bool:
    return bool(path and directory) and Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))


def _app(args, watch_deploys: bool = False, exclusive: bool = True) -> App:
    cfg = _load(args)
    try:
        app = App(cfg, watch_deploys=watch_deploys, exclusive=exclusive)
    except (sqlite3.Error, OSError) as exc:  # a full or read-only data directory before anything could start
        if isinstance(exc, OSError) and not _inside(getattr(exc, "filename", None), cfg.data_dir):
            raise  # not about the data directory (a missing catalog file, a full /tmp…)
        raise DataDirUnusable(f"the data directory {cfg.data_dir} cannot be used: {exc}"
                              + (" (no space left on device?)" if "full" in str(exc) or "I/O" in str(exc)
                                 or getattr(exc, "errno", None) == 28 else "")) from None
    logsetup.setup(cfg.log.level, cfg.log.format, app.secrets)
    return app


def cmd_serve(args) -> int:
    app = _app(args, watch_deploys=True)
    return asyncio.run(_serve(app))


async def _serve(app: App) -> int:
    from .api.server import ApiServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1 = Force Pull (e.g. from a post-receive hook next to a local repository).
    loop.add_signal_handler(signal.SIGUSR1, lambda: app.service.trigger("force"))
    server = ApiServer(app)
    try:
        await server.start()
    except (OSError, SystemExit) as exc:
        print(f"error: the API could not start: {exc}", file=sys.stderr)
        app.close()
        return EXIT_FAILED
    await asyncio.to_thread(app.start)
    print(f"flow-gitops {__version__} serving environment {app.cfg.environment!r}; state in {app.data_dir}; "
          f"gRPC :{server.grpc_port}, HTTP :{server.http_port}", file=sys.stderr, flush=True)
    await stop.wait()
    await server.stop()
    await asyncio.to_thread(app.stop)
    return EXIT_OK


def cmd_sync(args) -> int:
    app = _app(args)
    try:
        app.engine.reconcile_after_crash()
        job_id = app.engine.run(_trigger("force"))
        job = app.store.job(job_id)
    finally:
        app.close()
    if args.json:
        print(json.dumps(job.to_dict(), indent=2))
    else:
        line = f"job {job.id}: {job.status}"
        if job.to_commit:
            line += f" at {job.to_commit[:8]}"
        if job.error_code:
            line += f" — {job.error_code}: {job.error_message}"
        print(line)
    return EXIT_OK if job.status in ("succeeded", "noop", "pending_approval") else EXIT_FAILED


def _trigger(kind: str):
    from .core.schedule import Trigger
    return Trigger(kind)


def cmd_plan(args) -> int:
    app = _app(args)
    try:
        plan = app.engine.plan()
    except SyncError as err:
        print(f"error: {err.code}: {err.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        app.close()
    if args.json:
        print(json.dumps(plan, indent=2))
        return EXIT_OK
    c = plan["commit"]
    print(f"plan for {c['short']} {c['subject']!r} ({plan['flow_file']}): {plan['summary']}")
    for ch in plan["changes"]:
        print(f"  {ch['action']:8} {ch['kind']:8} {ch['label']} [{ch['id']}]")
    if plan["types_missing"]:
        print(f"  missing node types: {', '.join(plan['types_missing'])}")
    return EXIT_OK


def cmd_status(args) -> int:
    app = _app(args, exclusive=False)
    try:
        snap = app.board.current()
        jobs = [j.to_dict() for j in app.store.jobs(5)]
    finally:
        app.close()
    if args.json:
        print(json.dumps({"status": snap, "recent_jobs": jobs}, indent=2))
        return EXIT_OK
    print(f"state: {snap['state']}" + (f" ({snap['reason_code']}: {snap['reason_message']})" if snap["reason_code"] else ""))
    for side in ("remote", "local"):
        c = snap[side]
        print(f"{side:6}: " + (f"{c['short']} {c['subject']!r} by {c['author']} at {c['date']}" if c else "-"))
    if snap["drift"]:
        print(f"drift : {snap['drift'].get('message')}")
    for e in snap.get("import_errors") or []:
        print(f"import error: {e['path']}: {e['message']}")
    for j in jobs:
        print(f"job {j['id']}: {j['trigger']} {j['status']} {iso(j['started_at'])} {j['error_code']}")
    return EXIT_OK


def cmd_jobs(args) -> int:
    app = _app(args, exclusive=False)
    try:
        jobs = [j.to_dict() for j in app.store.jobs(args.limit)]
    finally:
        app.close()
    if args.json:
        print(json.dumps(jobs, indent=2))
    else:
        for j in jobs:
            print(f"{j['id']:>5} {iso(j['started_at'])} {j['trigger']:8} {j['status']:16} {j['from_commit'][:8]:8} → {j['to_commit'][:8]:8} {j['duration'] or '':>7} {j['error_code']}")
    return EXIT_OK


def cmd_config_validate(args) -> int:
    try:
        cfg = configload.load(args.file, os.environ, args.set)
    except ConfigError as err:
        for v in err.violations:
            print(f"invalid: {v.field}: {v.message}")
        return EXIT_CONFIG
    from .adapters.secrets import open_source
    source = open_source(cfg.secrets.dir, cfg.secrets.file, cfg.secrets.env_prefix, os.environ)
    problems = validate(cfg, source.exists)
    for v in problems:
        print(f"invalid: {v.field}: {v.message}")
    if problems:
        return EXIT_CONFIG
    print("configuration is valid")
    return EXIT_OK


def cmd_pause(args, paused: bool) -> int:
    app = _app(args, exclusive=False)
    try:
        if not app.cfg.configured:
            print("error: no repository is configured", file=sys.stderr)
            return EXIT_FAILED
        app.engine.set_paused(paused)
    finally:
        app.close()
    print("sync paused" if paused else "sync resumed (a running sidecar starts a sync within seconds)")
    return EXIT_OK


def cmd_catalog_build(args) -> int:
    import tempfile

    from . import catalogtool
    from .adapters.npm import Npm
    from .adapters.runner import Runner
    from .core.catalog import Catalog

    with tempfile.TemporaryDirectory() as tmp:
        npm = Npm("", args.registry or "", lambda: "", Runner(), Path(tmp) / "rt", 300.0, args.npm)
        cat, problems = catalogtool.build(args.packages, npm, Path(tmp) / "packs")
    for extra in args.merge:
        cat.merge(Catalog.from_json(json.loads(Path(extra).read_text())))
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    catalogtool.write(cat, Path(args.out), [f"catalog build ({len(args.packages)} packages)", *[f"merged {Path(m).name}" for m in args.merge]])
    print(f"wrote {args.out}: {len(cat.modules)} modules, {sum(len(m.types) for m in cat.modules.values())} types")
    return EXIT_OK


def cmd_catalog_import(args) -> int:
    from . import catalogtool
    from .core.catalog import Catalog

    try:
        cat = Catalog.from_json(json.loads(Path(args.file).read_text()))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for extra in args.merge:
        cat.merge(Catalog.from_json(json.loads(Path(extra).read_text())))
    catalogtool.write(cat, Path(args.out), [f"import {Path(args.file).name}", *[f"merged {Path(m).name}" for m in args.merge]])
    print(f"wrote {args.out}: {len(cat.modules)} modules, {sum(len(m.types) for m in cat.modules.values())} types")
    return EXIT_OK


def cmd_demo(args) -> int:
    from . import demo
    return demo.run(Path(args.dir).resolve(), args.port, args.check)


def _remote_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="host:port of a running sidecar's gRPC API (env FLOW_GITOPS_ADDRESS; default 127.0.0.1:8471)")
    p.add_argument("--token-file", help="file with the API token (env FLOW_GITOPS_TOKEN_FILE or FLOW_GITOPS_TOKEN; default data/api-token)")
    p.add_argument("--tls-ca", help="CA bundle when the API uses TLS")
    p.add_argument("--json", action="store_true", help="print the API's JSON")


def _local_or_remote(local):
    """`--config` works on the state directory directly; otherwise the command calls a running sidecar."""
    def dispatch(args) -> int:
        if getattr(args, "config", None):
            return local(args)
        from . import client
        return client.run(args)
    return dispatch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flow-gitops", description="GitOps for Node-RED Flow Apps",
                                epilog="Commands that talk to a running sidecar use --address/--token-file; "
                                       "with --config they work on the state directory instead.")
    p.add_argument("--version", action="version", version=f"flow-gitops {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the sync loop and the API"); _common(s); s.set_defaults(func=cmd_serve)
    s = sub.add_parser("sync", help="run one sync now and exit (local)"); _common(s)
    s.add_argument("--once", action="store_true", required=True, help="run one sync job (ignores the pause switch)")
    s.add_argument("--json", action="store_true"); s.set_defaults(func=cmd_sync)
    s = sub.add_parser("status", help="show the status"); _common(s); _remote_opts(s)
    s.set_defaults(func=_local_or_remote(cmd_status))
    s = sub.add_parser("pull", help="Force Pull: sync now, ignoring the countdown"); _remote_opts(s)
    s.add_argument("--wait", action="store_true", help="wait for the sync to finish; exit 1 if it failed")
    s.add_argument("--wait-timeout", type=float, default=300.0)
    s.set_defaults(func=_local_or_remote(None))
    s = sub.add_parser("plan", help="show what a sync would change (dry run)"); _common(s); _remote_opts(s)
    s.set_defaults(func=_local_or_remote(cmd_plan))
    s = sub.add_parser("pause", help="pause sync (nothing is applied until resume)"); _common(s); _remote_opts(s)
    s.set_defaults(func=_local_or_remote(lambda a: cmd_pause(a, True)))
    s = sub.add_parser("resume", help="resume sync"); _common(s); _remote_opts(s)
    s.set_defaults(func=_local_or_remote(lambda a: cmd_pause(a, False)))
    s = sub.add_parser("jobs", help="list sync jobs"); _common(s); _remote_opts(s)
    s.add_argument("--limit", type=int, default=20); s.set_defaults(func=_local_or_remote(cmd_jobs))
    s = sub.add_parser("retry", help="retry a failed job"); _remote_opts(s); s.add_argument("job", type=int)
    s.set_defaults(func=_local_or_remote(None))
    for name, text in (("approve", "approve the revision waiting for approval"), ("reject", "reject it")):
        s = sub.add_parser(name, help=text); _remote_opts(s)
        s.add_argument("commit", nargs="?", help="the commit you expect to be waiting (optional)")
        s.set_defaults(func=_local_or_remote(None))
    s = sub.add_parser("demo", help="run Node-RED + the sidecar + a local Git repository (source checkout)")
    s.add_argument("--dir", default="demo-run", help="working directory of the demo (recreated)")
    s.add_argument("--port", type=int, default=1880, help="Node-RED port (another free one if taken)")
    s.add_argument("--check", action="store_true", help="commit a change, wait until it runs, then exit")
    s.set_defaults(func=cmd_demo)
    cat = sub.add_parser("catalog", help="the node-type → module catalog").add_subparsers(dest="catalog_command", required=True)
    s = cat.add_parser("build", help="catalog entries from npm packages (names or .tgz files)")
    s.add_argument("packages", nargs="+"); s.add_argument("--registry", help="npm registry (default: npm's)")
    s.add_argument("--npm", default="npm"); s.add_argument("--merge", action="append", default=[], help="merge a catalog file (any shape)")
    s.add_argument("--out", required=True); s.set_defaults(func=cmd_catalog_build)
    s = cat.add_parser("import", help="turn a community catalogue (or .config.nodes.json) into a catalog")
    s.add_argument("file"); s.add_argument("--merge", action="append", default=[]); s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_catalog_import)
    c = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    s = c.add_parser("validate", help="check a configuration file"); s.add_argument("file")
    s.add_argument("--set", action="append", default=[]); s.set_defaults(func=cmd_config_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        for v in err.violations:
            print(f"invalid: {v.field}: {v.message}", file=sys.stderr)
        return EXIT_CONFIG
    except (DataDirBusy, DataDirUnusable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
