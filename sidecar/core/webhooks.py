"""Provider push webhooks: who sent it, is it genuine, what does it announce.

Pure: no I/O, no clock, no environment. Facts per provider are in
../shared/PROVIDERS.md §1–§3 (GitHub, GitLab, Bitbucket Cloud, Gitea):

- `detect_provider(headers)` tells providers apart (Gitea before GitHub: Gitea also
  sends `X-GitHub-Event`; Bitbucket Cloud is `X-Event-Key` + `X-Hook-UUID`).
- `verify(provider, headers, body, secret)` checks the provider's secret header in
  constant time. No secret → every request is refused.
- `delivery_id` / `replay_keys` name a delivery so that a replay is recognised.
- `parse_push` / `parse_merge` turn a verified payload into a `PushEvent` /
  `MergeEvent`.
- `ReplayGuard` (bounded, TTL) and `RateLimiter` (token bucket per source) take the
  current time as an argument.

Headers may be given as a mapping or as ASGI `(name, value)` byte pairs; names are
case-insensitive.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
ZERO_SHA = "0" * 40
FORM = "application/x-www-form-urlencoded"

Headers = Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]] | Iterable[tuple[str, str]]


class PayloadError(ValueError):
    """A verified request whose body is not the JSON the provider documents."""


# --------------------------------------------------------------------------- headers


def normalize_headers(headers: Headers) -> dict[str, str]:
    """Lower-case names → values (bytes decoded as latin-1, as HTTP carries them). Repeated
    names keep the first value."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        out.setdefault(str(name).lower(), str(value))
    return out


def _h(headers: Headers) -> dict[str, str]:
    return headers if isinstance(headers, _Normalized) else _Normalized(normalize_headers(headers))


class _Normalized(dict):
    """Marks an already-normalized header dict (internal)."""


def detect_provider(headers: Headers) -> str | None:
    """github | gitlab | bitbucket | gitea, or None when no provider's event header is present."""
    h = _h(headers)
    if "x-gitea-event" in h or "x-gogs-event" in h:
        return "gitea"
    if "x-github-event" in h:
        return "github"
    if "x-gitlab-event" in h:
        return "gitlab"
    if "x-event-key" in h and "x-hook-uuid" in h:
        return "bitbucket"  # Bitbucket Cloud; Data Center sends X-Request-Id instead (out of scope)
    return None


# --------------------------------------------------------------------------- verification


def _is_form(h: Mapping[str, str]) -> bool:
    return h.get("content-type", "").split(";")[0].strip().lower() == FORM


def _form_payload(body: bytes) -> str | None:
    """The `payload` field of a form-encoded body, or None."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("payload")
    return values[0] if values else None


def _hex_hmac(secret: str, data: bytes, algo=hashlib.sha256) -> str:
    return hmac.new(secret.encode("utf-8"), data, algo).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time equality of two strings of any length (digests of equal length compared)."""
    a = hashlib.sha512(expected.encode("utf-8", "surrogateescape")).digest()
    b = hashlib.sha512(given.encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(a, b)


def _prefixed(value: str, algo: str) -> str | None:
    """The hex part of "algo=hex" when the algorithm matches, else None."""
    name, sep, digest = value.strip().partition("=")
    if not sep or name.strip().lower() != algo or not digest:
        return None
    return digest.strip().lower()


def signed_bytes(provider: str, headers: Headers, body: bytes) -> bytes | None:
    """The bytes a provider's signature covers: the raw body, except for Gitea form
    deliveries, where it is the JSON payload string (the decoded `payload` field)."""
    h = _h(headers)
    if provider == "gitea" and _is_form(h):
        payload = _form_payload(body)
        return None if payload is None else payload.encode("utf-8")
    return body


def verify(provider: str, headers: Headers, body: bytes, secret: str) -> bool:
    """True only when the request carries the provider's proof of `secret`.

    GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
    GitLab: `X-Gitlab-Token: <secret>` (line breaks removed from the secret).
    Bitbucket Cloud: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
    Gitea: `X-Gitea-Signature: <hex HMAC-SHA256 of the JSON payload string>` (no prefix).
    Every comparison is constant-time; an empty secret verifies nothing.
    """
    if not secret or provider not in PROVIDERS:
        return False
    h = _h(headers)
    if provider == "gitlab":
        given = h.get("x-gitlab-token", "")
        expected = secret.replace("\r", "").replace("\n", "")
        # Both sides always compared, even when the header is absent (no timing hint).
        return _same(expected, given) and bool(given)
    if provider == "github":
        given = _prefixed(h.get("x-hub-signature-256", ""), "sha256")
    elif provider == "bitbucket":
        given = _prefixed(h.get("x-hub-signature", ""), "sha256")
    else:  # gitea
        raw = h.get("x-gitea-signature") or h.get("x-gogs-signature") or ""
        given = raw.strip().lower() or None
    data = signed_bytes(provider, h, body)
    expected = _hex_hmac(secret, data if data is not None else b"")
    return _same(expected, given or "") and given is not None and data is not None


def sign(provider: str, body: bytes, secret: str, payload: bytes | None = None) -> dict[str, str]:
    """The secret header a provider would send (for tests, fakes and relays).

    `payload` is what Gitea signs for a form delivery (the JSON string); default `body`."""
    if provider == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hex_hmac(secret, body)}
    if provider == "gitlab":
        return {"X-Gitlab-Token": secret}
    if provider == "bitbucket":
        return {"X-Hub-Signature": "sha256=" + _hex_hmac(secret, body)}
    if provider == "gitea":
        return {"X-Gitea-Signature": _hex_hmac(secret, payload if payload is not None else body)}
    raise ValueError(f"unknown provider {provider!r}")


