"""The GitOps tab end to end: headless Chromium (Playwright) against a real Node-RED with
the plugin, a real sidecar and a real Git server. Screenshots go to test-artifacts/tab/."""
from __future__ import annotations

import json
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

    def make(extra=None, **options):
        s = _stack(tmp_path, nr_token, repos, running_sidecar, extra or {}, **options)
        stops.append(s)
        return s

    yield make
    for s in stops:
        s["git"].stop()
        s["nr"].stop()


def _stack(tmp_path, nr_token, repos, running_sidecar, extra, repo="flows", files=None, flows=None, configured=False):
    """`files`: the first commit (default: the example flows as flows.json); `flows`: deployed in
    the Flow App before the sidecar starts; `configured`: the repository is set in the sidecar's
    configuration (HTTPS with the test credentials) instead of through the tab."""
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
    remote = repos.create(repo)
    remote.commit(files or {"flows.json": flowgen.dumps(flowgen.example())}, "Example flows\n\nThree tabs, a subflow and a config node.")
    if flows is not None:
        nr.deploy(flows, "full")
    extra = {"api": {"http_listen": f"127.0.0.1:{http_port}"}, "sync": {"paused": True}, **extra}
    extra.setdefault("flow_app", {})["user_dir"] = str(user_dir)
    if configured:
        extra.setdefault("repository", {}).update(username="global.SECRETS.git.username", password="global.SECRETS.git.token")
    rs = running_sidecar(nr, git.url_for(repo) if configured else "", protocol="https" if configured else "file", extra=extra)
    return {"nr": nr, "rs": rs, "git": git, "remote": remote, "url": git.url_for(repo)}


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


@pytest.mark.matrix('attacks', 'a read-only editor user pressing Resume and Save in the GitOps tab (real Chromium)', 'plugin relay',
                    expect='the tab shows the state; both are refused by the relay with a message, and nothing changes')
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


class _Branches(dict):
    """The GitHub fake's branch table read from the real bare repository: the branch the
    sidecar pushes for a promotion exists for the fake as soon as git has it."""

    def __init__(self, remote):
        super().__init__()
        self.remote = remote

    def __contains__(self, name):
        return self.remote.head(name) is not None

    def __getitem__(self, name):
        sha = self.remote.head(name)
        if sha is None:
            raise KeyError(name)
        return sha


def test_promote_selected_flows_opens_a_pull_request_and_links_it(browser, make_stack, nr_token):
    from tests.servers.providers import FakeGitHub

    fake = FakeGitHub(token=CANARY)
    try:
        fake.add_repo("org/flows", {})
        # the source environment ("test", push mode): its editor's flows are what gets promoted
        st = make_stack({"mode": "push", "sync": {"paused": False},
                         "repository": {"provider": "github", "layout": "split"}, "promotion": {"api_base": fake.api_root}},
                        repo="org/flows", flows=flowgen.example(tabs=3), configured=True)
        fake.repos["org/flows"].branches = _Branches(st["remote"])
        nr, rs, remote = st["nr"], st["rs"], st["remote"]
        rs.app.service.wait_idle(30)
        page = open_tab(browser, nr, nr_token)
        page.wait_for_selector("#fg-promote", state="visible", timeout=20000)
        assert not page.is_visible("#fg-banner-truth")  # push mode: no source-of-truth banner
        # the checklist is the editor's own flows (tabs), in the editor's order
        page.wait_for_function("document.querySelectorAll('#fg-promote-flows .fg-promote-flow').length === 3")
        labels = page.locator("#fg-promote-flows label").all_text_contents()
        assert labels == ["Flow 0", "Flow 1", "Flow 2"], labels
        assert page.is_disabled("#fg-promote-button")  # nothing chosen, no target

        page.check("#fg-promote-flow-t1")
        page.fill("#fg-promote-target", "test")  # the current environment
        assert "fg-invalid" in page.get_attribute("#fg-promote-target", "class")
        wait_text(page, "#fg-promote-target-error", "current environment")
        assert page.is_disabled("#fg-promote-button")
        page.fill("#fg-promote-target", "prod env!")  # not an environment name
        wait_text(page, "#fg-promote-target-error", "Letters, digits")
        assert page.is_disabled("#fg-promote-button")
        page.fill("#fg-promote-target", "production")
        assert "fg-invalid" not in (page.get_attribute("#fg-promote-target", "class") or "")
        page.fill("#fg-promote-title", "Ship Flow 1")
        assert page.is_enabled("#fg-promote-button")
        page.click("#fg-promote-button")

        page.wait_for_selector("#fg-promote-link", timeout=60000)
        assert page.get_attribute("#fg-promote-link", "href") == "https://github.example/org/flows/pull/1"
        assert page.text_content("#fg-promote-link") == "#1"
        assert fake.errors == []  # the pull request matched GitHub's documented API
        pr = fake.repos["org/flows"].pulls[1]
        assert pr["title"] == "Ship Flow 1" and pr["base"] == "main" and pr["head"].startswith("promote/test-to-production-")
        wait_text(page, "#fg-promote-result", pr["head"])
        promoted = json.loads(remote.factory.git("show", f"{pr['head']}:production/flows/flow-1.json", cwd=remote.path).stdout)
        assert promoted[0]["id"] == "t1" and promoted[0]["label"] == "Flow 1"
        listed = remote.factory.git("ls-tree", "-r", "--name-only", pr["head"], "--", "production", cwd=remote.path).stdout.split()
        assert "production/flows/flow-0.json" not in listed  # only the chosen flow
        assert CANARY not in page.content()
        shot(page, "11-promote")

        # the provider refuses the next one (rate limit spent): the error is shown instead of a link
        fake.rate_limit_remaining = 0
        page.click("#fg-promote-button")
        page.wait_for_function("(document.querySelector('#fg-promote-result').textContent || '').includes('Promotion failed')",
                               timeout=60000)
        assert not page.is_visible("#fg-promote-link")
        assert "fg-reason" in page.get_attribute("#fg-promote-result", "class")
        fake.rate_limit_remaining = None
        page.close()

        # a read-only user sees the section, but cannot promote
        page = open_tab(browser, nr, READER)
        page.wait_for_selector("#fg-promote", state="visible", timeout=20000)
        page.wait_for_function("document.querySelectorAll('#fg-promote-flows .fg-promote-flow').length === 3")
        assert page.is_visible("#fg-promote-readonly")
        assert page.is_disabled("#fg-promote-button") and page.is_disabled("#fg-promote-target")
        assert page.is_disabled("#fg-promote-flow-t0")
        page.close()
        assert len(fake.repos["org/flows"].pulls) == 1
    finally:
        fake.stop()


