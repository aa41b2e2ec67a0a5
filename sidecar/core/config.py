"""The sidecar's configuration: typed values, parsing from plain data, and validation.

Pure: loading from files, environment and flags lives in `sidecar.configload`.
Every credential is a secret path (`global.SECRETS.…`), never a value.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from . import refname, secretpath

MIN_INTERVAL = 120
MODES = ("off", "pull", "push", "bidirectional", "promotion")
PROTOCOLS = ("https", "ssh", "file")
PROVIDERS = ("auto", "github", "gitlab", "bitbucket", "gitea", "generic")
DEPENDENCY_POLICIES = ("hold", "deploy")
_SCP_URL = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


@dataclass
class FlowAppConfig:
    url: str = "http://127.0.0.1:1880"
    """Base URL of the Flow App's Admin API."""
    token: str = ""
    """Secret path of a static adminAuth token; empty when the Flow App has no adminAuth."""
    user_dir: str = ""
    """The Flow App's userDir (shared volume); needed for dependency installs."""
    timeout: float = 30.0
    """Seconds allowed for one Admin API call."""
    confirm_timeout: float = 60.0
    """Seconds to wait for deployed flows to report that they started."""


@dataclass
class SecretsConfig:
    dir: str = ""
    """A directory tree: the file <dir>/git/token holds global.SECRETS.git.token."""
    file: str = ""
    """A JSON or YAML file holding a nested mapping."""
    env_prefix: str = ""
    """Environment variables: <prefix>git__token holds global.SECRETS.git.token."""


@dataclass
class RepositoryConfig:
    protocol: str = "https"
    url: str = ""
    branch: str = "main"
    path: str = "."
    """Folder inside the repository that holds the flows file and package.json."""
    flow_file: str = ""
    """Flows file inside `path`; empty: package.json node-red.settings.flowFile, else flows.json."""
    layout: str = "single"
    """PUSH: `single` (flows file + package.json) or `split` (a file per flow under <environment>/)."""
    provider: str = "auto"
    username: str = ""
    password: str = ""
    ssh_key: str = ""
    ssh_passphrase: str = ""
    known_hosts: str = ""
    """Secret path holding known_hosts lines for SSH."""
    known_hosts_file: str = ""
    """Alternatively, a known_hosts file on disk."""
    ca_file: str = ""
    """PEM bundle to trust for HTTPS (a private CA); empty: the system's."""
    timeout: float = 120.0
    """Wall-clock seconds allowed for one git command."""


@dataclass
class SyncConfig:
    interval: int = MIN_INTERVAL
    """Seconds between checks (at least 120); 0–60 s of random jitter is added."""
    paused: bool = True
    """A first configuration starts paused: nothing is applied until Resume."""
    require_approval: bool = False
    dependency_policy: str = "hold"
    startup_jitter: float = 0.0
    """Seconds over which the first check after a start is spread (fleets: interval + 30, e.g. 150; 0 = at once)."""


@dataclass
class DependenciesConfig:
    registry: str = ""
    """npm registry for installs; empty: https://registry.npmjs.org/. A repository's .npmrc never changes it."""
    registry_token: str = ""
    """Secret path of an auth token for that registry."""
    catalog: str = ""
    """An extra catalog file (ours, a community catalogue or a .config.nodes.json), merged over the default one."""
    type_map: str = ""
    """Explicit choices, "type=module, other-type=@scope/module": win over the catalog's ranking."""
    install_timeout: float = 300.0
    attempts: int = 3
    """Tries per install before recovery reports failure."""
    retry_backoff: float = 5.0
    """Seconds before the second try; doubled before each further one."""
    npm: str = "npm"
    """The npm executable."""