# --------------------------------------------------------------------------- delivery ids


def delivery_id(provider: str, headers: Headers, body: bytes = b"") -> str:
    """The provider's id for this delivery ("" when it sends none).

    GitHub `X-GitHub-Delivery` (kept on manual redelivery); GitLab `Idempotency-Key`
    (same across retries and "Resend"), else `X-Gitlab-Event-UUID` (never
    `X-Gitlab-Webhook-UUID`, new per request); Bitbucket `X-Request-UUID`; Gitea
    `X-Gitea-Delivery` (a manual replay gets a new one: see `replay_keys`)."""
    h = _h(headers)
    if provider == "github":
        value = h.get("x-github-delivery", "")
    elif provider == "gitlab":
        value = h.get("idempotency-key") or h.get("x-gitlab-event-uuid") or ""
    elif provider == "bitbucket":
        value = h.get("x-request-uuid", "")
    elif provider == "gitea":
        value = h.get("x-gitea-delivery") or h.get("x-gogs-delivery") or ""
    else:
        value = ""
    return value.strip()[:200]


def replay_keys(provider: str, headers: Headers, body: bytes = b"", push: PushEvent | None = None,
                merge: MergeEvent | None = None) -> list[str]:
    """Keys under which a delivery is remembered: its delivery id and, for a push, the
    (provider, ref, before, after) it announces — Gitea replays and Bitbucket retries may
    carry a new delivery id, but announce the same push. `before` is part of the key: a
    branch force-pushed back to an earlier commit is a new push, not a replay. A merged
    pull/merge request is announced once: (provider, target branch, number, merge commit) names it."""
    keys = []
    did = delivery_id(provider, headers, body)
    if did:
        keys.append(f"{provider}:delivery:{did}")
    if push is not None and push.after:
        keys.append(f"{provider}:push:{push.ref}:{push.before}:{push.after}")
    if merge is not None and merge.merged and merge.number > 0:
        # with the merge commit: request #7 of another repository behind the same (org-wide)
        # webhook is another merge, not a replay of ours
        keys.append(f"{provider}:merged:{merge.base}:{merge.number}:{merge.merge_sha or merge.head_sha}")
    return keys


# --------------------------------------------------------------------------- events


