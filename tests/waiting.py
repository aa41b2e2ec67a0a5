"""Polling helpers the scenario tests share."""
from __future__ import annotations

import time

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    """The first truthy value of `predicate()`, polled every 50 ms; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def status(rs) -> pb.Status:
    """GetStatus of a tests.apiserver.RunningSidecar over native gRPC."""
    return rs.stub.GetStatus(pb.GetStatusRequest(), metadata=rs.md, timeout=10).status


def wait_local(rs, sha: str, timeout: float = 30) -> pb.Status:
    """Until the sidecar has applied `sha` and no job runs."""
    st = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status(rs)
        if st.local.sha == sha and not st.phase:
            return st
        time.sleep(0.05)
    raise AssertionError(f"local {sha[:8]} not reached; last {st}")
