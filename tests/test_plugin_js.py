"""The plugin's JavaScript tests (`node --test`), run by the one test command."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers.nodered import node_binary

ROOT = Path(__file__).resolve().parents[1]


def test_browser_client_against_a_real_sidecar():
    res = subprocess.run([node_binary(), "--test", str(ROOT / "editor_plugin" / "test" / "client.test.mjs")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "# fail 0" in res.stdout and "# pass 0" not in res.stdout


def test_view_logic_and_message_catalog():
    res = subprocess.run([node_binary(), "--test", str(ROOT / "editor_plugin" / "test" / "view.test.cjs")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "# fail 0" in res.stdout and "# pass 0" not in res.stdout
