"""The repository, seen through a narrow interface: head, fetch, read, describe.

Network operations (`ls-remote`, `fetch`) go through the one `Runner` with a
wall-clock timeout and credentials passed only in the child's environment:

* HTTPS: an inline credential helper reads the username and token from the
  environment — never in the URL, the arguments or `.git/config`;
* SSH: a private ssh-agent holds the key; host keys are always checked against
  the configured known hosts (`StrictHostKeyChecking=yes`).

Objects are read with GitPython from a bare repository: nothing is checked out,
so a file in the repository can never be a symlink that escapes it.
"""
from __future__ import annotations

import logging
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import git as gitpython

from ..core import provider
from ..core.config import RepositoryConfig
from ..core.errors import (
    FILE_TOO_LARGE, GIT_AUTH, GIT_BRANCH_MISSING, GIT_ERROR, GIT_HOST_KEY, GIT_TIMEOUT, GIT_UNREACHABLE,
    GIT_PUSH_REJECTED, PATH_UNSAFE, SECRET_MISSING, SyncError,
)
from ..core.status import CommitInfo
from .runner import RunResult, Runner
from .secrets import SecretSource
from .smarthttp import SmartHttpProbe
from .sshagent import SshAgent

log = logging.getLogger("flow_gitops.git")

_HELPER = '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" "$FLOW_GITOPS_GIT_USERNAME" "$FLOW_GITOPS_GIT_PASSWORD"; }; f'
# Variables from the surrounding environment that could redirect or prompt.
_UNSET = ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND", "SSH_AUTH_SOCK", "GIT_DIR", "GIT_WORK_TREE", "GIT_SSL_CAINFO")


_NO_SPACE = ("no space left on device", "out of diskspace", "disk quota exceeded")


def server_name(url: str) -> str:
    """host[:port] of a repository URL (for messages): `https://h:1/x`, `ssh://u@h:2/x`, `u@h:x`."""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host
    return url.rpartition("@")[2].partition(":")[0] if ":" in url else ""


def classify(stderr: str, server: str = "") -> tuple[str, str]:
    """A reason code and a short message for a failed git network command.

    `server` (host[:port]) is named in network messages; the quoted git line is the first
    one that says what went wrong (a refused connection, a reset), not git's last words
    ("unpack-objects failed", "and the repository exists.")."""
    s = stderr.lower()
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    full = next((x for x in lines if any(n in x.lower() for n in _NO_SPACE)), "")
    if full and not full.lower().startswith("remote:"):
        return GIT_ERROR, f"no space left on device: git could not write to the local repository in data_dir ({full[:200]})"
    if "couldn't find remote ref" in s:
        return GIT_BRANCH_MISSING, "the branch does not exist in the repository (names are case-sensitive)"
    if "remote host identification has changed" in s or "host key verification failed" in s or "no matching host key" in s:
        return GIT_HOST_KEY, "the SSH host key of the Git server is not the one in known_hosts (refusing to connect)"
    if "authentication failed" in s or "permission denied" in s or "could not read username" in s or "invalid username or password" in s or "http basic: access denied" in s:
        return GIT_AUTH, "the Git server refused the credentials"
    if "returned error: 403" in s:
        return GIT_AUTH, "the Git server refused access (HTTP 403)"
    if "returned error: 404" in s or "repository not found" in s or "does not appear to be a git repository" in s or "no such repository" in s:
        return GIT_UNREACHABLE, "the repository was not found at the configured URL"
    if "certificate" in s or "ssl" in s and "verify" in s:
        return GIT_UNREACHABLE, "the Git server's TLS certificate is not trusted"
    needles = ("could not resolve", "connection refused", "connection timed out", "timed out", "couldn't connect",
               "network is unreachable", "connection reset", "early eof", "broken pipe", "operation too slow",
               "unable to access", "connection closed", "closed by remote host", "returned error: 5", "remote end hung up")
    if any(n in s for n in needles):
        first = next((x for x in lines if any(n in x.lower() for n in needles)), "")[:200]
        where = f" {server}" if server else ""
        return GIT_UNREACHABLE, f"the Git server{where} could not be reached: {first}"
    last = stderr.strip().splitlines()[-1][:300] if stderr.strip() else "git failed"
    return GIT_ERROR, last


