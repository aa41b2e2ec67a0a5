"""Saving configuration (C3, C4): validate, persist, connect; locked while sync is active."""
from __future__ import annotations

import pytest

from sidecar.app import App, ConfigLocked
from sidecar.core.config import ConfigError, from_dict
from tests import flowgen
from tests.conftest import sidecar_config


def test_first_save_connects_reports_the_head_and_stays_paused(flowapp, repos, secrets_dir, tmp_path):
    remote = repos.create("flows")
    sha = remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Flows")
    data = sidecar_config(tmp_path, flowapp, secrets_dir, "", "file")
    app = App(from_dict(data), watch_deploys=False)
    try:
        assert app.board.current()["state"] == "not_configured"
        with pytest.raises(ConfigError) as bad:
            app.save_config({"repository": {"protocol": "ssh", "url": remote.file_url}, "sync": {"interval": 60}})
        fields = {v.field for v in bad.value.violations}
        assert {"repository.url", "sync.interval", "repository.ssh_key"} <= fields
        assert app.board.current()["state"] == "not_configured"  # nothing half-saved

        result = app.save_config({"repository": {"protocol": "file", "url": remote.file_url, "branch": "main"}})
        assert result == {"remote_head": sha, "error": None}
        snap = app.board.current()
        assert snap["state"] == "paused" and snap["behind"] is True
        assert snap["remote"]["sha"] == sha and snap["remote"]["subject"] == "Flows"
        assert flowapp.flows()[0] == []  # nothing applied until Resume
    finally:
        app.close()

    # persisted: a restart with the same (unconfigured) file keeps the saved repository
    app = App(from_dict(data), watch_deploys=False)
    try:
        assert app.cfg.repository.url == remote.file_url
        assert app.board.current()["state"] == "paused"
        app.start()
        app.service.resume()
        assert app.service.wait_idle(30)
        assert app.board.current()["state"] == "in_sync"
        # C4: locked while active
        with pytest.raises(ConfigLocked, match="pause it first"):
            app.save_config({"sync": {"interval": 300}})
        app.service.pause()
        result = app.save_config({"sync": {"interval": 300}, "repository": {"branch": "does-not-exist"}})
        assert result["error"]["code"] == "git_branch_not_found"
        assert app.cfg.sync.interval == 300
        assert app.board.current()["reason_code"] == "git_branch_not_found"
        with pytest.raises(ConfigError, match="cannot be changed here"):
            app.save_config({"data_dir": "/elsewhere"})
    finally:
        app.stop()