@dataclass
class ApiConfig:
    grpc_listen: str = "127.0.0.1:8471"
    """host:port of the native gRPC server (health, reflection, the service)."""
    http_listen: str = "127.0.0.1:8472"
    """host:port of the HTTP server: gRPC-web, /healthz, /readyz, /metrics."""
    token: str = ""
    """Secret path of the API bearer token; empty: `token_file`."""
    token_file: str = ""
    """File holding the bearer token (default <data_dir>/api-token, created 0600 when absent)."""
    tls_cert: str = ""
    tls_key: str = ""
    """PEM files: both set → TLS on both servers."""
    cors_origins: str = ""
    """Comma-separated exact browser origins allowed to call gRPC-web; empty: CORS off."""


@dataclass
class WebhooksConfig:
    enabled: bool = False
    """Accept provider push webhooks on POST /webhooks (and /webhooks/<provider>) of the HTTP server."""
    secret: str = ""
    """Secret path of the webhook secret; empty: one is generated (and kept in the state database) when enabled."""
    max_body_bytes: int = 1024 * 1024
    """Larger deliveries are refused (413) without being read."""
    rate_per_minute: int = 120
    """Requests a minute accepted from one client address (bursts up to the same number); beyond: 429."""


@dataclass
class PromotionConfig:
    token: str = ""
    """Secret path of the provider API token for pull/merge requests; empty: repository.password."""
    api_base: str = ""
    """Provider API root when it cannot be derived from the repository URL (some self-hosted setups)."""


@dataclass
class AlertsConfig:
    urls: str = ""
    """Comma-separated URLs that receive alerts (git_sync_failed, recovery_failed, drift_detected) as JSON POSTs."""


@dataclass
class LogConfig:
    level: str = "info"
    format: str = "text"  # text | json