class GitSource:
    """A bare clone of one branch of the configured repository."""

    def __init__(self, cfg: RepositoryConfig, data_dir: Path, secrets: SecretSource, runner: Runner, runtime_dir: Path) -> None:
        self.cfg = cfg
        self.git_dir = data_dir / "repo.git"
        self.secrets = secrets
        self.runner = runner
        self.runtime_dir = runtime_dir
        self.agent = SshAgent(runtime_dir / "ssh", runner)
        self.round_trips = 0  # network commands run (ls-remote + fetch), for tests and metrics
        self.provider = provider.detect(cfg.url, cfg.provider)
        self.server = server_name(cfg.url)  # host[:port], named in network errors
        self._repo_obj: gitpython.Repo | None = None
        self._probe = SmartHttpProbe(cfg.url, cfg.ca_file) if cfg.protocol == "https" else None

    # --- plumbing ----------------------------------------------------------
    def _secret(self, field: str) -> str:
        path = getattr(self.cfg, field)
        if not path:
            return ""
        value = self.secrets.get(path)
        if value is None:
            raise SyncError(SECRET_MISSING, f"repository.{field}: {path} does not exist in the secret source", retryable=True)
        return value

    def _env(self) -> tuple[dict[str, str], list[str]]:
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "LC_ALL": "C",
            "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
            "GIT_HTTP_LOW_SPEED_TIME": str(int(max(5, min(30, self.cfg.timeout)))),
        }
        secrets: list[str] = []
        if self.cfg.protocol == "https":
            user, password = self._secret("username"), self._secret("password")
            env.update({
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": "",
                "GIT_CONFIG_KEY_1": "credential.helper", "GIT_CONFIG_VALUE_1": _HELPER,
                "FLOW_GITOPS_GIT_USERNAME": user, "FLOW_GITOPS_GIT_PASSWORD": password,
            })
            if self.cfg.ca_file:
                env["GIT_SSL_CAINFO"] = self.cfg.ca_file
            elif os.environ.get("GIT_SSL_CAINFO"):
                env["GIT_SSL_CAINFO"] = os.environ["GIT_SSL_CAINFO"]
            secrets += [user, password]
        elif self.cfg.protocol == "ssh":
            key, passphrase = self._secret("ssh_key"), self._secret("ssh_passphrase")
            secrets += [key, passphrase]
            sock = self.agent.ensure_key(key, passphrase, timeout=min(30.0, self.cfg.timeout))
            known = self._known_hosts_file()
            opts = [
                "ssh", "-F", "/dev/null", "-o", f"IdentityAgent={sock}", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
                "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR",
            ]
            env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(o) for o in opts)
        return env, secrets

    def _known_hosts_file(self) -> str:
        if not self.cfg.known_hosts:
            return self.cfg.known_hosts_file
        # Host keys are public; they are written only to the private runtime dir.
        text = self._secret("known_hosts")
        path = self.runtime_dir / "known_hosts"
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text + "\n":
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text + "\n")
            os.replace(tmp, path)
        return str(path)

    def _run(self, args: list[str], network: bool = False, timeout: float | None = None, extra_env: dict | None = None,
             stdin: bytes | None = None, config: tuple[str, ...] = ()) -> RunResult:
        env, secrets = self._env() if network else ({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C"}, [])
        env.update(extra_env or {})
        if network:
            self.round_trips += 1
        limit = timeout or self.cfg.timeout
        options = [x for kv in config for x in ("-c", kv)]
        res = self.runner.run(["git", f"--git-dir={self.git_dir}", *options, *args], timeout=limit,
                              env=env, secrets=secrets, unset=_UNSET, stdin=stdin)
        if res.timed_out:
            where = f" with the Git server {self.server}" if network and self.server else ""
            raise SyncError(GIT_TIMEOUT, f"git {args[0]}{where} timed out: it took longer than {limit:g} s and was stopped")
        return res

    def _ensure_repo(self) -> None:
        if not (self.git_dir / "HEAD").exists():
            self.git_dir.parent.mkdir(parents=True, exist_ok=True)
            res = self.runner.run(["git", "init", "-q", "--bare", str(self.git_dir)], timeout=30,
                                  env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}, unset=_UNSET)
            if not res.ok:
                raise SyncError(GIT_ERROR, f"could not create the local repository: {res.stderr.strip()[:200]}")
        current = self._run(["config", "--get", "remote.origin.url"])
        if current.stdout.decode().strip() != self.cfg.url:
            self._run(["config", "remote.origin.url", self.cfg.url])

    # --- the interface -----------------------------------------------------
    def remote_head(self) -> str:
        """The branch head on the remote: one round trip, nothing fetched."""
        ref = f"refs/heads/{self.cfg.branch}"
        if self._probe is not None:
            refs = self._probe.refs(self._secret("username"), self._secret("password"), min(30.0, self.cfg.timeout))
            if refs is not None:
                self.round_trips += 1
                if ref not in refs:
                    raise SyncError(GIT_BRANCH_MISSING, f"branch {self.cfg.branch!r} does not exist in the repository (names are case-sensitive)")
                return refs[ref]
        self._ensure_repo()
        res = self._run(["ls-remote", "--exit-code", "origin", ref], network=True)
        if res.returncode == 2:
            raise SyncError(GIT_BRANCH_MISSING, f"branch {self.cfg.branch!r} does not exist in the repository (names are case-sensitive)")
        if not res.ok:
            code, message = classify(res.stderr, self.server)
            log.info("git ls-remote failed (%s): %s", code, res.stderr.strip()[-500:])
            raise SyncError(code, message)
        for line in res.stdout.decode().splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                return sha
        raise SyncError(GIT_BRANCH_MISSING, f"branch {self.cfg.branch!r} does not exist in the repository (names are case-sensitive)")

    def branch_head(self, branch: str) -> str | None:
        """The tip of another branch on the remote (one `ls-remote`), or None when the
        remote has no such branch. Promotion uses it to find a branch an earlier attempt
        already pushed."""
        self._ensure_repo()
        ref = f"refs/heads/{branch}"
        res = self._run(["ls-remote", "--exit-code", "origin", ref], network=True)
        if res.returncode == 2:
            return None
        if not res.ok:
            code, message = classify(res.stderr, self.server)
            raise SyncError(code, message)
        for line in res.stdout.decode().splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                return sha
        return None

    def branch_commits(self, branch: str, since: str) -> list[dict]:
        """Fetch another branch of the remote and list its commits not in `since`, oldest first:
        {"sha", "parents", "tree", "author_email", "message"}. Promotion checks with it that a
        branch it would reuse really carries its own commit."""
        local = f"refs/flow-gitops/branches/{branch}"
        self._fetch_ref(branch, local)
        out = self._run(["log", "--reverse", "--format=%H%x00%P%x00%T%x00%ae%x00%B%x01", f"{since}..{local}"])
        commits = []
        for entry in out.stdout.decode("utf-8", "replace").split("\x01"):
            parts = entry.strip("\n").split("\x00")
            if len(parts) == 5:
                commits.append({"sha": parts[0], "parents": parts[1].split(), "tree": parts[2],
                                "author_email": parts[3], "message": parts[4]})
        return commits

    def tree_of(self, commit: str) -> str:
        out = self._run(["rev-parse", "--verify", "--quiet", f"{commit}^{{tree}}"])
        return out.stdout.decode().strip() if out.ok else ""

    def has_commit(self, sha: str) -> bool:
        return bool(sha) and (self.git_dir / "HEAD").exists() and self._run(["cat-file", "-e", f"{sha}^{{commit}}"]).ok

    def fetch(self) -> str:
        """Fetch the branch (following force pushes) and return the fetched head."""
        b = self.cfg.branch
        self._fetch_ref(b, f"refs/remotes/origin/{b}")
        out = self._run(["rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{b}^{{commit}}"])
        if not out.ok:
            raise SyncError(GIT_BRANCH_MISSING, f"branch {b!r} was not found after fetching")
        return out.stdout.decode().strip()

    def _fetch_ref(self, branch: str, local: str) -> None:
        """Fetch the remote's `branch` into `local` (following force pushes)."""
        self._ensure_repo()
        # fetch.unpackLimit=1: the objects arrive as one pack that becomes visible only when it is
        # complete. Unpacked into loose objects, a fetch cut off mid-transfer (reset, timeout, full
        # disk) left the commit without its files, and has_commit() then skipped every later fetch.
        try:
            res = self._run(["fetch", "--no-tags", "--quiet", "origin", f"+refs/heads/{branch}:{local}"],
                            network=True, config=("fetch.unpackLimit=1", "gc.autoDetach=false"))
            if not res.ok:
                code, message = classify(res.stderr, self.server)
                raise SyncError(code, message)
        except SyncError:
            # one job at a time owns the repository: a pack still being written is ours, and dead
            for tmp in (self.git_dir / "objects" / "pack").glob("tmp_*"):
                tmp.unlink(missing_ok=True)
            raise
        self._forget_repo()

    def is_ancestor(self, older: str, newer: str) -> bool:
        if not self.has_commit(older):
            return False
        return self._run(["merge-base", "--is-ancestor", older, newer]).returncode == 0

    def _repo(self) -> gitpython.Repo:
        if self._repo_obj is None:
            self._repo_obj = gitpython.Repo(str(self.git_dir))
        return self._repo_obj

    def _forget_repo(self) -> None:
        # GitPython keeps `git cat-file` processes open; start fresh after a fetch.
        if self._repo_obj is not None:
            self._repo_obj.close()
            self._repo_obj = None

    def commit_info(self, sha: str) -> CommitInfo:
        c = self._repo().commit(sha)
        message = c.message if isinstance(c.message, str) else c.message.decode("utf-8", "replace")
        subject, _, body = message.strip("\n").partition("\n")
        date = datetime.fromtimestamp(c.authored_date, tz=timezone.utc).isoformat(timespec="seconds")
        return CommitInfo(
            sha=c.hexsha, author=c.author.name or "", email=c.author.email or "", date=date,
            subject=subject.strip(), body=body.strip("\n"), link=provider.commit_link(self.cfg.url, self.provider, c.hexsha),
        )

    def read(self, sha: str, relpath: str, max_bytes: int) -> bytes | None:
        """The file at `relpath` in commit `sha`; None when absent. Refuses escapes and links."""
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or ".." in pure.parts:
            raise SyncError(PATH_UNSAFE, f"{relpath!r} points outside the repository", retryable=False)
        parts = [p for p in pure.parts if p not in (".", "")]
        tree = self._repo().commit(sha).tree
        try:
            obj = tree.join("/".join(parts)) if parts else tree
        except KeyError:
            return None
        if obj.type != "blob":
            raise SyncError(PATH_UNSAFE, f"{relpath!r} is a {obj.type}, not a file", retryable=False)
        if obj.mode & 0o170000 == 0o120000:
            raise SyncError(PATH_UNSAFE, f"{relpath!r} is a symbolic link; links are not followed", retryable=False)
        if obj.size > max_bytes:
            raise SyncError(FILE_TOO_LARGE, f"{relpath} is {obj.size} bytes, above the {max_bytes}-byte limit", retryable=False)
        return obj.data_stream.read()

    # --- writing (PUSH mode) ---------------------------------------------------
    def fetch_or_empty(self) -> str:
        """Fetch the branch; "" when it does not exist yet (a first push creates it)."""
        try:
            return self.fetch()
        except SyncError as err:
            if err.code == GIT_BRANCH_MISSING or "couldn't find remote ref" in err.message:
                return ""
            raise

    def list_files(self, commit: str, prefix: str) -> list[str]:
        if not commit:
            return []
        # -z: names are NUL-separated and never C-quoted (a quoted "caf\303\251.json" would
        # not match the prefix and its flow would silently go missing)
        res = self._run(["ls-tree", "-r", "-z", "--name-only", commit, "--", prefix or "."])
        return [name for name in res.stdout.decode("utf-8", "surrogateescape").split("\0") if name] if res.ok else []

    def write_commit(self, base: str, files: dict[str, str], remove: list[str], message: str, author: tuple[str, str]) -> str:
        """A commit on top of `base` ("" for a first commit) with `files` written and `remove`
        deleted, made with git plumbing and a private index (no work tree). Returns `base`
        when nothing changes."""
        self._ensure_repo()
        index = self.runtime_dir / f"index-{os.getpid()}-{id(files)}"
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self._check(self._run(["read-tree", base] if base else ["read-tree", "--empty"], extra_env=env), "read-tree")
            lines = []
            for path, text in sorted(files.items()):
                blob = self._check(self._run(["hash-object", "-w", "--stdin"], stdin=text.encode("utf-8")), "hash-object")
                lines.append(f"100644 {blob}\t{path}\n")
            # mode 0 removes an entry; --index-info needs no work tree (this repository is bare)
            lines += [f"0 {'0' * 40}\t{path}\n" for path in remove]
            self._check(self._run(["update-index", "--index-info"], extra_env=env, stdin="".join(lines).encode("utf-8")), "update-index")
            tree = self._check(self._run(["write-tree"], extra_env=env), "write-tree")
        finally:
            index.unlink(missing_ok=True)
        if base:
            old_tree = self._check(self._run(["rev-parse", f"{base}^{{tree}}"]), "rev-parse")
            if old_tree == tree:
                return base
        name, email = author
        who = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        args = ["commit-tree", tree, *(["-p", base] if base else []), "-F", "-"]
        return self._check(self._run(args, extra_env=who, stdin=message.encode("utf-8")), "commit-tree")

    def push(self, commit: str, branch: str | None = None) -> None:
        """Push `commit` to the branch (or `branch`); a non-fast-forward rejection is `git_push_rejected`."""
        res = self._run(["push", "--porcelain", "origin", f"{commit}:refs/heads/{branch or self.cfg.branch}"], network=True)
        if res.ok:
            return
        text = res.stderr + res.stdout.decode("utf-8", "replace")
        if "non-fast-forward" in text or "[rejected]" in text or "fetch first" in text:
            raise SyncError(GIT_PUSH_REJECTED, "the branch moved on the remote (non-fast-forward); rebasing and retrying")
        code, message = classify(res.stderr, self.server)
        raise SyncError(code, message)

    @staticmethod
    def _check(res: RunResult, what: str) -> str:
        if not res.ok:
            raise SyncError(GIT_ERROR, f"git {what} failed: {res.stderr.strip()[-200:]}")
        return res.stdout.decode().strip()

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
        self._forget_repo()
        self.agent.stop()