def event_kind(provider: str, headers: Headers, body: bytes = b"") -> str:
    """A normalized event name: push, tag_push, pull_request, ping, or the provider's own
    name (lower case) for anything else."""
    h = _h(headers)
    if provider == "github":
        name = h.get("x-github-event", "").strip().lower()
        return name or "unknown"
    if provider == "gitea":
        name = (h.get("x-gitea-event") or h.get("x-gogs-event") or "").strip().lower()
        return name or "unknown"
    if provider == "gitlab":
        name = h.get("x-gitlab-event", "").strip().lower()
        return {"push hook": "push", "tag push hook": "tag_push", "merge request hook": "pull_request"}.get(
            name, name.replace(" hook", "").replace(" ", "_") or "unknown")
    if provider == "bitbucket":
        key = h.get("x-event-key", "").strip().lower()
        if key == "repo:push":
            return "push"
        if key.startswith("pullrequest:"):
            return "pull_request"
        return key.replace(":", "_") or "unknown"
    return "unknown"


def load_payload(provider: str, headers: Headers, body: bytes) -> dict:
    """The JSON object a delivery carries (form deliveries: the `payload` field).

    Raises PayloadError when it is not a JSON object."""
    h = _h(headers)
    if _is_form(h):
        text = _form_payload(body)
        if text is None:
            raise PayloadError("the form body has no payload field")
    else:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PayloadError("the body is not UTF-8") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise PayloadError("the payload is not valid JSON") from None
    if not isinstance(data, dict):
        raise PayloadError("the payload is not a JSON object")
    return data


@dataclass(frozen=True)
class PushEvent:
    provider: str
    delivery: str
    ref: str
    """Full ref, `refs/heads/x` or `refs/tags/x`."""
    branch: str
    """Branch name; "" for tags."""
    before: str
    after: str
    """Full SHAs; ZERO_SHA when the ref was created (before) or deleted (after)."""
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    message: str = ""
    """The head commit's message."""
    forced: bool = False
    created: bool = False
    deleted: bool = False
    tag: bool = False
    commits: int = 0
    """Commits the push carried (the provider's total where it says, else those listed)."""
    files_complete: bool = True
    """False when the file lists cannot be trusted to be complete: commit lists truncated
    (GitLab 20, Gitea 5), Bitbucket (no file lists at all), or a commit without lists.
    Then read the changes from Git (before..after)."""

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(sorted({*self.added, *self.modified, *self.removed}))


@dataclass(frozen=True)
class MergeEvent:
    provider: str
    delivery: str
    number: int
    action: str
    """The provider's action (GitHub/Gitea `action`, GitLab `object_attributes.action`,
    Bitbucket the event key's suffix: created, updated, fulfilled, rejected)."""
    merged: bool
    base: str
    """Target branch."""
    head: str
    """Source branch."""
    head_sha: str = ""
    merge_sha: str = ""
    """The merge (or squash, or rebased tip) commit; Bitbucket gives 12-character
    abbreviations: compare by prefix or resolve them."""
    url: str = ""
    state: str = ""


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _sha(value: Any) -> str:
    v = _s(value).strip().lower()
    return v if v and all(c in "0123456789abcdef" for c in v) and len(v) <= 64 else ""


def _split_ref(ref: str) -> tuple[str, bool]:
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):], False
    if ref.startswith("refs/tags/"):
        return "", True
    return ref, False  # a bare branch name


def _files(commits: list) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]:
    """Union of the commits' file lists. A path in more than one list (added then
    changed, removed then re-added, …) is reported as modified: the pushed commit says
    what it finally is. `complete` is False when a commit has no lists."""
    added: set[str] = set()
    modified: set[str] = set()
    removed: set[str] = set()
    complete = True
    for c in commits:
        c = _d(c)
        if not any(k in c for k in ("added", "modified", "removed")):
            complete = False
        added.update(p for p in _l(c.get("added")) if isinstance(p, str))
        modified.update(p for p in _l(c.get("modified")) if isinstance(p, str))
        removed.update(p for p in _l(c.get("removed")) if isinstance(p, str))
    both = (added & removed) | (added & modified) | (removed & modified)
    added -= both
    removed -= both
    modified |= both
    return tuple(sorted(added)), tuple(sorted(modified)), tuple(sorted(removed)), complete


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _ref_push(provider: str, delivery: str, data: dict) -> PushEvent | None:
    """GitHub, GitLab and Gitea: one ref per delivery, `ref`/`before`/`after`/`commits`."""
    ref = _s(data.get("ref"))
    if not ref:
        return None
    branch, tag = _split_ref(ref)
    before = _sha(data.get("before")) or ZERO_SHA
    after = _sha(data.get("after")) or ZERO_SHA
    commits = [c for c in _l(data.get("commits")) if isinstance(c, dict)]
    added, modified, removed, complete = _files(commits)
    if provider == "gitlab":
        total = _int(data.get("total_commits_count"), len(commits))
    elif provider == "gitea":
        total = _int(data.get("total_commits"), len(commits))
    else:
        total = len(commits)
    if total > len(commits):
        complete = False
    head = _d(data.get("head_commit"))
    if not head and commits:
        head = next((c for c in commits if _sha(c.get("id")) == after), commits[-1] if provider != "gitea" else commits[0])
    created = data.get("created") is True or before == ZERO_SHA
    deleted = data.get("deleted") is True or after == ZERO_SHA
    return PushEvent(provider=provider, delivery=delivery, ref=ref, branch=branch, before=before, after=after,
                     added=added, modified=modified, removed=removed, message=_s(head.get("message")).rstrip(),
                     forced=data.get("forced") is True, created=created, deleted=deleted, tag=tag,
                     commits=total, files_complete=complete and not deleted)


