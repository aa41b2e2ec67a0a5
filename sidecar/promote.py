"""Promotion (V6): selected flows of this environment → a branch, a commit and a pull /
merge request that puts them into another environment's folder of the split layout.

The target environment's sidecar (mode `promotion`, or `pull` with the split layout)
deploys its folder at the merged commit — exactly what was merged, including edits
made during review — through approval when it requires it.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import PurePosixPath

from .adapters import providers
from .adapters.git import GitSource
from .adapters.nodered import NodeRed
from .core import layout
from .core.config import Config
from .core.errors import SyncError

AUTHOR = ("flow-gitops", "flow-gitops@localhost")


def select(nodes: list[dict], flow_ids: list[str]) -> list[dict]:
    """The chosen flows with their nodes, the subflows they use (transitively) and the
    config nodes they reference."""
    by_id = {n["id"]: n for n in nodes}
    unknown = [i for i in flow_ids if by_id.get(i, {}).get("type") not in ("tab", "subflow")]
    if unknown:
        raise SyncError("promotion_invalid", f"not flows of this Flow App: {', '.join(unknown)}", retryable=False)
    wanted, queue = set(), list(flow_ids)
    while queue:
        cid = queue.pop()
        if cid in wanted:
            continue
        wanted.add(cid)
        for n in nodes:
            if n.get("z") == cid and n.get("type", "").startswith("subflow:"):
                queue.append(n["type"][len("subflow:"):])
    chosen = [n for n in nodes if n["id"] in wanted or n.get("z") in wanted]
    config_ids = {n["id"] for n in nodes if not n.get("z") and n.get("type") not in ("tab", "subflow")}
    text = json.dumps(chosen)
    chosen += [by_id[c] for c in sorted(config_ids) if f'"{c}"' in text]
    return chosen


class Promoter:
    def __init__(self, cfg: Config, git: GitSource, flowapp: NodeRed, token) -> None:
        self.cfg, self.git, self.flowapp, self.token = cfg, git, flowapp, token

    def promote(self, flow_ids: list[str], target_env: str, title: str = "", body: str = "") -> dict:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", target_env or "") or target_env == self.cfg.environment:
            raise SyncError("promotion_invalid", "the target environment must be another environment's name", retryable=False)
        nodes, rev = self.flowapp.get_flows()
        chosen = select(nodes, flow_ids)
        head = self.git.fetch()
        base = str(PurePosixPath(self.cfg.repository.path or ".", layout.slug(target_env)))
        existing = self._target_paths(head, base)
        files = layout.split_files(chosen, base, existing)
        config_path = str(PurePosixPath(base, layout.CONFIG_FILE))
        if config_path in files.files:  # merge our config nodes into the target's, by id
            theirs = json.loads(self.git.read(head, config_path, 16 * 1024 * 1024) or b"[]")
            ours = json.loads(files.files[config_path])
            merged = {n["id"]: n for n in theirs}
            merged.update({n["id"]: n for n in ours})
            files.files[config_path] = layout.dumps(list(merged.values()))
        labels = [n.get("label") or n.get("name") or n["id"] for n in nodes if n["id"] in flow_ids]
        title = title or f"Promote {', '.join(labels)} from {self.cfg.environment} to {target_env}"
        message = f"{title}\n\nFlow-App-Promotion: {self.cfg.environment}/{rev} -> {target_env}\n"
        commit = self.git.write_commit(head, files.files, [], message, AUTHOR)
        if commit == head:
            raise SyncError("promotion_invalid", f"{target_env} already has these flows as they are here", retryable=False)
        branch = f"promote/{layout.slug(self.cfg.environment)}-to-{layout.slug(target_env)}-{int(time.time())}"
        self.git.push(commit, branch=branch)
        client = providers.client_for(self.cfg.repository.url, self.token, self.cfg.repository.provider,
                                      api_base=self.cfg.promotion.api_base or None)
        pr = client.open_pull_request(base=self.cfg.repository.branch, head=branch, title=title,
                                      body=body or f"Flows promoted by flow-gitops from `{self.cfg.environment}` "
                                                   f"(revision {rev[:12]}) into `{base}/`.")
        return {"branch": branch, "commit": commit, "number": pr.number, "url": pr.url, "files": sorted(files.files)}

    def _target_paths(self, head: str, base: str) -> dict[str, str]:
        """flow id → path of the files already in the target folder (keep their paths)."""
        out = {}
        for p in self.git.list_files(head, base):
            if p.endswith(".json") and ("/flows/" in p or "/subflows/" in p):
                try:
                    first = json.loads(self.git.read(head, p, 16 * 1024 * 1024) or b"[]")[0]
                    out[first["id"]] = p
                except (ValueError, IndexError, KeyError, TypeError):
                    continue
        return out
