"""A running sidecar with its API (both front ends) for tests, on a private event loop thread."""
from __future__ import annotations

import asyncio
import threading

import grpc

from sidecar.api.gen.flowgitops.v1 import gitops_pb2_grpc
from sidecar.api.server import ApiServer
from sidecar.app import App
from tests.grpcweb import GrpcWebClient


class RunningSidecar:
    def __init__(self, app: App, heartbeat: float | None = None) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-loop", daemon=True)
        self.thread.start()
        self.server = ApiServer(app, heartbeat=heartbeat)
        self._call(self.server.start())
        app.start()
        self.token = self.server.token()
        self.grpc_target = f"127.0.0.1:{self.server.grpc_port}"
        self.http_url = f"http://127.0.0.1:{self.server.http_port}"
        self.channel = grpc.insecure_channel(self.grpc_target)
        self.stub = gitops_pb2_grpc.GitOpsServiceStub(self.channel)
        self.md = [("authorization", f"Bearer {self.token}")]
        self.web = GrpcWebClient(self.http_url, self.token)
        self.web_text = GrpcWebClient(self.http_url, self.token, text=True)
        self.stopped = False

    def _call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._call(self.server.stop())
        self.channel.close()
        self.app.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
