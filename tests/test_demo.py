"""The README's demo command works: real Node-RED + sidecar + local Git, and a push deploys."""
from __future__ import annotations

import subprocess
import sys

from tests.servers.common import free_port


def test_demo_check(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sidecar", "demo", "--check", "--dir", str(tmp_path / "demo"), "--port", str(free_port())],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "demo check passed" in res.stdout
    log = (tmp_path / "demo" / "sidecar.log").read_text()
    assert "trigger=startup result=succeeded" in log and "trigger=force result=succeeded" in log
