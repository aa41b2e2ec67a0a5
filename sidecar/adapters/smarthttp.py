"""The branch head over Git's smart HTTP protocol, without starting git.

A no-change check only needs the ref advertisement (`GET info/refs?service=
git-upload-pack`). Asking for it from Python over a kept-alive HTTPS session costs a
few milliseconds of CPU, where `git ls-remote` spends most of ~70 ms setting up TLS
in a fresh process. Anything unusual (a dumb HTTP server, an odd answer) returns
None and the caller falls back to `git ls-remote`.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests

from ..core.errors import GIT_AUTH, GIT_TIMEOUT, GIT_UNREACHABLE, SyncError, network_reason

ADVERTISEMENT = "application/x-git-upload-pack-advertisement"


def parse_advertisement(body: bytes) -> dict[str, str] | None:
    """ref name → sha from a protocol-v0 advertisement; None if it is not one."""
    refs: dict[str, str] = {}
    i = 0
    try:
        while i + 4 <= len(body):
            n = int(body[i:i + 4], 16)
            if n == 0:
                i += 4
                continue
            if n < 4 or i + n > len(body):
                return None
            line = body[i + 4:i + n]
            i += n
            if line.startswith(b"#"):
                continue
            line = line.rstrip(b"\n").split(b"\0", 1)[0]
            sha, _, ref = line.partition(b" ")
            if len(sha) != 40:
                return None
            refs[ref.decode("utf-8", "replace")] = sha.decode("ascii")
    except ValueError:
        return None
    return refs


class SmartHttpProbe:
    def __init__(self, url: str, ca_file: str = "") -> None:
        self.url = url.rstrip("/") + "/info/refs"
        parts = urlsplit(url)
        self.server = f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")
        self.verify: str | bool = ca_file or os.environ.get("GIT_SSL_CAINFO") or True
        self.session = requests.Session()

    def refs(self, username: str, password: str, timeout: float) -> dict[str, str] | None:
        auth = (username, password) if username or password else None
        try:
            resp = self.session.get(self.url, params={"service": "git-upload-pack"}, auth=auth, timeout=timeout,
                                    verify=self.verify, headers={"User-Agent": "git/2 flow-gitops"}, allow_redirects=True)
        except requests.exceptions.SSLError as exc:
            if "certificate" in str(exc).lower():
                raise SyncError(GIT_UNREACHABLE, "the Git server's TLS certificate is not trusted") from None
            raise SyncError(GIT_UNREACHABLE, f"the Git server {self.server} could not be reached: TLS failed "
                                             f"({network_reason(exc)})") from None
        except requests.RequestException as exc:
            reason = network_reason(exc)  # a timeout while reading the body comes as a ConnectionError
            if reason == "timed out":
                raise SyncError(GIT_TIMEOUT, f"the Git server {self.server} did not answer within {timeout:g} s (timed out)") from None
            raise SyncError(GIT_UNREACHABLE, f"the Git server {self.server} could not be reached: {reason}") from None
        if resp.status_code in (401, 403):
            raise SyncError(GIT_AUTH, "the Git server refused the credentials")
        if resp.status_code == 404:
            raise SyncError(GIT_UNREACHABLE, "the repository was not found at the configured URL")
        if resp.status_code >= 500:
            raise SyncError(GIT_UNREACHABLE, f"the Git server {self.server} answered HTTP {resp.status_code}")
        if resp.status_code != 200 or not resp.headers.get("Content-Type", "").startswith(ADVERTISEMENT):
            return None
        return parse_advertisement(resp.content)

    def close(self) -> None:
        self.session.close()
