"""Secret sources behind one small interface; values are read at use time.

A secret path `global.SECRETS.git.token` names:

* directory source: the file `<dir>/git/token` (the way a Kubernetes Secret volume
  mounts keys; dot-entries such as `..data` are ignored, trailing newline stripped);
* file source: `{"git": {"token": "…"}}` in a JSON or YAML file;
* environment source: the variable `<prefix>git__token`.

Reads happen on every use, so a rotated secret is picked up without a restart; a
watchdog observer tells listeners when a directory or file source changes.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping

import yaml

from ..core import secretpath

log = logging.getLogger("flow_gitops.secrets")

MAX_SECRET_BYTES = 1024 * 1024


class SecretSource:
    """Interface: `get(path)` → value or None; `paths()` → every secret path."""

    kind = "none"
    location = ""

    def get(self, path: str) -> str | None:
        return None

    def _leaves(self) -> Iterator[tuple[list[str], str]]:
        return iter(())

    def paths(self) -> list[str]:
        return sorted(secretpath.join(parts) for parts, _ in self._leaves())

    def exists(self, path: str) -> bool:
        return secretpath.is_secret_path(path) and self.get(path) is not None

    def suggest(self, prefix: str, limit: int = 50) -> list[str]:
        """Secret paths starting with `prefix` — names only, never values (S3)."""
        return [p for p in self.paths() if p.startswith(prefix)][:limit]

    def values(self) -> list[str]:
        """Every current value, for redaction only."""
        return [v for _, v in self._leaves() if v]


def _clean(value: str) -> str:
    return value[:-1] if value.endswith("\n") else value


class DirSecretSource(SecretSource):
    kind = "dir"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def _file(self, parts: list[str]) -> Path | None:
        candidate = self.root.joinpath(*parts)
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        # Kubernetes mounts keys as symlinks into ..data; anything resolving outside is refused.
        if self.root not in real.parents or not real.is_file():
            return None
        return real

    def get(self, path: str) -> str | None:
        if not secretpath.is_secret_path(path):
            return None
        f = self._file(secretpath.segments(path))
        if f is None:
            return None
        try:
            with f.open("rb") as fh:
                data = fh.read(MAX_SECRET_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_SECRET_BYTES:
            return None
        return _clean(data.decode("utf-8", "replace"))

    def _leaves(self) -> Iterator[tuple[list[str], str]]:
        if not self.root.is_dir():
            return
        seen: set[str] = set()
        # Kubernetes mounts keys as symlinks into ..data (also whole directories for nested
        # item paths): follow links, but only to places inside the root, and each once.
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen or not (real == str(self.root) or real.startswith(str(self.root) + os.sep)):
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).parts
            for name in filenames:
                if name.startswith("."):
                    continue
                parts = [*rel, name]
                path = secretpath.join(parts)
                if secretpath.is_secret_path(path):
                    value = self.get(path)
                    if value is not None:
                        yield parts, value


class FileSecretSource(SecretSource):
    kind = "file"

    def __init__(self, path: str | Path) -> None:
        self.file = Path(path).resolve()
        self.location = str(self.file)
        self._cache: tuple[tuple[int, int, int], dict] | None = None
        self._lock = threading.Lock()

    def _data(self) -> dict:
        try:
            st = self.file.stat()
        except OSError:
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._cache and self._cache[0] == key:
                return self._cache[1]
            try:
                text = self.file.read_text("utf-8")
                data = json.loads(text) if self.file.suffix == ".json" else yaml.safe_load(text)
            except (OSError, ValueError, yaml.YAMLError):
                log.warning("secret file %s could not be read or parsed", self.file)
                data = {}
            if not isinstance(data, dict):
                data = {}
            self._cache = (key, data)
            return data

    def get(self, path: str) -> str | None:
        if not secretpath.is_secret_path(path):
            return None
        node: object = self._data()
        for part in secretpath.segments(path):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, (dict, list)) or node is None:
            return None
        return str(node)

    def _leaves(self) -> Iterator[tuple[list[str], str]]:
        def walk(node: object, parts: list[str]) -> Iterator[tuple[list[str], str]]:
            if isinstance(node, dict):
                for k, v in node.items():
                    yield from walk(v, [*parts, str(k)])
            elif node is not None and not isinstance(node, list) and parts:
                if secretpath.is_secret_path(secretpath.join(parts)):
                    yield parts, str(node)

        yield from walk(self._data(), [])


class EnvSecretSource(SecretSource):
    kind = "env"

    def __init__(self, prefix: str, environ: Mapping[str, str]) -> None:
        self.prefix = prefix
        self.location = f"{prefix}*"
        self.environ = environ

    def get(self, path: str) -> str | None:
        if not secretpath.is_secret_path(path):
            return None
        return self.environ.get(self.prefix + "__".join(secretpath.segments(path)))

    def _leaves(self) -> Iterator[tuple[list[str], str]]:
        for name, value in self.environ.items():
            if name.startswith(self.prefix) and len(name) > len(self.prefix):
                parts = name[len(self.prefix):].split("__")
                if secretpath.is_secret_path(secretpath.join(parts)):
                    yield parts, value


class SecretWatcher:
    """Calls `on_change()` when a directory or file source changes on disk (watchdog)."""

    def __init__(self, source: SecretSource, on_change: Callable[[], None]) -> None:
        self.source = source
        self.on_change = on_change
        self._observer = None

    def start(self) -> None:
        if self.source.kind not in ("dir", "file"):
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):  # noqa: D401 - watchdog callback
                if event.event_type in ("opened", "closed_no_write"):
                    return
                watcher.on_change()

        target = self.source.location if self.source.kind == "dir" else str(Path(self.source.location).parent)
        if not os.path.isdir(target):
            return
        self._observer = Observer()
        self._observer.schedule(Handler(), target, recursive=self.source.kind == "dir")
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


def open_source(dir: str = "", file: str = "", env_prefix: str = "", environ: Mapping[str, str] | None = None) -> SecretSource:
    if dir:
        return DirSecretSource(dir)
    if file:
        return FileSecretSource(file)
    if env_prefix:
        return EnvSecretSource(env_prefix, environ if environ is not None else os.environ)
    return SecretSource()


class RedactingFilter(logging.Filter):
    """Replaces every current secret value in log records: a last line of defence (S5)."""

    def __init__(self, source: SecretSource) -> None:
        super().__init__()
        self.source = source

    def filter(self, record: logging.LogRecord) -> bool:
        values = [v for v in self.source.values() if len(v) >= 4]
        if not values:
            return True

        def scrub(text: str) -> str:
            for v in values:
                text = text.replace(v, "***")
            return text

        record.msg, record.args = scrub(record.getMessage()), None
        # Tracebacks are formatted after filters run: format, scrub and keep them as text.
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
