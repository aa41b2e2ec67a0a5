"""The native gRPC front end (grpc.aio): the service, health, reflection, bearer auth."""
from __future__ import annotations

import hmac
from typing import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from .core import ApiError, GitOpsApi
from .gen.flowgitops.v1 import gitops_pb2 as pb
from .gen.flowgitops.v1 import gitops_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["GitOpsService"]
OPEN_METHODS = ("/grpc.health.v1.Health/",)


def rich_status(err: ApiError) -> grpc.Status:
    details = []
    if err.violations:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message) for v in err.violations])
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    return rpc_status.to_status(status_pb2.Status(code=getattr(code_pb2, err.code), message=err.message, details=details))


def make_servicer(api: GitOpsApi) -> pb_grpc.GitOpsServiceServicer:
    """A servicer whose every RPC forwards to `api` (built from the contract, so none is missed)."""
    methods = {}
    for m in SERVICE.methods:
        impl = getattr(api, m.name)
        if m.server_streaming:
            async def stream(self, request, context, _impl=impl):
                try:
                    async for item in _impl(request):
                        yield item
                except ApiError as err:
                    await context.abort_with_status(rich_status(err))
            methods[m.name] = stream
        else:
            async def unary(self, request, context, _impl=impl):
                try:
                    return await _impl(request)
                except ApiError as err:
                    await context.abort_with_status(rich_status(err))
            methods[m.name] = unary
    return type("GitOpsServicer", (pb_grpc.GitOpsServiceServicer,), methods)()


class BearerAuth(grpc.aio.ServerInterceptor):
    """Every call but health needs `authorization: Bearer <token>`."""

    def __init__(self, token: Callable[[], str]) -> None:
        self.token = token

    def _authorized(self, metadata) -> bool:
        expected = self.token()
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                return bool(expected) and hmac.compare_digest(value[7:].encode(), expected.encode())
        return False

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_METHODS) or self._authorized(details.invocation_metadata):
            return handler
        message = "missing or invalid bearer token (authorization: Bearer <token>)"

        async def deny(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        async def deny_stream(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
            yield  # pragma: no cover - makes this a generator

        kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(deny, **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(deny_stream, **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(deny, **kw)
        return grpc.stream_stream_rpc_method_handler(deny_stream, **kw)


def build_server(api: GitOpsApi, token: Callable[[], str]) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server = grpc.aio.server(interceptors=[BearerAuth(token)])
    pb_grpc.add_GitOpsServiceServicer_to_server(make_servicer(api), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE.full_name, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    return server, health_servicer
