"""Promotion (V6): selected flows of this environment → a branch, a commit and a pull /
merge request that puts them into another environment's folder of the split layout.

The target environment's sidecar (mode `promotion`, or `pull` with the split layout)
deploys its folder at the merged commit — exactly what was merged, including edits
made during review — through approval when it requires it. In `promotion` mode the
provider's "merged" webhook starts that sync at once (sidecar/api/webhooks.py).

**Idempotent across crashes and retries.** A promotion is two remote steps — push the
branch, open the request — and the process may die, or the provider may fail or lose
its answer, between or during them. The branch name is therefore derived from what
the branch proposes, not from the clock: `promote/<source>-to-<target>-<key>`, where
`<key>` hashes the target branch, its head commit the promotion starts from, the
target environment and every promoted file (path and content). A retry of the same
promotion computes the same name, so:

- the branch already on the remote is reused as it is (it is not pushed again, so
  edits a reviewer pushed to it are kept), and
- the open request from that branch is looked up through the provider's list call
  and returned; only when there is none is one opened (and a "duplicate" refusal
  is answered by looking again).

Nothing is kept in the state database for this: a retry after a crash, from a
restarted sidecar or even with a lost data directory finds the same branch and
request. The source Flow App's `rev` is deliberately not part of the key: it changes
with any deploy, also of flows that are not promoted. The base head *is*: once the
target branch moves (the request was merged, or the target changed), promoting again
is a new proposal on a new branch instead of a stale, already-merged one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import PurePosixPath

from .adapters import providers
from .adapters.git import GitSource
from .adapters.nodered import NodeRed
from .core import layout
from .core.config import Config
from .core.errors import GIT_PUSH_REJECTED, SyncError

AUTHOR = ("flow-gitops", "flow-gitops@localhost")
log = logging.getLogger("flow_gitops.promote")


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
        if (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", target_env or "")
                or layout.slug(target_env) == layout.slug(self.cfg.environment)):  # "Test" is test's own folder
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
        branch = self.branch_name(target_env, head, files.files)
        tip = self._push_once(branch, commit, head)
        client = providers.client_for(self.cfg.repository.url, self.token, self.cfg.repository.provider,
                                      api_base=self.cfg.promotion.api_base or None)
        pr = self._open_once(client, branch, title, body or f"Flows promoted by flow-gitops from `{self.cfg.environment}` "
                                                            f"(revision {rev[:12]}) into `{base}/`.")
        return {"branch": branch, "commit": tip, "number": pr.number, "url": pr.url, "files": sorted(files.files)}

    def branch_name(self, target_env: str, head: str, files: dict[str, str]) -> str:
        """The promotion branch: the same for a retry of the same promotion (see the module
        docstring), another one as soon as the target branch or a promoted file differs."""
        key = hashlib.sha256()
        for part in (self.cfg.repository.branch, head, target_env):
            key.update(part.encode("utf-8") + b"\0")
        for path in sorted(files):
            key.update(path.encode("utf-8") + b"\0" + hashlib.sha256(files[path].encode("utf-8")).digest())
        return f"promote/{layout.slug(self.cfg.environment)}-to-{layout.slug(target_env)}-{key.hexdigest()[:12]}"

    def _push_once(self, branch: str, commit: str, head: str) -> str:
        """Push `commit` as `branch` unless an earlier attempt already did; the branch's tip."""
        tip = self.git.branch_head(branch)
        if tip is not None:
            self._check_reusable(branch, commit, head)
            log.info("promotion branch %s already on the remote at %s: reused", branch, tip[:12])
            return tip
        try:
            self.git.push(commit, branch=branch)
        except SyncError as err:
            if err.code != GIT_PUSH_REJECTED:
                raise
            tip = self.git.branch_head(branch)  # pushed in the meantime by another attempt
            if tip is None:
                raise
            return tip
        return commit

    def _check_reusable(self, branch: str, commit: str, head: str) -> None:
        """A branch is reused only when it starts with our own promotion commit: made by
        flow-gitops on `head`, with exactly the tree this promotion writes (reviewers' later
        commits are fine). The name can be computed by anyone who reads the repository: a branch
        someone else prepared under it must not be proposed in our name."""
        commits = self.git.branch_commits(branch, head)
        ours = commits[0] if commits else None
        if not (ours and ours["parents"] == [head] and ours["tree"] == self.git.tree_of(commit)
                and ours["author_email"] == AUTHOR[1] and "\nFlow-App-Promotion: " in ours["message"]):
            raise SyncError("promotion_branch_exists", f"the branch {branch} already exists on the remote and does not start with "
                                                 "this promotion's own commit; it is not reused: delete it and promote again",
                            retryable=False)

    def _open_once(self, client: providers.ProviderClient, branch: str, title: str, body: str) -> providers.PullRequest:
        """The open request from `branch`: found when an earlier attempt opened it, else opened."""
        target = self.cfg.repository.branch
        existing = client.find_open_pull_request(base=target, head=branch)
        if existing is not None:
            log.info("promotion branch %s already has request #%d: returned", branch, existing.number)
            return existing
        try:
            return client.open_pull_request(base=target, head=branch, title=title, body=body)
        except SyncError as err:
            if err.code != providers.PROVIDER_REJECTED:
                raise
            # A duplicate (opened by an attempt whose answer was lost, in between): take it.
            existing = client.find_open_pull_request(base=target, head=branch)
            if existing is None:
                raise
            return existing

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
