"""A small gRPC-web client over HTTP/1.1 (requests), binary or text encoding, written from
the gRPC-web protocol description — it checks our server's wire format independently."""
from __future__ import annotations

import base64
from typing import Iterator

import requests

SERVICE = "flowgitops.v1.GitOpsService"


class GrpcWebError(Exception):
    def __init__(self, status: int, message: str, trailers: dict) -> None:
        super().__init__(f"grpc-status {status}: {message}")
        self.status, self.message, self.trailers = status, message, trailers


def _frame(payload: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(payload).to_bytes(4, "big") + payload


class _Decoder:
    """Turns the response body (raw or base64 text) into frames as bytes arrive."""

    def __init__(self, text: bool) -> None:
        self.text, self.pending_b64, self.buf = text, b"", b""

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        if self.text:
            self.pending_b64 += chunk
            usable = len(self.pending_b64) - len(self.pending_b64) % 4
            # each 4-character quantum decodes on its own (padded segments may be concatenated)
            data = b"".join(base64.b64decode(self.pending_b64[i:i + 4]) for i in range(0, usable, 4))
            self.pending_b64 = self.pending_b64[usable:]
            chunk = data
        self.buf += chunk
        frames = []
        while len(self.buf) >= 5:
            n = int.from_bytes(self.buf[1:5], "big")
            if len(self.buf) < 5 + n:
                break
            frames.append((self.buf[0], self.buf[5:5 + n]))
            self.buf = self.buf[5 + n:]
        return frames


def _trailers(payload: bytes) -> dict:
    out = {}
    for line in payload.decode().split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


class GrpcWebClient:
    def __init__(self, base_url: str, token: str | None, text: bool = False, origin: str | None = None) -> None:
        self.base, self.token, self.text, self.origin = base_url.rstrip("/"), token, text, origin
        self.session = requests.Session()
        self.last_headers: dict = {}

    def _post(self, method: str, request, timeout: float | None):
        body = _frame(request.SerializeToString())
        headers = {"content-type": "application/grpc-web-text+proto" if self.text else "application/grpc-web+proto",
                   "x-grpc-web": "1", "accept": "application/grpc-web-text" if self.text else "application/grpc-web"}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        if self.origin:
            headers["origin"] = self.origin
        if self.text:
            body = base64.b64encode(body)
        return self.session.post(f"{self.base}/{SERVICE}/{method}", data=body, headers=headers, stream=True, timeout=timeout)

    def stream(self, method: str, request, response_type, timeout: float | None = 30) -> Iterator:
        """Yields response messages as they arrive; raises GrpcWebError on a non-zero status."""
        resp = self._post(method, request, timeout)
        self.last_headers = dict(resp.headers)
        assert resp.status_code == 200, (resp.status_code, resp.text[:200])
        expected = "application/grpc-web-text" if self.text else "application/grpc-web"
        assert resp.headers.get("content-type", "").startswith(expected), resp.headers.get("content-type")
        if "grpc-status" in resp.headers:  # trailers-only response
            status = int(resp.headers["grpc-status"])
            if status:
                raise GrpcWebError(status, resp.headers.get("grpc-message", ""), dict(resp.headers))
            return
        dec = _Decoder(self.text)
        try:
            for chunk in resp.raw.stream(1024 * 64, decode_content=False):
                for flag, payload in dec.feed(chunk):
                    if flag & 0x80:
                        trailers = _trailers(payload)
                        status = int(trailers.get("grpc-status", "2"))
                        if status:
                            raise GrpcWebError(status, requests.utils.unquote(trailers.get("grpc-message", "")), trailers)
                        return
                    msg = response_type()
                    msg.ParseFromString(payload)
                    yield msg
        finally:
            resp.close()
        raise GrpcWebError(2, "stream ended without trailers", {})

    def unary(self, method: str, request, response_type, timeout: float = 30):
        messages = list(self.stream(method, request, response_type, timeout))
        assert len(messages) == 1, messages
        return messages[0]