def _bitbucket_pushes(delivery: str, data: dict) -> list[PushEvent]:
    out = []
    for change in _l(_d(data.get("push")).get("changes")):
        change = _d(change)
        new, old = change.get("new"), change.get("old")
        ref_obj = _d(new) or _d(old)
        name = _s(ref_obj.get("name"))
        if not name:
            continue
        kind = _s(ref_obj.get("type")) or "branch"
        tag = kind in ("tag", "annotated_tag")
        ref = f"refs/tags/{name}" if tag else f"refs/heads/{name}"
        new_target, old_target = _d(_d(new).get("target")), _d(_d(old).get("target"))
        commits = [c for c in _l(change.get("commits")) if isinstance(c, dict)]
        message = _s(new_target.get("message")) or (_s(commits[0].get("message")) if commits else "")
        out.append(PushEvent(
            provider="bitbucket", delivery=delivery, ref=ref, branch="" if tag else name,
            before=_sha(old_target.get("hash")) or ZERO_SHA, after=_sha(new_target.get("hash")) or ZERO_SHA,
            message=message.rstrip(), forced=change.get("forced") is True,
            created=change.get("created") is True or old is None, deleted=change.get("closed") is True or new is None,
            tag=tag, commits=len(commits), files_complete=False))  # Bitbucket sends no file lists
    return out


def parse_pushes(provider: str, headers: Headers, body: bytes) -> list[PushEvent]:
    """Every ref a push delivery announces (Bitbucket can carry several); [] when the
    delivery is not a push. Raises PayloadError for a push whose body is not JSON."""
    h = _h(headers)
    kind = event_kind(provider, h, body)
    if kind not in ("push", "tag_push"):
        return []
    data = load_payload(provider, h, body)
    delivery = delivery_id(provider, h, body)
    if provider == "bitbucket":
        return _bitbucket_pushes(delivery, data)
    if provider == "gitlab" and _s(data.get("object_kind")) not in ("push", "tag_push"):
        return []
    event = _ref_push(provider, delivery, data)
    return [event] if event else []


def parse_push(provider: str, headers: Headers, body: bytes, branch: str | None = None) -> PushEvent | None:
    """The push a delivery announces, normalized; None when it is not a push.

    With `branch`, a Bitbucket delivery that changes several refs yields the change of that
    branch when there is one."""
    events = parse_pushes(provider, headers, body)
    if not events:
        return None
    if branch is not None:
        for e in events:
            if e.branch == branch and not e.tag:
                return e
    return events[0]


