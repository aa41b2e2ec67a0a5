"""PUSH mode (V2, V3): every deploy in the Flow App becomes a commit in the repository.

A push job reads what the Flow App runs *now* (so a retry never writes older content
over a newer commit), lays it out (`single` or `split`, stable paths per flow), commits
on top of the remote head with git plumbing (no work tree) and a
`Flow-App-Origin: <environment>/<rev>` trailer, and pushes. A non-fast-forward
rejection is handled by redoing the commit on the new head. Git failures never touch
the Flow App: the service retries after 30 s, 2 min and 10 min, then raises the
`git_sync_failed` alert.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import PurePosixPath

from .adapters.git import GitSource
from .adapters.nodered import NodeRed
from .adapters.store import Store
from .core import flows as flowlib
from .core import layout
from .core.config import Config
from .core.errors import GIT_PUSH_REJECTED, SyncError
from .core.status import Board

log = logging.getLogger("flow_gitops.push")

PUSHED = "pushed"  # {"rev", "commit", "at"}
PATHS = "git_paths"  # flow id → git path (stable across renames)
APPLIED = "applied"
RETRY_DELAYS = (30.0, 120.0, 600.0)
AUTHOR = ("flow-gitops", "flow-gitops@localhost")


class Pusher:
    def __init__(self, cfg: Config, store: Store, git: GitSource, flowapp: NodeRed, board: Board, now=time.time) -> None:
        self.cfg, self.store, self.git, self.flowapp, self.board, self.now = cfg, store, git, flowapp, board, now

    def _base(self) -> str:
        return str(PurePosixPath(self.cfg.repository.path or "."))

    def _files(self, nodes: list[dict], head: str) -> tuple[dict[str, str], list[str], dict[str, str]]:
        repo = self.cfg.repository
        base = self._base()
        if repo.layout == "split":
            env_dir = str(PurePosixPath(base, layout.slug(self.cfg.environment)))
            out = layout.split_files(nodes, env_dir, self.store.get(PATHS) or {})
            existing = [p for p in self.git.list_files(head, env_dir)
                        if p.endswith(".json") and (p.startswith(f"{env_dir}/flows/") or p.startswith(f"{env_dir}/subflows/")
                                                    or p == f"{env_dir}/{layout.CONFIG_FILE}")]
            removed = [p for p in existing if p not in out.files]
        else:
            out = layout.single_files(nodes, base, repo.flow_file or "flows.json")
            removed = []
        pkg_path = str(PurePosixPath(base, "package.json"))
        existing_pkg = None
        if head:
            raw = self.git.read(head, pkg_path, 1024 * 1024)
            try:
                existing_pkg = json.loads(raw) if raw else None
            except ValueError:
                existing_pkg = None
        out.files[pkg_path] = layout.package_json(existing_pkg, self.cfg.environment, self._used_modules(nodes))
        return out.files, removed, out.paths

    def _used_modules(self, nodes: list[dict]) -> dict[str, str]:
        """Modules providing the node types the flows use (core Node-RED excluded), with versions."""
        by_type = self.flowapp.type_owners()
        used: dict[str, str] = {}
        for t in flowlib.types_needed(nodes):
            module, version = by_type.get(t, (None, ""))
            if module and module != "node-red":
                used[module] = version
        return used

    def run(self, job_id: int, detail: dict) -> str:
        """One push job; returns "succeeded" or "noop", raises SyncError."""
        nodes, rev = self.flowapp.get_flows()
        pushed = self.store.get(PUSHED) or {}
        if rev and rev == pushed.get("rev"):
            return "noop"
        for attempt in range(3):  # a non-fast-forward push is redone on the new head
            head = self.git.fetch_or_empty()
            files, removed, paths = self._files(nodes, head)
            changes = self._changes(nodes, head)
            message = layout.commit_message(self.cfg.environment, rev, changes)
            commit = self.git.write_commit(head, files, removed, message, AUTHOR)
            detail.update(files=sorted(files), removed=removed, changes=changes, rebased=attempt)
            if commit == head:
                self._record(rev, head, nodes, paths)
                return "noop"
            try:
                self.git.push(commit)
            except SyncError as err:
                if err.code == GIT_PUSH_REJECTED and attempt < 2:
                    log.info("push rejected (non-fast-forward); redoing the commit on the new head")
                    continue
                raise
            self.store.update_job(job_id, to_commit=commit, detail=detail)
            self._record(rev, commit, nodes, paths)
            log.info("push job=%s commit=%s files=%s removed=%s", job_id, commit[:8], len(files), len(removed))
            return "succeeded"
        raise SyncError(GIT_PUSH_REJECTED, "the branch kept moving on the remote; will retry")

    def _changes(self, nodes: list[dict], head: str) -> list[dict]:
        applied = self.store.get(APPLIED) or {}
        before: list[dict] = []
        if head and applied.get("commit") == head and applied.get("flows"):
            before = applied["flows"]
        plan = flowlib.make_plan(before, nodes)
        return [c.to_dict() for c in plan.changes]

    def _record(self, rev: str, commit: str, nodes: list[dict], paths: dict[str, str]) -> None:
        self.store.put(PATHS, paths)
        self.store.put(PUSHED, {"rev": rev, "commit": commit, "at": self.now()})
        info = self.git.commit_info(commit) if commit else None
        self.store.put(APPLIED, {"commit": commit, "rev": rev, "digest": flowlib.flows_digest(nodes), "at": self.now(),
                                 "flows": nodes, "commit_info": {k: v for k, v in (info.to_dict() if info else {}).items() if k != "short"}})
        if info:
            self.board.update(local=info, remote=info, last_error_code="", last_error_message="", last_success_at=self.now())
