"""Runs both front ends on one asyncio loop beside the sync thread."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

import grpc
import uvicorn
from grpc_health.v1 import health_pb2

from ..app import App
from ..metrics import Metrics
from . import convert
from .core import HEARTBEAT_SECONDS, GitOpsApi
from .gen.flowgitops.v1 import gitops_pb2 as pb
from .events import EventHub
from .grpc_front import SERVICE, build_server
from .web_front import HttpApp
from .webhooks import WebhookEndpoint

log = logging.getLogger("flow_gitops.api")


def load_or_create_token(path: Path) -> str:
    """The API token from `path`; a new random one (mode 0600) when the file is absent."""
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.info("created API token file %s", path)
    return token


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class ApiServer:
    def __init__(self, app: App, metrics: Metrics | None = None, heartbeat: float | None = None) -> None:
        self.app = app
        self.heartbeat = heartbeat
        self.metrics = metrics or Metrics()
        cfg = app.cfg.api
        self.token_file = Path(cfg.token_file or Path(app.cfg.data_dir) / "api-token")
        self._file_token = "" if cfg.token else load_or_create_token(self.token_file)
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task | None = None
        self.hub: EventHub | None = None
        self.webhooks: WebhookEndpoint | None = None
        self._unsubscribe = None

    def token(self) -> str:
        if self.app.cfg.api.token:
            return self.app.secrets.get(self.app.cfg.api.token) or ""
        return self._file_token

    def _ready(self) -> bool:
        return self._grpc is not None and self.app.service.running

    # Events are turned into messages once, here, and shared by every stream.
    def _on_job(self, job_id: int) -> None:
        job = self.app.store.job(job_id)
        if job is None:
            return
        self.metrics.job_changed(job)
        self.hub.publish("message", pb.WatchStatusResponse(job=convert.job(job)))

    def _on_status(self, snap: dict) -> None:
        self.metrics.status_changed(snap)
        self.hub.publish("message", pb.WatchStatusResponse(status=convert.status(snap, self.app.cfg.sync.interval)))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.hub = EventHub(loop)
        self.metrics.up.labels(self.app.cfg.environment, self.app.cfg.mode).set(1)
        self._unsubscribe = self.app.board.subscribe(self._on_status)
        self.app.store.on_job = self._on_job
        # Provider webhooks (POST /webhooks…): settles the generated secret before any RPC can ask for it.
        self.webhooks = WebhookEndpoint(self.app, self.metrics.webhook_request)
        api = GitOpsApi(self.app, self.hub, self.heartbeat or HEARTBEAT_SECONDS, webhooks=self.webhooks)
        cfg = self.app.cfg.api
        tls = None
        if cfg.tls_cert:
            cert, key = Path(cfg.tls_cert).read_bytes(), Path(cfg.tls_key).read_bytes()
            tls = grpc.ssl_server_credentials([(key, cert)])
        self._grpc, health_servicer = build_server(api, self.token)
        host, port = _split(cfg.grpc_listen)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.grpc_port = self._grpc.add_secure_port(target, tls) if tls else self._grpc.add_insecure_port(target)
        await self._grpc.start()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        await health_servicer.set(SERVICE.full_name, health_pb2.HealthCheckResponse.SERVING)

        self.metrics.subscribers.set_function(lambda: self.hub.subscribers)
        http_app = HttpApp(api, self.token, self.metrics.render, self._ready,
                           [o.strip() for o in cfg.cors_origins.split(",") if o.strip()])
        self.http_app = http_app
        http_app.extra_routes.update(self.webhooks.routes())
        host, port = _split(cfg.http_listen)
        ucfg = uvicorn.Config(http_app, host=host, port=port, log_level="warning", lifespan="off", ws="none",
                              access_log=False, ssl_certfile=cfg.tls_cert or None, ssl_keyfile=cfg.tls_key or None,
                              timeout_graceful_shutdown=2)
        self._http = uvicorn.Server(ucfg)
        self._http_task = asyncio.create_task(self._http.serve())
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()  # raises the bind error
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        self.http_port = self._http.servers[0].sockets[0].getsockname()[1]
        log.info("API: gRPC on %s:%s, HTTP (gRPC-web, /metrics, /healthz) on %s:%s",
                 _split(cfg.grpc_listen)[0], self.grpc_port, host, self.http_port)

    async def stop(self, grace: float = 2.0) -> None:
        if self.hub is not None:
            self.hub.close()  # streams end cleanly before the servers go
        if self._unsubscribe:
            self._unsubscribe()
        self.app.store.on_job = None
        if self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                await self._http_task
        if self._grpc is not None:
            await self._grpc.stop(grace)
            self._grpc = None
