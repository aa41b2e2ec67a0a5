"""Bare "remote" repositories for tests, driven by the git CLI.

::

    factory = GitRepoFactory(tmp_path / "remotes")
    repo = factory.create("flows")                    # <root>/flows.git, branch main
    sha1 = repo.commit({"flows.json": "[]"}, "init")
    sha2 = repo.commit({"flows.json": None}, "delete")  # None deletes
    sha3 = repo.force_push_rewrite({"a.txt": "x"}, "rewrite")  # parent != sha2

The bare repositories live directly under ``root`` (so ``root`` can be the
``project_root`` of :class:`~tests.servers.githttp.GitHttpServer` or the
``repo_root`` of :class:`~tests.servers.sshgit.SshGitServer`).  Commits are
made in a private work clone under ``root/.work/<name>`` and pushed to the
bare repository, exactly as a developer would.  Every git call uses a
hermetic environment: no system or user config (``HOME`` points at
``root/.home``), no inherited ``GIT_*`` variables.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["GitRepoFactory", "RemoteRepo", "hermetic_git_env"]

DEFAULT_AUTHOR = ("Ada Lovelace", "ada@example.com")


def hermetic_git_env(home: str | os.PathLike[str], **extra: str) -> dict[str, str]:
    """``os.environ`` without ``GIT_*``/XDG config, plus a private ``HOME``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") and k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
               LC_ALL="C")
    env.update(extra)
    return env


class RemoteRepo:
    """One bare repository plus the private work clone used to commit to it."""

    def __init__(self, factory: "GitRepoFactory", name: str, path: Path) -> None:
        self.factory = factory
        self.name = name
        self.path = path
        self._work = factory.root / ".work" / name

    @property
    def file_url(self) -> str:
        return self.path.as_uri()

    # -- queries ---------------------------------------------------------
    def head(self, branch: str = "main") -> str | None:
        """SHA of ``branch`` in the bare repository, or None if it does not exist."""
        r = self.factory.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}",
                             cwd=self.path, check=False)
        return r.stdout.strip() or None

    def read(self, path: str, branch: str = "main") -> bytes:
        """Contents of ``path`` at the tip of ``branch``."""
        return self.factory.git("show", f"refs/heads/{branch}:{path}", cwd=self.path,
                                text=False).stdout

    # -- mutations -------------------------------------------------------
    def commit(self, files: dict[str, str | bytes | None], message: str,
               author: tuple[str, str] = DEFAULT_AUTHOR, branch: str = "main") -> str:
        """Write/delete ``files`` on ``branch``, commit, push; return the new SHA.

        A branch that does not exist yet starts from ``main`` (or as a root
        commit when ``main`` does not exist either).  Raises ``ValueError``
        when the change set leaves the tree unchanged.
        """
        self._checkout(branch)
        return self._commit_and_push(files, message, author, branch, force=False)

    def force_push_rewrite(self, files: dict[str, str | bytes | None], message: str,
                           branch: str = "main",
                           author: tuple[str, str] = DEFAULT_AUTHOR) -> str:
        """Rewrite history: drop the tip of ``branch`` and force-push a new commit.

        The new commit's parent is the old tip's first parent (``reset --hard
        HEAD~1``), or it is a new root commit when the old tip had no parent,
        so the old tip is *not* an ancestor of the returned SHA.  ``files``
        are applied on top of that parent's tree.
        """
        old = self.head(branch)
        if old is None:
            raise LookupError(f"branch {branch!r} does not exist in {self.path}")
        self._checkout(branch)
        parent = self._git("rev-parse", "-q", "--verify", "HEAD~1", check=False).stdout.strip()
        if parent:
            self._git("reset", "-q", "--hard", parent)
        else:
            self._start_orphan(branch)
        return self._commit_and_push(files, message, author, branch, force=True)

    # -- internals -------------------------------------------------------
    def _git(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.factory.git(*args, cwd=self._work, **kw)

    def _checkout(self, branch: str) -> None:
        """Make the work clone a clean copy of the remote ``branch``."""
        if not (self._work / ".git").exists():
            self._work.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "--initial-branch=main")
            self._git("remote", "add", "origin", str(self.path))
        self._git("fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*")
        for base in (branch, "main"):
            if self._git("rev-parse", "-q", "--verify", f"refs/remotes/origin/{base}",
                         check=False).returncode == 0:
                self._git("checkout", "-q", "-f", "-B", branch, f"refs/remotes/origin/{base}")
                self._git("clean", "-q", "-f", "-d", "-x")
                return
        self._start_orphan(branch)

    def _start_orphan(self, branch: str) -> None:
        self._git("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        self._git("update-ref", "-d", f"refs/heads/{branch}")  # make it unborn
        self._git("read-tree", "--empty")
        self._git("clean", "-q", "-f", "-d", "-x")

    def _commit_and_push(self, files, message, author, branch, force: bool) -> str:
        for rel, content in files.items():
            target = self._work / rel
            if content is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            target.write_bytes(content)
        self._git("add", "-A")
        if self._git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
            unchanged = self._git("diff", "--cached", "--quiet", check=False).returncode == 0
        else:  # root commit: refuse an empty tree
            unchanged = not self._git("ls-files").stdout.strip()
        if unchanged:
            raise ValueError(f"commit {message!r} would not change anything")
        name, email = author
        self._git("commit", "-q", "--allow-empty-message", "-m", message, env_extra={
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
        })
        sha = self._git("rev-parse", "HEAD").stdout.strip()
        refspec = f"{'+' if force else ''}HEAD:refs/heads/{branch}"
        self._git("push", "-q", "origin", refspec)
        return sha


class GitRepoFactory:
    """Creates bare repositories ``<root>/<name>.git`` with default branch ``main``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.home = self.root / ".home"
        self.home.mkdir(exist_ok=True)
        self.repos: dict[str, RemoteRepo] = {}

    def create(self, name: str) -> RemoteRepo:
        """Create an empty bare repository (``http.receivepack=true``)."""
        dirname = name if name.endswith(".git") else f"{name}.git"
        path = self.root / dirname
        self.git("init", "-q", "--bare", "--initial-branch=main", str(path), cwd=self.root)
        self.git("config", "http.receivepack", "true", cwd=path)
        repo = RemoteRepo(self, name.removesuffix(".git"), path)
        self.repos[repo.name] = repo
        return repo

    def env(self, **extra: str) -> dict[str, str]:
        return hermetic_git_env(self.home, **extra)

    def git(self, *args: str, cwd: str | os.PathLike[str], check: bool = True,
            text: bool = True, env_extra: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
        """Run ``git args...`` hermetically; raise with stderr on failure."""
        r = subprocess.run(["git", *args], cwd=cwd, env=self.env(**(env_extra or {})),
                           stdin=subprocess.DEVNULL, capture_output=True, text=text,
                           timeout=60)
        if check and r.returncode != 0:
            err = r.stderr if text else r.stderr.decode(errors="replace")
            raise RuntimeError(f"git {' '.join(args)} failed ({r.returncode}): {err.strip()}")
        return r
