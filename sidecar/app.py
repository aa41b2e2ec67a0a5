"""The composition root: the one place that builds and wires every part."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .adapters.alerts import AlertSender, AlertWatcher
from .adapters.git import GitSource
from .adapters.nodered import DeployWatcher, NodeRed
from .adapters.npm import Npm
from .catalogtool import load_catalog
from .adapters.runner import Runner
from .adapters.secrets import SecretSource, SecretWatcher, open_source
from .adapters.store import Store
from .configload import apply_saved
from .core.config import EDITABLE_SECTIONS, Config, ConfigError, Violation, deep_merge, merge, validate
from .core.errors import SyncError
from .core.status import Board
from .promote import Promoter
from .engine import IMPORT_ERRORS, Engine
from .service import Service

log = logging.getLogger("flow_gitops")

SAVED_CONFIG = "saved_config"


class DataDirBusy(RuntimeError):
    pass


class ConfigLocked(RuntimeError):
    """Saving was refused because sync is active (C4): pause first."""


class App:
    """Everything one sidecar needs, built from a `Config`. `start()`/`stop()` run the loop."""

    def __init__(self, cfg: Config, environ: dict | None = None, watch_deploys: bool = True, exclusive: bool = True) -> None:
        """`exclusive=False` is for read-only tools (status, jobs) beside a running sidecar."""
        environ = dict(os.environ if environ is None else environ)
        self.data_dir = Path(cfg.data_dir)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = None
        if exclusive:
            self._lock_fd = os.open(self.data_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise DataDirBusy(f"another sidecar is using the data directory {self.data_dir}") from None
        self.store = Store.open(self.data_dir)
        cfg = apply_saved(cfg, self.store.get(SAVED_CONFIG))
        self.cfg = cfg
        self.secrets: SecretSource = open_source(cfg.secrets.dir, cfg.secrets.file, cfg.secrets.env_prefix, environ)
        problems = validate(cfg, self.secrets.exists)
        if problems:
            self.close()
            raise ConfigError(problems)
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="flow-gitops-"))
        self.runner = Runner(environ)
        self.board = Board()
        self.git = GitSource(cfg.repository, self.data_dir, self.secrets, self.runner, self.runtime_dir)
        self.flowapp = NodeRed(cfg.flow_app.url, self._flowapp_token, cfg.flow_app.timeout, cfg.flow_app.confirm_timeout)
        self.npm = Npm(cfg.flow_app.user_dir, cfg.dependencies.registry, self._registry_token, self.runner,
                       self.runtime_dir / "npm", cfg.dependencies.install_timeout, cfg.dependencies.npm) if cfg.flow_app.user_dir else None
        self.catalog = load_catalog(cfg.dependencies.catalog)
        self.engine = Engine(cfg, self.store, self.git, self.flowapp, self.board, npm=self.npm, catalog=self.catalog)
        self.service = Service(self.engine, cfg.sync.interval)
        if cfg.mode in ("push", "bidirectional"):
            from .push import Pusher
            self.engine.pusher = Pusher(cfg, self.store, self.git, self.flowapp, self.board)
            self.engine.on_foreign_deploy = lambda rev: self.service.trigger("push")
        self.promoter = Promoter(cfg, self.git, self.flowapp,
                                 lambda: self.secrets.get(self.cfg.promotion.token or self.cfg.repository.password) or "")
        self.alerts = AlertSender([u.strip() for u in cfg.alerts.urls.split(",") if u.strip()], cfg.environment)
        self.service.on_alert = self.alerts.fire
        self.board.subscribe(AlertWatcher(self.alerts))
        self.secret_watcher = SecretWatcher(self.secrets, self._secrets_changed)
        self.config_listeners: list = []  # called (no arguments) after a saved configuration took effect
        self.deploy_watcher = DeployWatcher(cfg.flow_app.url, self._flowapp_token, self.engine.on_flowapp_deploy) if watch_deploys else None

    def save_config(self, changes: dict) -> dict:
        """Validate, persist and apply changes to the editable sections, then connect (C3, C4).

        Refused with `ConfigLocked` while sync is active. A first configuration starts
        paused. Returns {"remote_head": sha or "", "error": {"code", "message"} or None}.
        """
        unknown = [k for k in changes if k not in EDITABLE_SECTIONS]
        if unknown:
            raise ConfigError([Violation(k, "cannot be changed here (editable: repository, sync)") for k in unknown])
        with self.engine.lock:
            facts = self.board.facts()
            if facts.configured and not facts.paused:
                raise ConfigLocked("sync is active: pause it first, then change the configuration")
            new_cfg = merge(self.cfg, changes)
            problems = validate(new_cfg, self.secrets.exists)
            if problems:
                raise ConfigError(problems)
            first = not self.cfg.configured
            saved = deep_merge(self.store.get(SAVED_CONFIG) or {}, changes)
            self.store.put(SAVED_CONFIG, saved)
            repo_changed = new_cfg.repository != self.cfg.repository
            self.cfg = new_cfg
            if repo_changed:
                self.git.close()
                self.git = GitSource(new_cfg.repository, self.data_dir, self.secrets, self.runner, self.runtime_dir)
                self.store.delete("remote")
                self.store.delete(IMPORT_ERRORS)  # they named files of the old repository
                self.board.update(import_errors=[])
            self.engine.cfg, self.engine.git = new_cfg, self.git
            self.promoter.cfg, self.promoter.git = new_cfg, self.git
            self.service.interval = new_cfg.sync.interval
            if first:
                self.engine.set_paused(True)
            self.board.update(configured=new_cfg.configured, remote=None if repo_changed else self.board.facts().remote)
            for listener in self.config_listeners:
                listener()
            try:
                head = self.git.remote_head()
            except SyncError as err:
                self.board.update(last_error_code=err.code, last_error_message=err.message)
                return {"remote_head": "", "error": {"code": err.code, "message": err.message}}
            self.board.update(last_error_code="", last_error_message="")
            try:
                if not self.git.has_commit(head):
                    self.git.fetch()
                self.board.update(remote=self.git.commit_info(head))
            except SyncError:
                pass  # the head is known; details come with the next sync
            return {"remote_head": head, "error": None}

    def _registry_token(self) -> str:
        path = self.cfg.dependencies.registry_token
        return (self.secrets.get(path) or "") if path else ""

    def _flowapp_token(self) -> str:
        path = self.cfg.flow_app.token
        return (self.secrets.get(path) or "") if path else ""

    def _secrets_changed(self) -> None:
        log.info("secret source changed; new values apply from the next use")

    def start(self) -> None:
        self.engine.reconcile_after_crash()
        self.secret_watcher.start()
        if self.deploy_watcher is not None and self.cfg.configured:
            self.deploy_watcher.start()
        self.service.start()

    def stop(self, grace: float = 10.0) -> None:
        """Stop within `grace` seconds. A job still running then is abandoned: it stays
        recorded as running and the next start settles it (reconcile_after_crash)."""
        if not self.service.stop(grace):
            log.warning("a sync job is still running after %.0f s; abandoning it (the next start settles it)", grace)
            if self.deploy_watcher is not None:
                self.deploy_watcher.stop()
            self.secret_watcher.stop()
            return
        if self.deploy_watcher is not None:
            self.deploy_watcher.stop()
        self.secret_watcher.stop()
        self.close()

    def close(self) -> None:
        if getattr(self, "git", None) is not None:
            self.git.close()
        if getattr(self, "runtime_dir", None) is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
