"""Shared fixtures: real Node-RED, real Git servers, and sidecars wired to them."""
from __future__ import annotations

import os
import secrets as pysecrets
from pathlib import Path

import pytest

from sidecar.app import App
from sidecar.core.config import deep_merge, from_dict
from tests.servers.common import make_tls_cert
from tests.servers.githttp import GitHttpServer
from tests.servers.gitrepo import GitRepoFactory
from tests.servers.nodered import NodeRedServer, node_binary, red_js

from sidecar import catalogtool
from tests.constants import CANARY, GIT_USER
from tests.npmpkgs import init_user_dir, standard_packages
from tests.servers.npmreg import NpmRegistry


ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.reporting"]  # docs/RELIABILITY.md cases: @pytest.mark.matrix(...)


def pytest_sessionstart(session):
    for path in (node_binary(), red_js()):
        if not Path(path).exists():
            raise pytest.UsageError(f"{path} is missing: run scripts/setup first (scripts/test does)")


@pytest.fixture(scope="session")
def nr_token() -> str:
    return "nr-admin-" + pysecrets.token_hex(16)


@pytest.fixture(scope="session")
def nodered_server(tmp_path_factory, nr_token):
    """One Node-RED with adminAuth (static tokens) for the whole session."""
    srv = NodeRedServer(tmp_path_factory.mktemp("nodered-auth"), admin_token=nr_token,
                        reader_token="nr-reader-" + pysecrets.token_hex(8))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def nodered_open_server(tmp_path_factory):
    """One Node-RED without adminAuth."""
    srv = NodeRedServer(tmp_path_factory.mktemp("nodered-open"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def flowapp(nodered_server) -> NodeRedServer:
    nodered_server.reset()
    return nodered_server


@pytest.fixture
def flowapp_open(nodered_open_server) -> NodeRedServer:
    nodered_open_server.reset()
    return nodered_open_server


@pytest.fixture
def repos(tmp_path) -> GitRepoFactory:
    return GitRepoFactory(tmp_path / "remote")


@pytest.fixture
def secrets_dir(tmp_path, nr_token) -> Path:
    d = tmp_path / "secrets"
    (d / "nodered").mkdir(parents=True)
    (d / "git").mkdir()
    (d / "nodered" / "token").write_text(nr_token + "\n")
    (d / "git" / "username").write_text(GIT_USER + "\n")
    (d / "git" / "token").write_text(CANARY + "\n")
    return d


def sidecar_config(tmp_path: Path, flowapp: NodeRedServer, secrets_dir: Path, url: str, protocol: str = "file", extra: dict | None = None) -> dict:
    data = {
        "environment": "test",
        "data_dir": str(tmp_path / "data"),
        "flow_app": {"url": flowapp.url, "token": "global.SECRETS.nodered.token" if flowapp.admin_token else "", "confirm_timeout": 20},
        "secrets": {"dir": str(secrets_dir)},
        "repository": {"protocol": protocol, "url": url, "branch": "main", "timeout": 20},
        "sync": {"interval": 120, "paused": False},
        "api": {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0"},
    }
    return deep_merge(data, extra or {})


@pytest.fixture
def https_git(tmp_path, repos):
    """Git over HTTPS with basic auth (GIT_USER / CANARY) through git http-backend; `.cafile` to trust."""
    cert, key = make_tls_cert(tmp_path / "tls")
    srv = GitHttpServer(repos.root, GIT_USER, CANARY, certfile=cert, keyfile=key).start()
    srv.cafile = cert
    yield srv
    srv.stop()


@pytest.fixture
def make_sidecar(tmp_path, secrets_dir):
    """Build an App (not started) against a Flow App and a repository URL."""
    apps: list[App] = []

    def build(flowapp: NodeRedServer, url: str, protocol: str = "file", extra: dict | None = None, watch: bool = False) -> App:
        app = App(from_dict(sidecar_config(tmp_path, flowapp, secrets_dir, url, protocol, extra)), watch_deploys=watch)
        apps.append(app)
        return app

    yield build
    for app in apps:
        try:
            app.stop()
        except Exception:
            pass


@pytest.fixture
def running_sidecar(make_sidecar):
    """Start a sidecar with its API: `running_sidecar(flowapp, url, ...)` → RunningSidecar."""
    from tests.apiserver import RunningSidecar

    started: list[RunningSidecar] = []

    def start(flowapp, url, protocol="file", extra=None, heartbeat=None, watch=False):
        rs = RunningSidecar(make_sidecar(flowapp, url, protocol, extra, watch=watch), heartbeat=heartbeat)
        started.append(rs)
        return rs

    yield start
    for rs in started:
        rs.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("npm")
    tarballs = standard_packages(d / "tarballs")
    reg = NpmRegistry(d / "storage").start()
    reg.publish_all(tarballs)
    reg.tarballs = tarballs
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def test_catalog(registry, tmp_path_factory):
    """A catalog built with `catalog build` from the test packages (as an operator would)."""
    cat, problems = catalogtool.build([str(t) for t in registry.tarballs], npm=None, workdir=tmp_path_factory.mktemp("cat"))
    path = tmp_path_factory.mktemp("catalog") / "catalog.json"
    catalogtool.write(cat, path, ["test packages"])
    return path




@pytest.fixture
def nr_with_plugin(tmp_path, nr_token):
    """A fresh Node-RED whose userDir has the flow-gitops plugin (modules get installed into it)."""
    user_dir = init_user_dir(tmp_path / "userdir")
    (user_dir / "node_modules").mkdir(exist_ok=True)
    os.symlink(ROOT / "editor_plugin", user_dir / "node_modules" / "node-red-contrib-flow-gitops")
    srv = NodeRedServer(user_dir, admin_token=nr_token).start()
    yield srv
    srv.stop()
