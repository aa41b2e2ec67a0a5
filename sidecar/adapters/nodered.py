"""The Flow App, through Node-RED's Admin HTTP API and its comms websocket.

Facts this leans on (NODE-RED.md): `GET/POST /flows` with `Node-RED-API-Version: v2`
carry a content `rev`; a stale `rev` gets 409; `POST /flows` answers *before* the
flows start, so a deploy is confirmed on the comms websocket (`runtime-state`
start with `deploy: true`, then `runtime-deploy` with the new revision, or a
`missing-types` warning); `GET /nodes` answers JSON only for `Accept:
application/json` exactly.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import requests
import websocket

from ..core.errors import (
    NODERED_AUTH, NODERED_CONFLICT, NODERED_NOT_RUNNING, NODERED_REJECTED, NODERED_UNREACHABLE, TYPES_MISSING,
    SyncError, network_reason,
)
from ..failpoints import failpoint

log = logging.getLogger("flow_gitops.nodered")

DEPLOYMENT_TYPES = ("full", "nodes", "flows", "reload")


def _ws_url(base: str) -> str:
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/comms", "", ""))


class NodeRed:
    """A client of one Flow App. `token()` is called per request so rotation applies."""

    def __init__(self, url: str, token: Callable[[], str], timeout: float = 30.0, confirm_timeout: float = 60.0) -> None:
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.confirm_timeout = confirm_timeout
        self.session = requests.Session()
        self.calls = 0  # HTTP calls made, for tests and metrics

    def _headers(self, extra: dict | None = None) -> dict:
        h = {"Node-RED-API-Version": "v2"}
        tok = self.token()
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        h.update(extra or {})
        return h

    def _request(self, method: str, path: str, **kw) -> requests.Response:
        self.calls += 1
        try:
            resp = self.session.request(method, self.base + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            reason = network_reason(exc)  # a timeout while reading the body comes as a ConnectionError
            if reason == "timed out":
                raise SyncError(NODERED_UNREACHABLE, f"the Flow App at {self.base} did not answer {method} {path} within "
                                                     f"{self.timeout:g} s (timed out)") from None
            raise SyncError(NODERED_UNREACHABLE, f"the Flow App is unreachable at {self.base}: {reason} ({method} {path})") from None
        if resp.status_code == 401:
            raise SyncError(NODERED_AUTH, f"the Flow App refused the admin token (HTTP 401 on {method} {path})")
        if resp.status_code == 403:
            raise SyncError(NODERED_AUTH, f"the admin token lacks permission for {method} {path} (HTTP 403)")
        if resp.status_code == 409:
            raise SyncError(NODERED_CONFLICT, "the Flow App's flows changed while deploying (HTTP 409 version_mismatch)")
        if resp.status_code >= 500:
            raise SyncError(NODERED_UNREACHABLE, f"the Flow App answered HTTP {resp.status_code} on {method} {path}")
        if resp.status_code >= 400:
            code, message = str(resp.status_code), resp.text[:200]
            try:
                body = resp.json()
                code, message = body.get("code", code), body.get("message", message)
            except ValueError:
                pass
            raise SyncError(NODERED_REJECTED, f"the Flow App rejected {method} {path}: HTTP {resp.status_code} {code}: {message}")
        return resp

    def get_flows(self) -> tuple[list[dict], str]:
        body = self._request("GET", "/flows", headers=self._headers()).json()
        return body.get("flows", []), body.get("rev", "")

    def node_types(self) -> set[str]:
        """Every node type the Flow App has registered (enabled node sets)."""
        return self.inventory()[0]

    def _node_sets(self) -> list[dict]:
        return self._request("GET", "/nodes", headers=self._headers({"Accept": "application/json"})).json()

    def type_owners(self) -> dict[str, tuple[str, str]]:
        """Registered type → (module, version) of the node set providing it."""
        return {t: (s.get("module", ""), s.get("version", "")) for s in self._node_sets() for t in s.get("types", [])}

    def inventory(self) -> tuple[set[str], dict[str, str]]:
        """(registered types, loaded module → version), from one `GET /nodes`."""
        types: set[str] = set()
        modules: dict[str, str] = {}
        for node_set in self._node_sets():
            # A set whose code failed to load is listed with "err" but registers nothing.
            if node_set.get("enabled", True) and "err" not in node_set:
                types.update(node_set.get("types", []))
            if node_set.get("module"):
                modules[node_set["module"]] = node_set.get("version", "")
        return types, modules

    def load_module(self, module: str, version: str) -> str:
        """Ask Node-RED to load a module that is now on disk (POST /nodes). Returns
        "loaded", or "already_loaded" when Node-RED runs some version of it already."""
        try:
            self._request("POST", "/nodes", headers=self._headers({"Content-Type": "application/json"}),
                          data=json.dumps({"module": module, "version": version}))
        except SyncError as err:
            if "module_already_loaded" in err.message:
                return "already_loaded"
            raise
        return "loaded"

    def deploy(self, flows: list[dict], rev: str, deployment_type: str = "flows", expect_missing: set[str] | frozenset = frozenset()) -> str:
        """Deploy `flows` over revision `rev`; return the new revision once the flows run.

        `expect_missing`: node types known to be missing (policy `deploy`): Node-RED's
        missing-types warning for exactly those is the expected outcome, not a failure."""
        if deployment_type not in DEPLOYMENT_TYPES:
            raise ValueError(f"unknown deployment type {deployment_type!r}")
        with CommsListener(self.base, self.token()) as comms:
            comms.wait_retained(timeout=2.0)
            body = self._request(
                "POST", "/flows", headers=self._headers({"Node-RED-Deployment-Type": deployment_type, "Content-Type": "application/json"}),
                data=json.dumps({"rev": rev, "flows": flows}),
            ).json()
            new_rev = body.get("rev", "")
            failpoint("confirm")  # tests: Node-RED took the flows, the start is not confirmed yet
            comms.wait_started(new_rev, timeout=self.confirm_timeout, expect_missing=expect_missing)
        return new_rev

    def ping(self) -> None:
        self._request("GET", "/settings", headers=self._headers())


class CommsListener:
    """A short-lived subscription to `notification/#` on the comms websocket."""

    def __init__(self, base: str, token: str) -> None:
        self.url = _ws_url(base)
        self.token = token
        self.ws: websocket.WebSocket | None = None
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._retained = False

    def __enter__(self) -> "CommsListener":
        try:
            self.ws = websocket.create_connection(self.url, timeout=10)
            if self.token:
                self.ws.send(json.dumps({"auth": self.token}))
                reply = json.loads(self.ws.recv())
                if reply.get("auth") != "ok":
                    raise SyncError(NODERED_AUTH, "the Flow App refused the admin token on its comms websocket")
            self.ws.send(json.dumps({"subscribe": "notification/#"}))
        except (OSError, websocket.WebSocketException) as exc:
            self.close()
            raise SyncError(NODERED_UNREACHABLE, f"could not open the Flow App's comms websocket ({type(exc).__name__})") from None
        self.ws.settimeout(None)
        self._thread = threading.Thread(target=self._read, name="nodered-comms", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except Exception:  # closed or broken: wake waiters and stop
                with self._cond:
                    self.messages.append({"topic": "_closed"})
                    self._cond.notify_all()
                return
            try:
                batch = json.loads(raw)
            except ValueError:
                continue
            if isinstance(batch, dict):
                batch = [batch]
            with self._cond:
                for m in batch:
                    if isinstance(m, dict) and "topic" in m:
                        self.messages.append(m)
                self._cond.notify_all()

    def wait_retained(self, timeout: float) -> None:
        """Wait for the retained state replayed on subscribe, so later messages are new."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(m["topic"] == "notification/runtime-deploy" for m in self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._mark = len(self.messages)

    def wait_started(self, rev: str, timeout: float, expect_missing: set[str] | frozenset = frozenset()) -> None:
        deadline = time.monotonic() + timeout
        seen_start = False
        index = getattr(self, "_mark", 0)
        with self._cond:
            while True:
                while index < len(self.messages):
                    m = self.messages[index]
                    index += 1
                    topic, data = m["topic"], m.get("data") or {}
                    if topic == "_closed":
                        raise SyncError(NODERED_NOT_RUNNING, "the Flow App closed its comms websocket before confirming the deploy")
                    if topic == "notification/runtime-state":
                        if data.get("error") == "missing-types":
                            if expect_missing and set(data.get("types", [])) <= set(expect_missing):
                                return  # deployed as asked; those nodes stay unknown until installed
                            types = ", ".join(data.get("types", []))
                            raise SyncError(TYPES_MISSING, f"the Flow App saved the flows but stopped them: missing node types {types}")
                        if data.get("error"):
                            raise SyncError(NODERED_NOT_RUNNING, f"the Flow App stopped the flows: {data.get('error')}")
                        if data.get("state") == "start" and data.get("deploy"):
                            seen_start = True
                    if topic == "notification/runtime-deploy" and data.get("revision") == rev and seen_start:
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SyncError(NODERED_NOT_RUNNING, f"the Flow App did not confirm the new flows running within {timeout:g} s")
                self._cond.wait(left)

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None

    def __exit__(self, *exc) -> None:
        self.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


