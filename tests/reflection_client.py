"""A generic gRPC client driven only by server reflection, the way stock tools (grpcurl,
Postman, evans) work: it never imports the project's generated code.

::

    rc = ReflectionClient(channel, metadata=[("authorization", "Bearer …")])
    rc.list_services()                          # ["flowgitops.v1.GitOpsService", …]
    rc.load_symbol("flowgitops.v1.GitOpsService")  # descriptors into a private pool
    reply = rc.call("flowgitops.v1.GitOpsService", "GetStatus", {})

Everything lives in a private `DescriptorPool`, so the descriptors and message classes
come from the server's answers, not from whatever the test process imported.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


class ReflectionError(Exception):
    pass


class ReflectionClient:
    def __init__(self, channel, metadata=(), timeout: float = 10.0) -> None:
        self.channel = channel
        self.metadata = list(metadata)
        self.timeout = timeout
        self.stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        self.pool = descriptor_pool.DescriptorPool()
        self.files: dict[str, descriptor_pb2.FileDescriptorProto] = {}  # every file the server sent

    # --- the reflection protocol (one bidi stream per question) -------------
    def _ask(self, **question) -> reflection_pb2.ServerReflectionResponse:
        request = reflection_pb2.ServerReflectionRequest(host="", **question)
        responses = self.stub.ServerReflectionInfo(iter([request]), metadata=self.metadata, timeout=self.timeout)
        answers = list(responses)
        if len(answers) != 1:
            raise ReflectionError(f"expected one answer, got {len(answers)}")
        answer = answers[0]
        if answer.WhichOneof("message_response") == "error_response":
            err = answer.error_response
            raise ReflectionError(f"reflection error {err.error_code}: {err.error_message}")
        return answer

    def list_services(self) -> list[str]:
        answer = self._ask(list_services="")
        return [s.name for s in answer.list_services_response.service]

    def _file_protos(self, answer) -> list[descriptor_pb2.FileDescriptorProto]:
        out = []
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            fdp = descriptor_pb2.FileDescriptorProto()
            fdp.ParseFromString(raw)
            out.append(fdp)
        return out

    def file_containing_symbol(self, symbol: str) -> list[descriptor_pb2.FileDescriptorProto]:
        return self._file_protos(self._ask(file_containing_symbol=symbol))

    def file_by_filename(self, name: str) -> list[descriptor_pb2.FileDescriptorProto]:
        return self._file_protos(self._ask(file_by_filename=name))

    # --- building a descriptor pool ------------------------------------------
    def load_symbol(self, symbol: str) -> None:
        """Fetch the file defining `symbol` with its dependencies and add them to the pool."""
        for fdp in self.file_containing_symbol(symbol):
            self.files.setdefault(fdp.name, fdp)
        added: set[str] = set()

        def add(name: str) -> None:
            if name in added:
                return
            if name not in self.files:  # the server left a dependency out: ask for it by name
                for fdp in self.file_by_filename(name):
                    self.files.setdefault(fdp.name, fdp)
            fdp = self.files[name]
            for dep in fdp.dependency:
                add(dep)
            self.pool.AddSerializedFile(fdp.SerializeToString())
            added.add(name)

        for name in list(self.files):
            add(name)

    def message_class(self, full_name: str):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def method(self, service: str, method: str):
        return self.pool.FindServiceByName(service).FindMethodByName(method)

    def call(self, service: str, method: str, fields: dict | None = None, metadata=None, timeout: float | None = None):
        """A unary call with request and response classes built from reflection."""
        md = self.method(service, method)
        if md.client_streaming or md.server_streaming:
            raise ReflectionError(f"{service}/{method} is not unary")
        req_cls = message_factory.GetMessageClass(md.input_type)
        resp_cls = message_factory.GetMessageClass(md.output_type)
        rpc = self.channel.unary_unary(f"/{service}/{method}", request_serializer=req_cls.SerializeToString,
                                       response_deserializer=resp_cls.FromString)
        return rpc(req_cls(**(fields or {})), metadata=self.metadata if metadata is None else metadata,
                   timeout=timeout or self.timeout)
