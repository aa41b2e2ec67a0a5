"""The GitOps tab end to end: headless Chromium (Playwright) against a real Node-RED with
the plugin, a real sidecar and a real Git server. Screenshots go to test-artifacts/tab/."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests import flowgen
from tests.constants import CANARY, GIT_USER
from tests.npmpkgs import init_user_dir
from tests.servers.common import free_port
from tests.servers.githttp import GitHttpServer
from tests.servers.nodered import NodeRedServer

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "tab"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
READER = "nr-reader-e2e-" + "q" * 12


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is missing: run scripts/setup")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def stack(make_stack):
    return make_stack()


@pytest.fixture
def make_stack(tmp_path, nr_token, repos, running_sidecar):
    """Node-RED with the plugin; a sidecar (not configured yet) it relays to; a Git server."""
    stops = []

    def make(extra=None):
        s = _stack(tmp_path, nr_token, repos, running_sidecar, extra or {})
        stops.append(s)
        return s

    yield make
    for s in stops:
        s["git"].stop()
        s["nr"].stop()


def _stack(tmp_path, nr_token, repos, running_sidecar, extra):
    http_port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    (data / "api-token").write_text("e2e-sidecar-token-" + "z" * 16 + "\n")
    user_dir = init_user_dir(tmp_path / "userdir")
    (user_dir / "node_modules").mkdir(exist_ok=True)
    os.symlink(ROOT / "editor_plugin", user_dir / "node_modules" / "node-red-contrib-flow-gitops")
    nr = NodeRedServer(user_dir, admin_token=nr_token, reader_token=READER, env={
        "FLOW_GITOPS_URL": f"http://127.0.0.1:{http_port}", "FLOW_GITOPS_TOKEN_FILE": str(data / "api-token")}).start()
    git = GitHttpServer(repos.root, GIT_USER, CANARY).start()
    remote = repos.create("flows")
    remote.commit({"flows.json": flowgen.dumps(flowgen.example())}, "Example flows\n\nThree tabs, a subflow and a config node.")
    extra = {"api": {"http_listen": f"127.0.0.1:{http_port}"}, "sync": {"paused": True}, **extra}
    extra.setdefault("flow_app", {})["user_dir"] = str(user_dir)
    rs = running_sidecar(nr, "", extra=extra)
    return {"nr": nr, "rs": rs, "git": git, "remote": remote, "url": git.url_for("flows")}


def open_tab(browser, nr, token):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{nr.url}/?access_token={token}")
    page.wait_for_function("!!document.querySelector('#fg-tab') && !!window.RED && !!RED.sidebar", timeout=30000)
    # the editor shows its Info tab once it has loaded the flows: open ours after that
    page.wait_for_function("document.querySelector('#red-ui-loading-progress') === null || "
                           "getComputedStyle(document.querySelector('#red-ui-loading-progress')).display === 'none'", timeout=30000)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        page.evaluate("RED.actions.invoke('flow-gitops:show-gitops-tab')")  # the tab's action (keyboard shortcuts use it)
        time.sleep(0.3)
        if page.is_visible("#fg-tab") and page.is_visible("#fg-state"):
            time.sleep(0.5)
            if page.is_visible("#fg-tab"):
                return page
    raise AssertionError("the GitOps tab did not open")


def shot(page, name):
    """The whole tab (the sidebar section is short): lift it out for the picture, then put it back."""
    tab = page.locator("#fg-tab")
    tab.evaluate("e => { e.dataset.style = e.getAttribute('style') || ''; Object.assign(e.style, {position: 'fixed', top: '0', "
                 "right: '0', width: '380px', height: '100vh', zIndex: 10000, background: 'var(--red-ui-secondary-background, #fff)', "
                 "boxShadow: '0 0 4px rgba(0,0,0,.3)', overflow: 'visible'}); }")
    try:
        vw = page.viewport_size["width"]
        page.screenshot(path=str(SHOTS / f"{name}.png"), clip={"x": vw - 380, "y": 0, "width": 380, "height": 1100})
    finally:
        tab.evaluate("e => e.setAttribute('style', e.dataset.style)")


def live(page):
    return page.locator("#fg-live").get_attribute("data-state")


def wait_text(page, selector, text, timeout=20000):
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)", arg=[selector, text], timeout=timeout)


def test_configure_resume_sync_pull_pause_and_live_states(browser, make_stack, nr_token):
    # a self-hosted Gitea: the provider is named in the operator's config, the tab keeps it
    stack = make_stack({"repository": {"provider": "gitea"}})
    nr, rs, remote = stack["nr"], stack["rs"], stack["remote"]
    page = open_tab(browser, nr, nr_token)
    wait_text(page, "#fg-state", "Not configured")
    page.wait_for_function("document.querySelector('#fg-live').dataset.state === 'connected'")
    shot(page, "01-not-configured")

    # invalid input: red borders, the Protocol Mismatch warning, Save disabled
    page.select_option("#fg-cfg-protocol", "ssh")
    page.fill("#fg-cfg-url", stack["url"])
    page.fill("#fg-cfg-branch", "bad..branch")
    page.fill("#fg-cfg-interval", "60")
    assert page.is_visible("#fg-mismatch")
    assert "fg-invalid" in page.get_attribute("#fg-cfg-url", "class")
    assert "fg-invalid" in page.get_attribute("#fg-cfg-branch", "class")
    assert "fg-invalid" in page.get_attribute("#fg-cfg-interval", "class")
    assert page.is_disabled("#fg-save")
    shot(page, "02-invalid-fields-and-mismatch")

    # autocomplete of secret paths (names only)
    page.select_option("#fg-cfg-protocol", "https")
    page.fill("#fg-cfg-branch", "main")
    page.fill("#fg-cfg-interval", "120")
    assert not page.is_visible("#fg-mismatch")
    page.click("#fg-cfg-username")
    page.type("#fg-cfg-username", "global.SECRETS.git")
    page.wait_for_selector(".fg-suggest div")
    options = page.locator(".fg-suggest div").all_text_contents()
    assert "global.SECRETS.git.username" in options and "global.SECRETS.git.token" in options
    assert CANARY not in page.content()
    shot(page, "03-secret-autocomplete")
    page.keyboard.press("ArrowDown")
    while page.locator(".fg-suggest div.selected").text_content() != "global.SECRETS.git.token":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#fg-cfg-username") == "global.SECRETS.git.token"
    page.fill("#fg-cfg-username", "global.SECRETS.git.username")
    page.fill("#fg-cfg-password", "global.SECRETS.git.token")
    assert page.is_enabled("#fg-save")

    # Save → connects, reports the head, stays paused with the Resume hint
    page.click("#fg-save")
    wait_text(page, "#fg-save-result", remote.head()[:8])
    wait_text(page, "#fg-state", "Paused")
    assert page.is_visible("#fg-resume-hint") and page.is_visible("#fg-resume")
    page.wait_for_function("document.querySelector('#fg-live').dataset.state === 'paused'")
    shot(page, "04-saved-paused")

    # Resume → in sync, with the commit's details and a body behind ">"
    page.click("#fg-resume")
    wait_text(page, "#fg-state", "In sync")
    page.wait_for_function("document.querySelector('#fg-live').dataset.state === 'connected'")
    head = remote.head()
    assert page.text_content("#fg-commit-local .fg-hash") == head[:8]
    assert page.get_attribute("#fg-commit-local .fg-hash", "href") == f"{stack['git'].url}/flows/commit/{head}"
    assert page.text_content("#fg-commit-local .fg-subject") == "Example flows"
    assert "Ada Lovelace" in page.text_content("#fg-commit-local .fg-meta")
    assert not page.is_visible("#fg-commit-local .fg-commit-body")
    page.click("#fg-commit-local .fg-toggle")
    assert page.text_content("#fg-commit-local .fg-commit-body") == "Three tabs, a subflow and a config node."
    assert page.is_disabled("#fg-cfg-url")  # locked while active
    assert len(nr.flows()[0]) == len(flowgen.example())
    shot(page, "05-in-sync")

    # a new commit + Force Pull → in sync at the new commit; the reload reminder appears
    second = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="two"))}, "Second change")
    page.click("#fg-force-pull")
    page.wait_for_function("t => document.querySelector('#fg-commit-local .fg-hash').textContent === t", arg=second[:8], timeout=20000)
    assert page.is_visible("#fg-banner-deployed")
    shot(page, "06-force-pull-deployed-reload-hint")

    # a failed sync shows in the jobs card with a Retry button; after the fix, Retry recovers
    remote.commit({"flows.json": "[{ broken"}, "Broken flows")
    page.click("#fg-force-pull")
    page.wait_for_selector("#fg-job-list .fg-job[data-status=failed] .fg-job-retry", timeout=20000)
    wait_text(page, "#fg-reason", "flows_invalid")
    shot(page, "06b-failed-job-with-retry")
    fixed = remote.commit({"flows.json": flowgen.dumps(flowgen.example(variant="three"))}, "Fix flows")
    page.click("#fg-job-list .fg-job[data-status=failed] .fg-job-retry")
    page.wait_for_function("t => document.querySelector('#fg-commit-local .fg-hash').textContent === t", arg=fixed[:8], timeout=20000)
    wait_text(page, "#fg-state", "In sync")

    page.click("#fg-pause")
    wait_text(page, "#fg-state", "Paused")
    assert page.is_enabled("#fg-cfg-url")
    page.click("#fg-resume")
    wait_text(page, "#fg-state", "In sync")

    # browser offline → "browser offline"
    page.context.set_offline(True)
    page.wait_for_function("document.querySelector('#fg-live').dataset.state === 'offline'")
    shot(page, "07-browser-offline")
    page.context.set_offline(False)
    page.wait_for_function("document.querySelector('#fg-live').dataset.state !== 'offline'")

    # the sidecar stops → stale or disconnected, with the banner
    rs.stop()
    page.wait_for_function("document.querySelector('#fg-live').dataset.state === 'stale'", timeout=30000)
    assert page.is_visible("#fg-banner-stale")
    shot(page, "08-sidecar-stopped-stale")
    page.close()


def test_a_read_only_user_can_watch_but_not_change(browser, stack, nr_token):
    nr, rs = stack["nr"], stack["rs"]
    rs.app.save_config({"repository": {"protocol": "https", "url": stack["url"], "branch": "main",
                                       "username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token"}})
    page = open_tab(browser, nr, READER)
    wait_text(page, "#fg-state", "Paused")
    page.click("#fg-resume")
    page.wait_for_function("(document.querySelector('#fg-action-error').textContent || '').length > 0")
    assert rs.app.board.current()["paused"] is True  # nothing changed
    page.fill("#fg-cfg-interval", "300")
    page.click("#fg-save")
    page.wait_for_function("(document.querySelector('#fg-save-result').textContent || '').length > 0")
    assert rs.app.cfg.sync.interval == 120
    shot(page, "09-read-only-user")
    page.close()


def test_recovering_nodes_shows_the_wrench_and_progress(browser, make_stack, registry, test_catalog, nr_token):
    import json

    st = make_stack({"dependencies": {"registry": registry.url, "catalog": str(test_catalog), "retry_backoff": 0.2}})
    nr, rs, remote = st["nr"], st["rs"], st["remote"]
    rs.app.save_config({"repository": {"protocol": "https", "url": st["url"], "branch": "main",
                                       "username": "global.SECRETS.git.username", "password": "global.SECRETS.git.token"}})
    rs.app.service.resume()
    rs.app.service.wait_idle(30)
    page = open_tab(browser, nr, nr_token)
    wait_text(page, "#fg-state", "In sync")
    flows = [{"id": "rt", "type": "tab", "label": "Needs a node"},
             {"id": "g1", "type": "fg-gamma", "z": "rt", "x": 100, "y": 100, "wires": []}]
    remote.commit({"flows.json": json.dumps(flows)}, "Use fg-gamma")
    registry.fault = {"delay": 1.5}  # a slow registry keeps the recovery on screen
    try:
        page.click("#fg-force-pull")
        wait_text(page, "#fg-state", "Recovering nodes")
        assert page.is_visible("#fg-progress .fa-wrench")
        wait_text(page, "#fg-progress-text", "installing 1 of 1: node-red-contrib-fg-gamma")
        shot(page, "10-recovering-wrench-progress")
    finally:
        registry.fault = None
    wait_text(page, "#fg-state", "In sync", timeout=60000)
    assert any(n["type"] == "fg-gamma" for n in nr.flows()[0])
    page.close()