@dataclass
class Config:
    environment: str = "default"
    mode: str = "pull"
    data_dir: str = "./data"
    flow_app: FlowAppConfig = field(default_factory=FlowAppConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    repository: RepositoryConfig = field(default_factory=RepositoryConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    dependencies: DependenciesConfig = field(default_factory=DependenciesConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def configured(self) -> bool:
        return bool(self.repository.url)


# Sections a person edits from the tab or API; they persist in the state store.
EDITABLE_SECTIONS = ("repository", "sync")


@dataclass(frozen=True)
class Violation:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ConfigError(ValueError):
    """The configuration is not usable; `violations` says field by field why."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("; ".join(str(v) for v in violations))


def _coerce(value: Any, target: Any, name: str, errors: list[Violation]) -> Any:
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        errors.append(Violation(name, f"must be true or false, got {value!r}"))
        return target
    if isinstance(target, int):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            errors.append(Violation(name, f"must be a whole number, got {value!r}"))
            return target
    if isinstance(target, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            errors.append(Violation(name, f"must be a number, got {value!r}"))
            return target
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        errors.append(Violation(name, f"must be text, got {type(value).__name__}"))
        return target
    return str(value)


def _fill(obj: Any, data: dict, prefix: str, errors: list[Violation]) -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        name = f"{prefix}{key}" if str(key) else f"{prefix}(empty key)"
        if key not in known:
            errors.append(Violation(name, "unknown setting"))
            continue
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                errors.append(Violation(name, "must be a mapping"))
                continue
            _fill(current, value, name + ".", errors)
        else:
            setattr(obj, key, _coerce(value, current, name, errors))


def deep_merge(a: dict, b: dict) -> dict:
    """`a` updated with `b`, recursing into nested mappings (plain data, not Config)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def merge(base: Config, data: dict) -> Config:
    """A copy of `base` with `data` (nested plain values) applied; unknown keys are errors."""
    errors: list[Violation] = []
    cfg = dataclasses.replace(base)
    for f in dataclasses.fields(cfg):
        value = getattr(base, f.name)
        if dataclasses.is_dataclass(value):
            setattr(cfg, f.name, dataclasses.replace(value))
    _fill(cfg, data or {}, "", errors)
    if errors:
        raise ConfigError(errors)
    return cfg


def from_dict(data: dict) -> Config:
    return merge(Config(), data)


def _split(url: str):
    """urlsplit that reports malformed URLs (e.g. a broken IPv6 literal) as None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
        return parts
    except ValueError:
        return None


def _url_error(protocol: str, url: str) -> str | None:
    if not url:
        return "is required"
    if protocol == "ssh":
        if url.startswith("ssh://"):
            parts = _split(url)
            if parts is None:
                return "is not a valid URL"
            if not parts.hostname or not parts.path.strip("/"):
                return "must name a host and a repository path, like ssh://git@host/owner/repo.git"
            if parts.password:
                return "must not contain a password (use an SSH key secret path)"
            return None
        if "://" in url or not _SCP_URL.match(url):
            return "Protocol Mismatch: SSH needs a URL like git@host:owner/repo.git or ssh://git@host/owner/repo.git"
        return None
    if protocol == "https":
        if not url.startswith(("http://", "https://")):
            return "Protocol Mismatch: HTTPS needs a URL starting with http:// or https://"
        parts = _split(url)
        if parts is None:
            return "is not a valid URL"
        if not parts.hostname:
            return "must name a host"
        if parts.password or parts.username:
            return "must not contain credentials: use the username and password secret paths"
        return None
    if protocol == "file":
        if not url.startswith("file://"):
            return "Protocol Mismatch: a local repository needs a file:// URL"
        return None
    return None


def parse_type_map(text: str) -> dict[str, str]:
    """"type=module, other=@scope/module" → {type: module}."""
    out: dict[str, str] = {}
    for item in filter(None, (i.strip() for i in text.replace("\n", ",").split(","))):
        t, sep, m = item.partition("=")
        if not sep or not t.strip() or not m.strip():
            raise ValueError(f"{item!r} is not type=module")
        out[t.strip()] = m.strip()
    return out


def _listen_error(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return "must be host:port, e.g. 127.0.0.1:8471"
    return None


def _relative_path_error(value: str) -> str | None:
    if value.startswith("/") or value.startswith("\\"):
        return "must be relative to the repository root"
    if any(part == ".." for part in value.replace("\\", "/").split("/")):
        return "must not contain '..'"
    return None


def validate(cfg: Config, secret_exists: Callable[[str], bool] | None = None) -> list[Violation]:
    """Every problem with `cfg`, field by field, in words a person understands.

    `secret_exists(path)` tells whether a secret path resolves in the secret source;
    when omitted only the form of secret paths is checked.
    """
    out: list[Violation] = []
    add = lambda f, m: out.append(Violation(f, m))  # noqa: E731

    if cfg.mode not in MODES:
        add("mode", f"must be one of {', '.join(MODES)}")
    if not cfg.environment.strip():
        add("environment", "is required")
    if not cfg.data_dir:
        add("data_dir", "is required")
    fa = _split(cfg.flow_app.url)
    if fa is None or fa.scheme not in ("http", "https") or not fa.hostname:
        add("flow_app.url", "must be an http:// or https:// URL of the Node-RED Admin API")
    elif fa.username or fa.password:
        add("flow_app.url", "must not contain credentials: use flow_app.token (a secret path)")
    sources = [s for s in (cfg.secrets.dir, cfg.secrets.file, cfg.secrets.env_prefix) if s]
    if len(sources) > 1:
        add("secrets", "choose one source: dir, file or env_prefix")

    def secret_field(name: str, value: str, required: bool) -> None:
        if not value:
            if required:
                add(name, "is required")
            return
        problem = secretpath.format_error(value)
        if problem:
            add(name, problem)
        elif secret_exists is not None and not secret_exists(value):
            add(name, f"{value} does not exist in the secret source")

    secret_field("flow_app.token", cfg.flow_app.token, False)
    secret_field("api.token", cfg.api.token, False)
    secret_field("promotion.token", cfg.promotion.token, False)
    secret_field("dependencies.registry_token", cfg.dependencies.registry_token, False)
    deps = cfg.dependencies
    if deps.registry:
        reg = _split(deps.registry)
        if reg is None or reg.scheme not in ("http", "https") or not reg.hostname:
            add("dependencies.registry", "must be an http:// or https:// registry URL")
        elif reg.username or reg.password:
            add("dependencies.registry", "must not contain credentials: use dependencies.registry_token")
    if not 1 <= deps.attempts <= 10:
        add("dependencies.attempts", "must be between 1 and 10")
    if deps.install_timeout <= 0 or deps.retry_backoff < 0:
        add("dependencies.install_timeout", "timeouts and backoff must be positive")
    try:
        parse_type_map(deps.type_map)
    except ValueError as exc:
        add("dependencies.type_map", str(exc))
    for name in ("grpc_listen", "http_listen"):
        problem = _listen_error(getattr(cfg.api, name))
        if problem:
            add(f"api.{name}", problem)
    if bool(cfg.api.tls_cert) != bool(cfg.api.tls_key):
        add("api.tls_cert", "tls_cert and tls_key go together")
    for origin in filter(None, (o.strip() for o in cfg.api.cors_origins.split(","))):
        parts = _split(origin)
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            add("api.cors_origins", f"{origin!r} is not an origin like https://editor.example.com")

    hooks = cfg.webhooks
    secret_field("webhooks.secret", hooks.secret, False)
    if not 1024 <= hooks.max_body_bytes <= 32 * 1024 * 1024:
        add("webhooks.max_body_bytes", "must be between 1024 and 33554432 bytes (32 MiB)")
    if not 1 <= hooks.rate_per_minute <= 100000:
        add("webhooks.rate_per_minute", "must be between 1 and 100000")

    repo = cfg.repository
    if not cfg.configured:
        return out  # not configured yet: nothing more to check
    if repo.protocol not in PROTOCOLS:
        add("repository.protocol", "must be https or ssh")
    else:
        problem = _url_error(repo.protocol, repo.url)
        if problem:
            add("repository.url", problem)
    problem = refname.branch_error(repo.branch)
    if problem:
        add("repository.branch", f"is not a valid branch name: it {problem}")
    for name in ("path", "flow_file"):
        value = getattr(repo, name)
        problem = _relative_path_error(value) if value else None
        if problem:
            add(f"repository.{name}", problem)
    if repo.layout not in ("single", "split"):
        add("repository.layout", "must be single or split")
    if repo.provider not in PROVIDERS:
        add("repository.provider", f"must be one of {', '.join(PROVIDERS)}")
    if repo.timeout <= 0:
        add("repository.timeout", "must be above 0 seconds")
    # Every credential field is checked for form (plaintext is refused) whatever the
    # protocol; which ones are required depends on the protocol.
    https, ssh = repo.protocol == "https", repo.protocol == "ssh"
    secret_field("repository.username", repo.username, False)
    secret_field("repository.password", repo.password, https and bool(repo.username))
    secret_field("repository.ssh_key", repo.ssh_key, ssh)
    secret_field("repository.ssh_passphrase", repo.ssh_passphrase, False)
    secret_field("repository.known_hosts", repo.known_hosts, False)
    if https and repo.password and not repo.username:
        add("repository.username", "is required when a password is given")
    if ssh and not repo.known_hosts and not repo.known_hosts_file:
        add("repository.known_hosts", "is required for SSH (a secret path, or known_hosts_file): host keys are always checked")
    sync = cfg.sync
    if sync.interval < MIN_INTERVAL:
        add("sync.interval", f"must be at least {MIN_INTERVAL} seconds, got {sync.interval}")
    if not 0 <= sync.startup_jitter <= 3600:
        add("sync.startup_jitter", "must be between 0 and 3600 seconds")
    if sync.dependency_policy not in DEPENDENCY_POLICIES:
        add("sync.dependency_policy", "must be hold or deploy")
    for url in filter(None, (u.strip() for u in cfg.alerts.urls.split(","))):
        parts = _split(url)
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            add("alerts.urls", f"{url!r} is not an http(s) URL")
    if cfg.log.format not in ("text", "json"):
        add("log.format", "must be text or json")
    return out
