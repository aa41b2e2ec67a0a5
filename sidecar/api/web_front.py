"""The HTTP front end: gRPC-web (binary and text) for browsers, plus /healthz, /readyz, /metrics.

gRPC-web is served by connectrpc's ASGI application over the same `GitOpsApi` as the
native server. connectrpc speaks `application/grpc-web(+proto)`; the text variant
(`application/grpc-web-text`, base64 on the wire) is translated here. CORS is off
unless exact origins are configured.
"""
from __future__ import annotations

import base64
import hmac
from typing import Callable

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.rpc import error_details_pb2
from protobuf.wkt import Any as ConnectAny

from .core import ApiError, GitOpsApi
from .gen.flowgitops.v1 import gitops_connect, gitops_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["GitOpsService"]
SERVICE_PREFIX = f"/{SERVICE.full_name}/"
CORS_ALLOW_HEADERS = "authorization, content-type, x-grpc-web, x-user-agent, grpc-timeout"
CORS_EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin"


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def connect_error(err: ApiError) -> ConnectError:
    details = []
    if err.violations:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message) for v in err.violations])
        # connectrpc carries details as its own protobuf runtime's Any: pack the bytes ourselves.
        details.append(ConnectAny(type_url=f"type.googleapis.com/{bad.DESCRIPTOR.full_name}", value=bad.SerializeToString()))
    return ConnectError(Code[err.code], err.message, details=details)


def make_service(api: GitOpsApi):
    """An object with connectrpc's snake_case methods, each forwarding to `api`."""
    methods = {}
    for m in SERVICE.methods:
        impl = getattr(api, m.name)
        if m.server_streaming:
            async def stream(self, request, ctx, _impl=impl):
                try:
                    async for item in _impl(request):
                        yield item
                except ApiError as err:
                    raise connect_error(err) from None
            methods[snake(m.name)] = stream
        else:
            async def unary(self, request, ctx, _impl=impl):
                try:
                    return await _impl(request)
                except ApiError as err:
                    raise connect_error(err) from None
            methods[snake(m.name)] = unary
    return type("GitOpsConnectService", (), methods)()


class BearerAuth:
    """connectrpc metadata interceptor: runs before the request body is read."""

    def __init__(self, token: Callable[[], str]) -> None:
        self.token = token

    async def on_start(self, ctx) -> None:
        value = ctx.request_headers.get("authorization") or ""
        expected = self.token()
        if not (value.startswith("Bearer ") and expected and hmac.compare_digest(value[7:].encode(), expected.encode())):
            raise ConnectError(Code.UNAUTHENTICATED, "missing or invalid bearer token (authorization: Bearer <token>)")

    async def on_end(self, token, ctx, error) -> None:
        return None


async def _send_simple(send, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class HttpApp:
    """ASGI: routes the service to connectrpc and serves the plain HTTP endpoints."""

    def __init__(self, api: GitOpsApi, token: Callable[[], str], metrics_render: Callable[[], bytes],
                 ready: Callable[[], bool], cors_origins: list[str]) -> None:
        self.connect = gitops_connect.GitOpsServiceASGIApplication(make_service(api), interceptors=[BearerAuth(token)])
        self.metrics_render = metrics_render
        self.ready = ready
        self.cors = set(cors_origins)
        self.extra_routes: dict[str, Callable] = {}  # e.g. provider webhooks (later)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            return await _send_simple(send, 200, b"ok\n")
        if path == "/readyz":
            ok = self.ready()
            return await _send_simple(send, 200 if ok else 503, b"ready\n" if ok else b"not ready\n")
        if path == "/metrics" and method == "GET":
            return await _send_simple(send, 200, self.metrics_render(), "text/plain; version=0.0.4; charset=utf-8")
        if path in self.extra_routes:
            return await self.extra_routes[path](scope, receive, send)
        if not path.startswith(SERVICE_PREFIX):
            return await _send_simple(send, 404, b"not found\n")
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode()
        cors = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin"),
                (b"access-control-expose-headers", CORS_EXPOSE_HEADERS.encode())] if origin in self.cors else []
        if method == "OPTIONS":
            if not cors:
                return await _send_simple(send, 403, b"origin not allowed\n")
            return await _send_simple(send, 204, b"", headers=[*cors, (b"access-control-allow-methods", b"POST, OPTIONS"),
                                                           (b"access-control-allow-headers", CORS_ALLOW_HEADERS.encode()),
                                                           (b"access-control-max-age", b"600")])
        ctype = headers.get(b"content-type", b"").decode()
        if ctype.startswith("application/grpc-web-text"):
            return await self._grpc_web_text(scope, receive, send, cors)
        return await self.connect(scope, receive, _with_headers(send, cors))

    async def _grpc_web_text(self, scope, receive, send, cors) -> None:
        """Base64 in, base64 out, around the binary gRPC-web handler."""
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            raw = base64.b64decode(body, validate=False)
        except ValueError:
            return await _send_simple(send, 400, b"invalid base64 body\n")
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/grpc-web+proto"), (b"content-length", str(len(raw)).encode())]
        inner_scope = dict(scope, headers=headers)
        sent = False

        async def inner_receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        async def outer_send(message):
            if message["type"] == "http.response.start":
                hs = [(k, v) for k, v in message.get("headers", []) if k not in (b"content-type", b"content-length")]
                hs += [(b"content-type", b"application/grpc-web-text+proto"), *cors]
                message = dict(message, headers=hs)
            elif message["type"] == "http.response.body" and message.get("body"):
                message = dict(message, body=base64.b64encode(message["body"]))
            await send(message)

        await self.connect(inner_scope, inner_receive, outer_send)


def _with_headers(send, extra):
    if not extra:
        return send

    async def wrapped(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), *extra])
        await send(message)

    return wrapped
