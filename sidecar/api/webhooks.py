"""Provider push webhooks on the HTTP server: `POST /webhooks` and `POST /webhooks/<provider>`.

A webhook only *triggers* a sync (`Service.trigger("webhook")`): the engine still asks
Git for the branch head, so a payload cannot choose what is deployed. Checks, in order:

    enabled? (404)  POST? (405)  rate per client address (429)  size (413, not read)
    provider and signature/token (401: no hint which part failed)  payload JSON (400)
    replay (200 "duplicate, ignored")  event (200 "ignored: event x")
    branch (202 "ignored: branch x")  paused (202 "ignored: sync is paused")
    → trigger (202 "accepted")

Events: a push to our branch, in every webhook mode; in `promotion` mode also a pull /
merge request *merged* into our branch (GitHub and Gitea `pull_request` closed with
`merged: true`, GitLab `Merge Request Hook` action `merge`, Bitbucket
`pullrequest:fulfilled`), so that the target environment deploys as soon as a
promotion is merged even when the webhook sends no push events. A request event that
is not a merge is answered 200 "ignored: pull request <action>, not merged". Merge
events pass exactly the same checks, signature first, as pushes.

Every request is counted in `flow_gitops_webhook_requests_total{provider,result}`. The
last announced push to our branch is kept in the state store (`webhook_last`) so that a
poll that finds a commit no webhook announced can say the webhook looks broken.

The secret is `webhooks.secret` (a secret path, read at each request: rotation needs no
restart) or, without one, a random secret generated when webhooks are enabled and kept
in the state database (`webhook_secret`), shown once through `reveal_secret()` and
deleted when webhooks are turned off.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets as pysecrets
import time
from collections.abc import Callable

from ..core import webhooks as wh

log = logging.getLogger("flow_gitops.webhooks")

PREFIX = "/webhooks"
WEBHOOK_LAST = "webhook_last"  # {"provider", "delivery", "ref", "branch", "before", "after", "at", "forced"}
# (a merged request adds "event": "merge" and "number"; its "after" is the merge commit as announced)
WEBHOOK_SECRET = "webhook_secret"  # {"value", "created_at", "shown"} — only for a generated secret
# Modes in which a push webhook means "the repository changed: sync".
WEBHOOK_MODES = ("pull", "bidirectional", "promotion")
# Modes in which a merged pull/merge request into our branch means the same.
MERGE_MODES = ("promotion",)
RESULTS = ("accepted", "ignored", "duplicate", "unauthorized", "too_large", "rate_limited", "rejected")
_SAFE = re.compile(r"[^A-Za-z0-9._/@+-]")


def _safe(text: str, limit: int = 100) -> str:
    """Payload text echoed in a response or a log line: printable, short."""
    return _SAFE.sub("?", text)[:limit]


class _Disconnected(Exception):
    pass


class WebhookEndpoint:
    """The ASGI handler (one instance serves every webhook path) and the secret's keeper."""

    def __init__(self, app, count: Callable[[str, str], None] | None = None, now: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.count = count or (lambda provider, result: None)
        self.now = now
        self.monotonic = monotonic
        self._refusals: dict[str, list] = {}  # source → [last logged (monotonic), count since]
        cfg = app.cfg.webhooks
        self.replays = wh.ReplayGuard()
        self.limiter = wh.RateLimiter(per_minute=cfg.rate_per_minute)
        self.settle_secret()
        app.config_listeners.append(self.settle_secret)  # a first configuration turns webhooks on

    # --- routes and state ---------------------------------------------------
    def routes(self) -> dict[str, Callable]:
        """Paths for `HttpApp.extra_routes`."""
        return {PREFIX: self, **{f"{PREFIX}/{p}": self for p in wh.PROVIDERS}}

    @property
    def enabled(self) -> bool:
        cfg = self.app.cfg
        return bool(cfg.webhooks.enabled and cfg.mode in WEBHOOK_MODES and cfg.configured)

    def settle_secret(self) -> None:
        """Generate the secret when webhooks are enabled without a secret path; delete a
        generated one when they are off (or a secret path replaced it)."""
        stored = self.app.store.get(WEBHOOK_SECRET)
        if self.enabled and not self.app.cfg.webhooks.secret:
            if not (isinstance(stored, dict) and stored.get("value")):
                self.app.store.put(WEBHOOK_SECRET, {"value": pysecrets.token_urlsafe(32), "created_at": self.now(), "shown": False})
                log.info("webhooks enabled: a webhook secret was generated (shown once through the API)")
        elif stored is not None:
            self.app.store.delete(WEBHOOK_SECRET)
            log.info("webhooks off or given a secret path: the generated webhook secret was cleared")

    def secret(self) -> str:
        """The secret deliveries are checked against; "" (everything refused) when none."""
        if not self.enabled:
            return ""
        path = self.app.cfg.webhooks.secret
        if path:
            return (self.app.secrets.get(path) or "").strip()
        stored = self.app.store.get(WEBHOOK_SECRET)
        return stored.get("value", "") if isinstance(stored, dict) else ""

    def reveal_secret(self) -> str | None:
        """The generated secret, once: the first call returns it and marks it shown; later
        calls (and a secret that comes from a secret path) return None."""
        if not self.enabled or self.app.cfg.webhooks.secret:
            return None
        stored = self.app.store.get(WEBHOOK_SECRET)
        if not isinstance(stored, dict) or not stored.get("value") or stored.get("shown"):
            return None
        self.app.store.put(WEBHOOK_SECRET, dict(stored, shown=True))
        return stored["value"]

    def info(self) -> dict:
        """What the API and the tab may show: never the secret itself."""
        stored = self.app.store.get(WEBHOOK_SECRET)
        source = "secret_path" if self.app.cfg.webhooks.secret else ("generated" if isinstance(stored, dict) else "none")
        return {
            "enabled": self.enabled,
            "paths": sorted(self.routes()),
            "provider": self._configured_provider() or "auto",
            "secret_source": source,
            "secret_shown": bool(isinstance(stored, dict) and stored.get("shown")),
            "last": self.app.store.get(WEBHOOK_LAST),
        }

    def _configured_provider(self) -> str | None:
        repo = self.app.cfg.repository
        if repo.provider in wh.PROVIDERS:
            return repo.provider
        return None

    # --- the request ----------------------------------------------------------
    def _warn(self, client: str, fmt: str, *args) -> None:
        """Refusals are logged at most once a minute per source (with a count): a flood of
        forged deliveries must not become a flood of log lines."""
        now = time.monotonic()
        seen = self._refusals.setdefault(client, [0.0, 0])
        seen[1] += 1
        if now - seen[0] >= 60.0:
            log.warning("webhook from %s " + fmt + " (%d refused from this source in the last minute)", client, *args, seen[1])
            seen[0], seen[1] = now, 0
        if len(self._refusals) > 4096:
            self._refusals.clear()

    async def __call__(self, scope, receive, send) -> None:
        headers = wh.normalize_headers(scope.get("headers") or [])
        path_provider = scope["path"][len(PREFIX) + 1:] or None
        provider = path_provider or self._configured_provider() or wh.detect_provider(headers)
        label = provider if provider in wh.PROVIDERS else "generic"

        async def reply(status: int, result: str, message: str, extra=()) -> None:
            self.count(label, result)
            body = json.dumps({"result": result, "message": message}).encode() + b"\n"
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"), *extra]})
            await send({"type": "http.response.body", "body": body})

        if not self.enabled:
            return await reply(404, "rejected", "webhooks are not enabled")
        if scope["method"] != "POST":
            return await reply(405, "rejected", "use POST", [(b"allow", b"POST")])
        client = (scope.get("client") or ("unknown", 0))[0]
        if not self.limiter.allow(client, self.monotonic()):
            after = self.limiter.retry_after(client, self.monotonic())
            log.debug("webhook from %s rate limited", client)
            return await reply(429, "rate_limited", "too many requests", [(b"retry-after", str(after).encode())])
        limit = self.app.cfg.webhooks.max_body_bytes
        close = [(b"connection", b"close")]
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            return await reply(400, "rejected", "invalid content-length", close)
        if declared > limit:
            self._warn(client, "refused: %d bytes declared, the limit is %d", declared, limit)
            return await reply(413, "too_large", f"payload larger than {limit} bytes", close)
        try:
            body = await self._read(receive, limit)
        except _Disconnected:
            return None
        if body is None:
            self._warn(client, "refused: body over the limit of %d bytes", limit)
            return await reply(413, "too_large", f"payload larger than {limit} bytes", close)

        secret = self.secret()
        if provider not in wh.PROVIDERS or not wh.verify(provider, headers, body, secret):
            self._warn(client, "refused: not verified (provider %s)", label)
            return await reply(401, "unauthorized", "unauthorized")

        # Verified from here on.
        kind = wh.event_kind(provider, headers, body)
        branch = self.app.cfg.repository.branch
        merge = None
        try:
            push = wh.parse_push(provider, headers, body, branch=branch) if kind in ("push", "tag_push") else None
            if kind == "pull_request" and self.app.cfg.mode in MERGE_MODES:
                merge = wh.parse_merge(provider, headers, body)
        except wh.PayloadError as err:
            log.warning("webhook %s %s refused: %s", label, kind, err)
            return await reply(400, "rejected", str(err))
        delivery = wh.delivery_id(provider, headers, body)
        now = self.monotonic()
        keys = wh.replay_keys(provider, headers, body, push, merge)
        if keys and self.replays.check_and_remember(keys, now):
            log.info("webhook %s delivery=%s: duplicate, ignored", label, _safe(delivery))
            return await reply(200, "duplicate", "duplicate, ignored")
        if merge is not None:
            return await self._merged(merge, label, delivery, reply)
        if push is None:
            log.info("webhook %s delivery=%s event=%s: ignored", label, _safe(delivery), _safe(kind))
            return await reply(200, "ignored", f"ignored: event {_safe(kind)}")
        if push.tag or push.branch != branch:
            what = f"tag {_safe(push.ref[len('refs/tags/'):])}" if push.tag else f"branch {_safe(push.branch)}"
            log.info("webhook %s delivery=%s: ignored %s", label, _safe(delivery), what)
            return await reply(202, "ignored", f"ignored: {what}")
        if push.deleted:
            log.info("webhook %s delivery=%s: branch %s deleted, ignored", label, _safe(delivery), _safe(branch))
            return await reply(202, "ignored", f"ignored: branch {_safe(branch)} deleted")
        record = {"provider": provider, "delivery": delivery[:100], "ref": push.ref, "branch": push.branch,
                  "before": push.before, "after": push.after, "forced": push.forced, "at": self.now()}
        await asyncio.to_thread(self.app.store.put, WEBHOOK_LAST, record)
        if self.app.board.facts().paused:
            log.info("webhook %s delivery=%s after=%s: sync is paused, ignored", label, _safe(delivery), push.after[:8])
            return await reply(202, "ignored", "ignored: sync is paused")
        queued = await asyncio.to_thread(self.app.service.trigger, "webhook")
        log.info("webhook %s delivery=%s branch=%s after=%s: sync %s", label, _safe(delivery), _safe(branch),
                 push.after[:8], queued)
        return await reply(202, "accepted", f"accepted: sync {queued}")

    async def _merged(self, merge: wh.MergeEvent, label: str, delivery: str, reply) -> None:
        """A verified, new pull/merge request event (promotion mode): a merge into our
        branch triggers a sync; anything else is ignored."""
        branch = self.app.cfg.repository.branch
        if not merge.merged:
            what = f"pull request {_safe(merge.action or 'event', 40)}, not merged"
            log.info("webhook %s delivery=%s #%d: ignored (%s)", label, _safe(delivery), merge.number, what)
            return await reply(200, "ignored", f"ignored: {what}")
        if merge.base != branch:
            log.info("webhook %s delivery=%s #%d merged into %s: ignored", label, _safe(delivery), merge.number, _safe(merge.base))
            return await reply(202, "ignored", f"ignored: branch {_safe(merge.base)}")
        # Bitbucket announces a 12-character abbreviation; the sync reads the real head from Git.
        record = {"provider": merge.provider, "delivery": delivery[:100], "ref": f"refs/heads/{branch}", "branch": branch,
                  "before": "", "after": merge.merge_sha, "forced": False, "at": self.now(),
                  "event": "merge", "number": merge.number}
        await asyncio.to_thread(self.app.store.put, WEBHOOK_LAST, record)
        if self.app.board.facts().paused:
            log.info("webhook %s delivery=%s #%d merged: sync is paused, ignored", label, _safe(delivery), merge.number)
            return await reply(202, "ignored", "ignored: sync is paused")
        queued = await asyncio.to_thread(self.app.service.trigger, "webhook")
        log.info("webhook %s delivery=%s #%d merged into %s (%s): sync %s", label, _safe(delivery), merge.number,
                 _safe(branch), merge.merge_sha[:8], queued)
        return await reply(202, "accepted", f"accepted: sync {queued}")

    @staticmethod
    async def _read(receive, limit: int) -> bytes | None:
        """The body, or None as soon as it exceeds `limit` (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