def parse_merge(provider: str, headers: Headers, body: bytes) -> MergeEvent | None:
    """A pull/merge request event, normalized (`merged` says whether it was merged);
    None when the delivery is not one."""
    h = _h(headers)
    if event_kind(provider, h, body) != "pull_request":
        return None
    data = load_payload(provider, h, body)
    delivery = delivery_id(provider, h, body)
    if provider in ("github", "gitea"):
        pr = _d(data.get("pull_request"))
        if not pr:
            return None
        action = _s(data.get("action"))
        merged = action == "closed" and pr.get("merged") is True
        number = _int(data.get("number"), _int(pr.get("number"), 0))
        return MergeEvent(provider, delivery, number, action, merged,
                          base=_s(_d(pr.get("base")).get("ref")), head=_s(_d(pr.get("head")).get("ref")),
                          head_sha=_sha(_d(pr.get("head")).get("sha")),
                          merge_sha=_sha(pr.get("merge_commit_sha")) if merged else "",
                          url=_s(pr.get("html_url")), state=_s(pr.get("state")))
    if provider == "gitlab":
        if _s(data.get("object_kind")) != "merge_request":
            return None
        attrs = _d(data.get("object_attributes"))
        action = _s(attrs.get("action"))
        merged = action == "merge"
        return MergeEvent(provider, delivery, _int(attrs.get("iid"), 0), action, merged,
                          base=_s(attrs.get("target_branch")), head=_s(attrs.get("source_branch")),
                          head_sha=_sha(_d(attrs.get("last_commit")).get("id")),
                          merge_sha=_sha(attrs.get("merge_commit_sha")) if merged else "",
                          url=_s(attrs.get("url")), state=_s(attrs.get("state")))
    if provider == "bitbucket":
        pr = _d(data.get("pullrequest"))
        if not pr:
            return None
        action = h.get("x-event-key", "").strip().lower().partition(":")[2]
        state = _s(pr.get("state"))
        merged = action == "fulfilled" or state == "MERGED"
        source, dest = _d(pr.get("source")), _d(pr.get("destination"))
        return MergeEvent(provider, delivery, _int(pr.get("id"), 0), action, merged,
                          base=_s(_d(dest.get("branch")).get("name")), head=_s(_d(source.get("branch")).get("name")),
                          head_sha=_sha(_d(source.get("commit")).get("hash")),
                          merge_sha=_sha(_d(pr.get("merge_commit")).get("hash")) if merged else "",
                          url=_s(_d(_d(pr.get("links")).get("html")).get("href")), state=state)
    return None


# --------------------------------------------------------------------------- replay and rate


@dataclass
class ReplayGuard:
    """Keys seen in the last `ttl` seconds, at most `capacity` of them (oldest dropped
    first). `now` is passed in by the caller."""

    capacity: int = 4096
    ttl: float = 24 * 3600.0
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict, repr=False)

    def _expire(self, now: float) -> None:
        while self._seen:
            _key, at = next(iter(self._seen.items()))
            if now - at < self.ttl:
                break
            self._seen.popitem(last=False)

    def seen(self, keys: Iterable[str], now: float) -> bool:
        """True when any of `keys` was remembered within the TTL."""
        self._expire(now)
        return any(k in self._seen for k in keys)

    def remember(self, keys: Iterable[str], now: float) -> None:
        self._expire(now)
        for k in keys:
            self._seen.pop(k, None)
            self._seen[k] = now
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def check_and_remember(self, keys: Iterable[str], now: float) -> bool:
        """True (a duplicate) when any key was seen; otherwise remembers them all."""
        keys = list(keys)
        if self.seen(keys, now):
            return True
        self.remember(keys, now)
        return False

    def __len__(self) -> int:
        return len(self._seen)


@dataclass
class RateLimiter:
    """A token bucket per source: `per_minute` requests a minute, bursts up to `burst`
    (default `per_minute`). At most `max_sources` buckets are kept (least recently used
    dropped; a dropped source starts again with a full bucket)."""

    per_minute: int = 120
    burst: int | None = None
    max_sources: int = 10000
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict, repr=False)

    @property
    def capacity(self) -> float:
        return float(self.burst if self.burst is not None else self.per_minute)

    def allow(self, source: str, now: float) -> bool:
        """Take one token for `source`; False when its bucket is empty."""
        rate = self.per_minute / 60.0
        tokens, last = self._buckets.pop(source, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - last) * rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[source] = (tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return ok

    def retry_after(self, source: str, now: float) -> int:
        """Whole seconds until `source` has a token again (at least 1)."""
        tokens, last = self._buckets.get(source, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - last) * self.per_minute / 60.0)
        missing = max(0.0, 1.0 - tokens)
        rate = self.per_minute / 60.0
        return max(1, int(-(-missing // rate)) if rate > 0 else 60)
