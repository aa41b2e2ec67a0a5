"""A real sidecar for editor_plugin/test/client.test.mjs: Node-RED, a git remote, the API.

Run from the repository root with the project's venv::

    .venv/bin/python editor_plugin/test/run_sidecar.py

It starts Node-RED (admin auth on), a bare git repository with example flows, and a
sidecar with both API front ends (tests/apiserver.RunningSidecar), waits until the
first sync is applied, then prints one JSON line::

    {"url": "http://127.0.0.1:PORT", "token": "...", "commit": "<sha of the applied commit>"}

`url` is the gRPC-web base URL. Then it reads commands from stdin, one per line:

    commit   push a new commit of the flows and print {"commit": "<sha>"}
    quit     (or end of input) stop everything and exit

Everything lives in a temporary directory that is removed on exit.
"""
from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb  # noqa: E402
from sidecar.app import App  # noqa: E402
from sidecar.core.config import from_dict  # noqa: E402
from tests import flowgen  # noqa: E402
from tests.apiserver import RunningSidecar  # noqa: E402
from tests.conftest import sidecar_config  # noqa: E402
from tests.servers.gitrepo import GitRepoFactory  # noqa: E402
from tests.servers.nodered import NodeRedServer  # noqa: E402


def wait_in_sync(rs: RunningSidecar, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rs.stub.GetStatus(pb.GetStatusRequest(), metadata=rs.md).status
        if st.state == pb.SYNC_STATE_IN_SYNC and not st.phase:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the sidecar did not reach IN_SYNC in {timeout}s; last state {pb.SyncState.Name(st.state)}")


def say(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="flow-gitops-client-test-") as tmp:
        tmp_path = Path(tmp)
        nr_token = "nr-admin-" + secrets.token_hex(16)
        secrets_dir = tmp_path / "secrets"
        (secrets_dir / "nodered").mkdir(parents=True)
        (secrets_dir / "nodered" / "token").write_text(nr_token + "\n")
        flowapp = NodeRedServer(tmp_path / "nodered", admin_token=nr_token).start()
        rs = None
        try:
            remote = GitRepoFactory(tmp_path / "remote").create("flows")
            first = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Example flows\n\nWith a body.")
            app = App(from_dict(sidecar_config(tmp_path, flowapp, secrets_dir, remote.file_url)))
            rs = RunningSidecar(app, heartbeat=1.0)
            wait_in_sync(rs)
            say({"url": rs.http_url, "token": rs.token, "commit": first})
            revision = 0
            for line in sys.stdin:
                command = line.strip()
                if command == "commit":
                    revision += 1
                    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant=f"rev{revision}"))},
                                        f"Revision {revision}")
                    say({"commit": sha})
                elif command == "quit":
                    break
                elif command:
                    say({"error": f"unknown command {command!r}"})
        finally:
            if rs is not None:
                rs.stop()
            flowapp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
