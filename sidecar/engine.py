"""The sync engine: one sync job, as an ordered list of steps, for PULL mode.

check (ls-remote) → fetch → plan (read flows + package.json, diff) → guard (drift
backup, missing types, approval) → deploy (Admin API, `flows` deployment type) →
confirm (the flows run) → record (applied commit, in one transaction with the job).

The engine is the only writer of sync state; the `Board` is the only writer of
status. Everything outside (git, Node-RED, storage, time) comes in as arguments.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from .adapters.git import GitSource
from .adapters.npm import Npm
from .adapters.npm import explain as explain_npm
from .adapters.nodered import NodeRed
from .adapters.store import Store
from .core import flows as flowlib
from .core import layout
from .core.catalog import Catalog
from .core.config import Config, parse_type_map
from .core.deps import DepPlan, plan_dependencies
from .core.errors import (
    FILE_TOO_LARGE, FLOWS_INVALID, FLOWS_MISSING, INTERRUPTED, PACKAGE_INVALID, PATH_UNSAFE, RECOVERY_FAILED, RECOVERY_FAILED_MESSAGE, TYPES_MISSING,
    SyncError,
)
from .core.schedule import Trigger
from .core.status import Board, CommitInfo
from .failpoints import failpoint

log = logging.getLogger("flow_gitops.sync")

APPLIED = "applied"  # {"commit", "rev", "digest", "at", "job", "commit_info"}
REMOTE = "remote"  # {"commit", "commit_info"}
PAUSED = "paused"
REJECTED = "rejected_commit"
IMPORT_ERRORS = "import_errors"  # [{"path", "message"}]: files the last read of the repository could not import
MAX_PACKAGE_BYTES = 1024 * 1024
# Triggers that may skip everything when the remote head is already applied.
CHEAP_TRIGGERS = ("timer", "startup", "resume", "webhook")
PUSH_TRIGGERS = ("push", "push_retry")


@dataclass
class Target:
    commit: str
    info: CommitInfo
    flows: list[dict]
    flow_file: str
    package: dict | None


class Engine:
    def __init__(self, cfg: Config, store: Store, git: GitSource, flowapp: NodeRed, board: Board, now=time.time,
                 npm: Npm | None = None, catalog: Catalog | None = None) -> None:
        self.cfg = cfg
        self.npm = npm
        self.catalog = catalog or Catalog()
        self.pusher = None  # set in push mode
        self.on_foreign_deploy = None  # push mode: called when someone deployed in the Flow App
        self.store = store
        self.git = git
        self.flowapp = flowapp
        self.board = board
        self.now = now
        self.deploying = False
        self.lock = threading.RLock()  # one job at a time; configuration swaps wait for it
        self._phase_name, self._phase_started = "check", None
        self.load_facts()

    # --- facts on start ----------------------------------------------------
    def applied(self) -> dict | None:
        return self.store.get(APPLIED)

    def load_facts(self) -> None:
        applied, remote = self.applied(), self.store.get(REMOTE)
        paused = self.store.get(PAUSED, self.cfg.sync.paused)
        pending = self.store.pending_jobs()
        last = next((j for j in self.store.jobs(20) if j.status in ("succeeded", "failed", "interrupted")), None)
        self.board.update(
            configured=self.cfg.configured,
            paused=bool(paused),
            mode=self.cfg.mode,
            environment=self.cfg.environment,
            local=CommitInfo.from_dict(applied["commit_info"]) if applied and applied.get("commit_info") else None,
            remote=CommitInfo.from_dict(remote["commit_info"]) if remote and remote.get("commit_info") else None,
            pending_commit=pending[-1].to_commit if pending else "",
            last_error_code=last.error_code if last and last.status != "succeeded" else "",
            last_error_message=last.error_message if last and last.status != "succeeded" else "",
            last_success_at=applied.get("at") if applied else None,
            import_errors=list(self.store.get(IMPORT_ERRORS) or []),
        )

    def reconcile_after_crash(self) -> list[int]:
        """Settle jobs that were running when the process died. Returns their ids.

        A job that got as far as deploying is checked against what the Flow App runs:
        if it runs the job's target, the job succeeded (recorded now, once); otherwise
        it is marked interrupted and the next sync does the work again.
        """
        settled = []
        for job in self.store.running_jobs():
            settled.append(job.id)
            target = job.detail.get("target_digest")
            if job.phase in ("deploy", "confirm", "record") and target:
                try:
                    current, rev = self.flowapp.get_flows()
                except SyncError:
                    current, rev = None, ""
                if current is not None and flowlib.flows_digest(current) == target:
                    info = job.detail.get("commit_info") or {"sha": job.to_commit}
                    record = {"commit": job.to_commit, "rev": rev, "digest": target, "at": self.now(), "job": job.id, "commit_info": info}
                    deployed = bool((job.detail.get("plan") or {}).get("changes")) or job.phase != "record"
                    detail = dict(job.detail, note="deploy confirmed after a restart" if deployed
                                  else "recorded after a restart (no flow changes to deploy)")
                    self.store.finish_job_and_put(job.id, "succeeded", APPLIED, record, detail=detail)
                    continue
            self.store.finish_job(job.id, "interrupted", error_code=INTERRUPTED,
                                  error_message=f"the sidecar stopped during the {job.phase} step; the next sync starts over")
        if settled:
            self.load_facts()
        return settled

    # --- controls ----------------------------------------------------------
    def stored_paused(self) -> bool:
        return bool(self.store.get(PAUSED, self.cfg.sync.paused))

    def set_paused(self, paused: bool) -> None:
        self.store.put(PAUSED, paused)
        self.board.update(paused=paused)

    def reject(self) -> int | None:
        with self.lock:
            return self._reject()

    def _reject(self) -> int | None:
        pending = self.store.pending_jobs()
        if not pending:
            return None
        for job in pending:
            self.store.finish_job(job.id, "rejected")
        self.store.put(REJECTED, pending[-1].to_commit)
        self.board.update(pending_commit="")
        return pending[-1].id

    # --- reading the repository ------------------------------------------
    def _repo_path(self, *parts: str) -> str:
        base = PurePosixPath(self.cfg.repository.path or ".")
        return str(base.joinpath(*parts))

    def read_target(self, commit: str) -> Target:
        pkg_bytes = self.git.read(commit, self._repo_path("package.json"), MAX_PACKAGE_BYTES)
        package = None
        if pkg_bytes is not None:
            try:
                package = json.loads(pkg_bytes.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise SyncError(PACKAGE_INVALID, f"{self._repo_path('package.json')} is not valid JSON: {exc}", retryable=False) from None
            if not isinstance(package, dict):
                raise SyncError(PACKAGE_INVALID, f"{self._repo_path('package.json')} must be a JSON object", retryable=False)
        if self.cfg.repository.layout == "split" or self.cfg.mode == "promotion":
            return Target(commit, self.git.commit_info(commit), self._read_split(commit), self._split_dir(), package)
        flow_file = self.cfg.repository.flow_file
        if not flow_file and package:
            named = ((package.get("node-red") or {}).get("settings") or {}).get("flowFile") if isinstance(package.get("node-red"), dict) else None
            if isinstance(named, str) and named:
                flow_file = named
        flow_file = flow_file or "flows.json"
        pure = PurePosixPath(flow_file)
        if pure.is_absolute() or ".." in pure.parts:
            raise SyncError(PATH_UNSAFE, f"the flows file {flow_file!r} points outside the repository", retryable=False)
        path = self._repo_path(flow_file)
        try:
            data = self.git.read(commit, path, flowlib.DEFAULT_MAX_FLOWS_BYTES)
            if data is None:
                raise SyncError(FLOWS_MISSING, f"{path} does not exist at commit {commit[:8]}", retryable=False)
            target_flows = flowlib.parse_flows(data, source=path)
        except SyncError as err:
            # V7: the one file of the single layout as an import error (a missing file is not one)
            problem = err.code in (FLOWS_INVALID, FILE_TOO_LARGE, PATH_UNSAFE)
            self._set_import_errors([layout.FileProblem(path, _without_path(err.message, path))] if problem else [])
            raise
        self._set_import_errors([])
        return Target(commit, self.git.commit_info(commit), target_flows, path, package)

    def _split_dir(self) -> str:
        return self._repo_path(layout.slug(self.cfg.environment))

    def _read_split(self, commit: str) -> list[dict]:
        """The flow set from the split layout: <path>/<environment>/flows|subflows/*.json + config-nodes.json.

        Every file that cannot be imported (misnamed, unreadable, invalid) is listed in the
        status (`import_errors`, V7) and nothing is applied while one remains: skipping a
        file would remove its flow from the Flow App.
        """
        base = self._split_dir()
        names, problems = layout.split_candidates(self.git.list_files(commit, base), base)
        if not names and not problems:
            self._set_import_errors([])
            raise SyncError(FLOWS_MISSING, f"no flow files under {base}/ at commit {commit[:8]}", retryable=False)
        files: dict[str, bytes] = {}
        refused: SyncError | None = None  # a link or an oversized file keeps its own reason code
        for path in names:
            try:
                files[path] = self.git.read(commit, path, flowlib.DEFAULT_MAX_FLOWS_BYTES) or b"[]"
            except SyncError as err:
                if err.code not in (PATH_UNSAFE, FILE_TOO_LARGE):
                    raise
                refused = refused or err
                problems.append(layout.FileProblem(path, _without_path(err.message, path)))
        nodes, invalid = layout.read_split(files)
        problems = sorted(problems + invalid, key=lambda p: p.path)
        self._set_import_errors(problems)
        if problems:
            raise SyncError(refused.code if refused else FLOWS_INVALID, layout.describe_problems(problems, base), retryable=False)
        flowlib.check_flows(nodes, source=f"{base}/")
        return nodes

    def _set_import_errors(self, problems: list) -> None:
        """V7: the files the last read could not import (kept across restarts); [] clears them."""
        errors = [p.to_dict() for p in problems]
        if errors != (self.store.get(IMPORT_ERRORS) or []):
            self.store.put(IMPORT_ERRORS, errors)
        self.board.update(import_errors=errors)

    def plan(self) -> dict:
        """Dry run: fetch the remote head and say what applying it would change."""
        with self.lock:
            return self._plan()

    def _plan(self) -> dict:
        head = self.git.remote_head()
        if not self.git.has_commit(head):
            head = self.git.fetch()
        target = self.read_target(head)
        current, _ = self.flowapp.get_flows()
        plan = flowlib.make_plan(current, target.flows, self.flowapp.node_types())
        out = plan.to_dict()
        out.update(commit=target.info.to_dict(), flow_file=target.flow_file, applied_commit=(self.applied() or {}).get("commit", ""))
        return out

    # --- one sync job ------------------------------------------------------
    def run(self, trigger: Trigger) -> int:
        with self.lock:
            return self._run(trigger)

    def _run(self, trigger: Trigger) -> int:
        applied = self.applied() or {}
        retry_of = int(trigger.detail) if trigger.kind == "retry" and trigger.detail.isdigit() else None
        job = self.store.start_job(trigger.kind, applied.get("commit", ""), retry_of=retry_of)
        started = time.monotonic()
        self.board.update(running="check", progress="", last_sync_at=self.now())
        detail: dict = {}
        try:
            if trigger.kind in PUSH_TRIGGERS or (self.cfg.mode == "push" and trigger.kind != "approve"):
                # push mode: everything is a push; bidirectional: deploys push, the rest imports
                status = self._push(job.id, detail)
            else:
                status = self._sync(job.id, trigger, applied, detail)
        except SyncError as err:
            facts = self.board.facts()
            self.store.finish_job(job.id, "failed", error_code=err.code, error_message=err.message, detail=detail)
            self.board.update(running="", progress="", last_error_code=err.code, last_error_message=err.message,
                              consecutive_failures=facts.consecutive_failures + 1)
            log.warning("sync job=%s trigger=%s result=error code=%s commit=%s duration=%.3fs message=%s",
                        job.id, trigger.kind, err.code, (self.store.job(job.id).to_commit or "")[:8],
                        time.monotonic() - started, err.message)
            return job.id
        except Exception as exc:  # a bug: keep the loop alive, record it, never leak details
            log.exception("sync job=%s failed unexpectedly", job.id)
            self.store.finish_job(job.id, "failed", error_code="internal_error", error_message=f"internal error ({type(exc).__name__})", detail=detail)
            self.board.update(running="", progress="", last_error_code="internal_error", last_error_message=f"internal error ({type(exc).__name__})")
            return job.id
        finally:
            self.deploying = False
        log.info("sync job=%s trigger=%s result=%s commit=%s duration=%.3fs", job.id, trigger.kind, status,
                 (self.store.job(job.id).to_commit or "")[:8], time.monotonic() - started)
        return job.id

    def _attempt_number(self, job_id: int, target: str) -> int:
        """1 for a first try; n+1 when the previous job failed on the same target commit."""
        previous = next((j for j in self.store.jobs(5) if j.id < job_id and j.status not in ("pending_approval",)), None)
        if previous and previous.status in ("failed", "interrupted") and previous.to_commit in ("", target):
            return previous.attempts + 1
        return 1

    def _push(self, job_id: int, detail: dict) -> str:
        if self.pusher is None:
            raise SyncError("mode_mismatch", "push jobs run only in push mode", retryable=False)
        self._phase(job_id, "push", detail)
        status = self.pusher.run(job_id, detail)
        self.store.finish_job(job_id, "succeeded" if status == "succeeded" else "noop", detail=detail)
        self.board.update(running="", last_error_code="", last_error_message="", consecutive_failures=0)
        return status

    def _phase(self, job_id: int, phase: str, detail: dict) -> None:
        now = time.monotonic()
        timings = detail.setdefault("timings_ms", {})
        if self._phase_started is not None:
            timings[self._phase_name] = round((now - self._phase_started) * 1000, 1)
        self._phase_name, self._phase_started = phase, now
        self.store.update_job(job_id, phase=phase, detail=detail)
        self.board.update(running=phase)
        failpoint(phase)  # tests: kill -9 here, the phase recorded and none of its work done

    def _sync(self, job_id: int, trigger: Trigger, applied: dict, detail: dict) -> str:
        facts = self.board.facts()
        pending = self.store.pending_jobs()
        self._phase_name, self._phase_started = "check", time.monotonic()
        head = self.git.remote_head()
        self.store.update_job(job_id, to_commit=head, attempts=self._attempt_number(job_id, head))
        remote_prev = (self.store.get(REMOTE) or {}).get("commit", "")

        # P2: nothing new → no fetch, no Flow App call, no deploy.
        quiet = trigger.kind in CHEAP_TRIGGERS and not facts.drift
        if quiet and head == applied.get("commit") and not pending:
            self.store.finish_job(job_id, "noop", detail=detail)
            self.board.update(running="", last_error_code="", last_error_message="", consecutive_failures=0)
            return "noop"
        if quiet and (head == self.store.get(REJECTED) or (pending and pending[-1].to_commit == head)):
            self.store.finish_job(job_id, "noop", detail={"note": "revision already waiting for approval or rejected"})
            self.board.update(running="")
            return "noop"

        commit = head
        if trigger.kind == "approve":
            if not pending:
                raise SyncError("nothing_to_approve", "there is no deploy request waiting for approval", retryable=False)
            commit = pending[-1].to_commit
            self.store.update_job(job_id, to_commit=commit)

        if not self.git.has_commit(commit):
            self._phase(job_id, "fetch", detail)
            fetched = self.git.fetch()
            if trigger.kind != "approve":
                commit = head = fetched
                self.store.update_job(job_id, to_commit=commit)
        # P3: a rewritten history is followed (we never merge) and reported.
        if remote_prev and remote_prev != head and not self.git.is_ancestor(remote_prev, head):
            rewritten = {"from": remote_prev, "to": head, "at": self.now()}
            detail["history_rewritten"] = rewritten
            self.board.update(history_rewritten=rewritten)
        remote_info = self.git.commit_info(head)
        self.store.put(REMOTE, {"commit": head, "commit_info": _info_dict(remote_info)})
        self.board.update(remote=remote_info)

        # V4: our own pushes (Flow-App-Origin trailer naming this environment) are never imported
        # back: the Flow App may already run something newer that is waiting to be pushed.
        origin = layout.origin(remote_info.body) if self.cfg.mode == "bidirectional" else None
        if origin and origin[0] == self.cfg.environment:
            self.store.finish_job(job_id, "noop", detail={"note": f"own commit ({origin[0]}/{origin[1][:8]}): not imported"})
            self.board.update(running="", local=remote_info, last_error_code="", last_error_message="")
            return "noop"

        self._phase(job_id, "plan", detail)
        target = self.read_target(commit)
        current, rev = self.flowapp.get_flows()
        types, loaded = self.flowapp.inventory()
        plan = flowlib.make_plan(current, target.flows, types)
        detail.update(plan=plan.to_dict(), flow_file=target.flow_file, target_digest=plan.target_digest,
                      commit_info=_info_dict(target.info))
        deps = self._plan_dependencies(target, plan, loaded, detail)

        # P7: flows changed in the Flow App since our last apply are saved before overwriting.
        current_digest = flowlib.flows_digest(current)
        if current and current_digest != plan.target_digest and current_digest != applied.get("digest"):
            reason = "drift" if applied else "first sync: flows that were running before"
            backup = self.store.add_backup(reason, rev, applied.get("commit", ""), current)
            detail["drift_backup"] = backup
            self.board.update(drift={"backup": backup, "rev": rev, "detected_at": self.now(),
                                     "message": "flows were changed in the Flow App since the last sync; a backup was saved"})

        hold = self.cfg.sync.dependency_policy == "hold"
        if deps.unresolved_types and hold:
            self.board.update(recovery={"unresolved_types": deps.unresolved_types, "failed_modules": [], "restart_required": []})
            raise SyncError(TYPES_MISSING, f"no known module provides node types {', '.join(deps.unresolved_types)}; "
                                           "the last good flows keep running (policy: hold)", retryable=False)

        # P8: with approval on, a new revision waits for a person.
        if self.cfg.sync.require_approval and trigger.kind != "approve":
            for old in pending:
                self.store.finish_job(old.id, "rejected", error_message="superseded by a newer revision")
            self.store.finish_job(job_id, "pending_approval", detail=detail)
            self.store.update_job(job_id, finished_at=None)
            self.board.update(running="", pending_commit=commit)
            return "pending_approval"

        if deps.installs:
            self._recover(job_id, deps, detail)
            types, _ = self.flowapp.inventory()
        still_missing = sorted(set(plan.types_needed) - types)
        if still_missing:
            if hold:
                self.board.update(recovery={"unresolved_types": still_missing, "failed_modules": [], "restart_required": []})
                raise SyncError(TYPES_MISSING, f"the Flow App lacks node types {', '.join(still_missing)}; "
                                               "the last good flows keep running (policy: hold)")
            detail["unknown_types"] = still_missing  # policy deploy: they show as unknown nodes

        new_rev = rev
        if plan.has_changes:
            self._phase(job_id, "deploy", detail)
            self.deploying = True
            new_rev = self.flowapp.deploy(target.flows, rev, "flows", expect_missing=frozenset(still_missing))
        self._phase(job_id, "record", detail)
        record = {"commit": commit, "rev": new_rev, "digest": plan.target_digest, "at": self.now(), "job": job_id,
                  "commit_info": _info_dict(target.info)}
        self.store.finish_job_and_put(job_id, "succeeded", APPLIED, record, detail=detail)
        failpoint("recorded")
        for old in pending:
            self.store.finish_job(old.id, "approved" if old.to_commit == commit else "rejected")
        facts = self.board.facts()
        restart = (facts.recovery or {}).get("restart_required") or []
        self.board.update(running="", local=target.info, last_error_code="", last_error_message="",
                          last_success_at=self.now(), consecutive_failures=0, drift=None, pending_commit="",
                          recovery={"unresolved_types": [], "failed_modules": [], "restart_required": restart,
                                    "installed": detail.get("installed", [])} if (restart or detail.get("installed")) else None)
        return "succeeded" if plan.has_changes else "succeeded (no flow changes)"

    # --- dependency recovery (D1–D5) -----------------------------------------
    def _plan_dependencies(self, target: Target, plan, loaded: dict[str, str], detail: dict) -> DepPlan:
        package_deps = {}
        if target.package and isinstance(target.package.get("dependencies"), dict):
            package_deps = {str(k): str(v) for k, v in target.package["dependencies"].items()}
        if self.npm is None:
            # No shared userDir: nothing can be installed; only node types are checked.
            package_deps = {m: s for m, s in package_deps.items() if m in loaded}
            on_disk = {}
        else:
            on_disk = self.npm.installed()
        installed = {**on_disk, **loaded}  # what Node-RED runs wins over what waits on disk
        deps = plan_dependencies(package_deps, installed, set(loaded), plan.types_missing, self.catalog,
                                 parse_type_map(self.cfg.dependencies.type_map))
        if deps.installs and self.npm is None:
            deps.unresolved_types = sorted(set(deps.unresolved_types) | {t for i in deps.installs for t in deps.provides.get(i.module, [])})
            deps.installs = []
            detail["dependencies_note"] = "flow_app.user_dir is not set: the sidecar cannot install modules"
        if deps.installs or deps.unresolved_types or deps.unsupported:
            detail["dependencies"] = deps.to_dict()
        return deps

    def _recover(self, job_id: int, deps: DepPlan, detail: dict) -> None:
        """Install what the plan needs, load it into Node-RED, report progress (D3, D4)."""
        self._phase(job_id, "recover", detail)
        attempts, backoff = self.cfg.dependencies.attempts, self.cfg.dependencies.retry_backoff
        log_lines = detail.setdefault("install_log", [])
        failed, restart, done = [], [], []
        n = len(deps.installs)
        try:
            for i, ins in enumerate(deps.installs, 1):
                for attempt in range(1, attempts + 1):
                    note = "" if attempt == 1 else f" (attempt {attempt} of {attempts})"
                    self.board.update(recovering=True, progress=f"installing {i} of {n}: {ins.target}{note}")
                    res = self.npm.install(ins.target)
                    output = (res.stderr + "\n" + res.stdout.decode("utf-8", "replace")).strip()
                    log_lines.append({"target": ins.target, "attempt": attempt, "rc": res.returncode,
                                      "seconds": round(res.duration, 2), "output": output[-1500:]})
                    self.store.update_job(job_id, detail=detail)
                    if res.ok:
                        break
                    if attempt < attempts:
                        time.sleep(backoff * (2 ** (attempt - 1)))
                else:
                    failed.append({"module": ins.target, "reason": explain_npm(output),
                                   "types": deps.provides.get(ins.module, [])})
                    continue
                version = self.npm.version_on_disk(ins.module)
                if ins.restart_required:
                    restart.append(f"{ins.module}@{version}")
                elif self.npm.is_node_module(ins.module):
                    self.flowapp.load_module(ins.module, version)
                done.append(f"{ins.module}@{version}")
        finally:
            self.board.update(recovering=False, progress="")
        detail["installed"], detail["restart_required"] = done, restart
        recovery = {"unresolved_types": sorted({t for f in failed for t in f["types"]} | set(deps.unresolved_types)),
                    "failed_modules": [f["module"] for f in failed], "restart_required": restart, "installed": done}
        self.board.update(recovery=recovery)
        if failed:
            detail["recovery_failed"] = failed
            reasons = "; ".join(f"{f['module']}: {f['reason']}" for f in failed)
            log.warning("recovery failed after %s attempts: %s", attempts, reasons)
            raise SyncError(RECOVERY_FAILED, RECOVERY_FAILED_MESSAGE)

    def on_flowapp_deploy(self, rev: str) -> None:
        """A deploy happened in the Flow App (comms): drift in pull mode, a push in push mode."""
        if self.deploying:
            return
        if self.cfg.mode in ("push", "bidirectional"):
            applied_rev = (self.applied() or {}).get("rev")
            if self.on_foreign_deploy is not None and rev not in ((self.store.get("pushed") or {}).get("rev"), applied_rev):
                self.on_foreign_deploy(rev)
            return
        applied = self.applied()
        if applied and rev and rev != applied.get("rev"):
            self.board.update(drift={"rev": rev, "detected_at": self.now(),
                                     "message": "flows were changed in the Flow App since the last sync"})


def _without_path(message: str, path: str) -> str:
    """An error message without the file name it starts with (the import error names the file)."""
    for head in (f"{path!r} ", f"{path}: ", f"{path} "):
        if message.startswith(head):
            message = message[len(head):]
            break
    return message.removeprefix("is ")


def _info_dict(info: CommitInfo) -> dict:
    d = info.to_dict()
    d.pop("short", None)
    return d