class DeployWatcher:
    """Listens for every deploy in the Flow App and reports each new revision.

    Runs in a daemon thread, reconnecting with backoff; `on_deploy(rev)` is called for
    each `runtime-deploy` notification (including the retained one on connect).
    """

    def __init__(self, base: str, token: Callable[[], str], on_deploy: Callable[[str], None]) -> None:
        self.base = base
        self.token = token
        self.on_deploy = on_deploy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="nodered-deploy-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                ws = websocket.create_connection(_ws_url(self.base), timeout=10)
                self._ws = ws
                tok = self.token()
                if tok:
                    ws.send(json.dumps({"auth": tok}))
                    ws.recv()
                ws.send(json.dumps({"subscribe": "notification/runtime-deploy"}))
                ws.settimeout(None)
                delay = 1.0
                while not self._stop.is_set():
                    batch = json.loads(ws.recv())
                    for m in batch if isinstance(batch, list) else [batch]:
                        if isinstance(m, dict) and m.get("topic") == "notification/runtime-deploy":
                            rev = (m.get("data") or {}).get("revision")
                            if rev:
                                self.on_deploy(rev)
            except Exception:
                pass
            finally:
                if self._ws is not None:
                    try:
                        self._ws.close()
                    except Exception:
                        pass
                    self._ws = None
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout=3)