def test_import_errors_are_listed_until_the_files_are_fixed(browser, make_stack, nr_token):
    from sidecar.core import layout

    example = flowgen.example(tabs=3)
    files = layout.split_files(example, "test", {}).files
    st = make_stack({"mode": "bidirectional", "sync": {"paused": False}, "repository": {"layout": "split"}},
                    files=files, flows=example, configured=True)
    nr, rs, remote = st["nr"], st["rs"], st["remote"]
    rs.app.service.wait_idle(30)
    page = open_tab(browser, nr, nr_token)
    wait_text(page, "#fg-state", "In sync")
    assert page.is_visible("#fg-banner-truth")  # bidirectional: edits here may be overwritten from Git
    assert page.is_visible("#fg-promote")  # an authoring environment can promote
    assert not page.is_visible("#fg-import-errors")
    _, rev = nr.flows()

    remote.commit({"test/flows/flow-1.json": "[{ not json", "test/flows/flow-2.json": json.dumps({"id": "t2", "type": "tab"}),
                   "test/flows/Flow 3 (copy).json": files["test/flows/flow-0.json"].replace('"t0', '"t9')},
                  "Files that cannot be imported", author=("Grace Hopper", "grace@example.com"))
    page.click("#fg-force-pull")
    page.wait_for_selector("#fg-import-errors", state="visible", timeout=30000)
    page.wait_for_function("document.querySelectorAll('#fg-import-error-list .fg-import-error').length === 3")
    paths = page.locator("#fg-import-error-list .fg-import-path").all_text_contents()
    assert paths == ["test/flows/Flow 3 (copy).json", "test/flows/flow-1.json", "test/flows/flow-2.json"], paths
    messages = page.locator("#fg-import-error-list .fg-import-message").all_text_contents()
    assert "invalid file name" in messages[0] and messages[1].startswith("not valid JSON") and "JSON array" in messages[2]
    assert page.text_content("#fg-import-error-count").strip() == "(3)"
    wait_text(page, "#fg-reason", "flows_invalid")
    wait_text(page, "#fg-state", "Error")
    assert nr.flows()[1] == rev  # nothing applied
    shot(page, "12-import-errors")

    fixed = remote.commit({"test/flows/flow-1.json": files["test/flows/flow-1.json"], "test/flows/flow-2.json": files["test/flows/flow-2.json"],
                           "test/flows/Flow 3 (copy).json": None,
                           "test/flows/flow-3-copy.json": files["test/flows/flow-0.json"].replace('"t0', '"t9')}, "Fix the files")
    page.click("#fg-job-list .fg-job[data-status=failed] .fg-job-retry")
    page.wait_for_function("t => document.querySelector('#fg-commit-local .fg-hash').textContent === t", arg=fixed[:8], timeout=30000)
    page.wait_for_selector("#fg-import-errors", state="hidden", timeout=10000)
    wait_text(page, "#fg-state", "In sync")
    assert any(n["id"] == "t9" for n in nr.flows()[0])
    page.close()
