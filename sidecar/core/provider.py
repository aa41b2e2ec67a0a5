"""Git hosting providers: detection from a repository URL and links to commits."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket", "codeberg.org": "gitea", "gitea.com": "gitea"}
_SCP = re.compile(r"^[^@/]+@(?P<host>[^:/]+):(?P<path>.+)$")


def host_and_path(url: str) -> tuple[str, str]:
    """(`host`, `owner/repo`) of an HTTPS, ssh:// or scp-like URL; ("", "") if unknown."""
    m = _SCP.match(url)
    if m and "://" not in url:
        host, path = m.group("host"), m.group("path")
    else:
        try:
            parts = urlsplit(url)
            host, path = parts.hostname or "", parts.path
        except ValueError:
            return "", ""
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return host.lower(), path


def detect(url: str, configured: str = "auto") -> str:
    """The provider named in the configuration, else the one the host implies, else generic."""
    if configured and configured != "auto":
        return configured
    host, _ = host_and_path(url)
    return _HOSTS.get(host, "generic")


def _web_root(url: str, host: str) -> str:
    """The web address of the host: an http(s) remote keeps its scheme and port
    (self-hosted Gitea/GitLab on :3000); SSH remotes map to https://host."""
    if url.startswith(("http://", "https://")):
        try:
            parts = urlsplit(url)
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{host}{port}"
        except ValueError:
            pass
    return f"https://{host}"


def commit_link(url: str, provider: str, sha: str) -> str:
    """A web link to `sha`, or "" when the provider is not a known web host."""
    host, path = host_and_path(url)
    if not host or not path or provider in ("generic", "auto", ""):
        return ""
    base = f"{_web_root(url, host)}/{path}"
    if provider == "github":
        return f"{base}/commit/{sha}"
    if provider == "gitlab":
        return f"{base}/-/commit/{sha}"
    if provider == "bitbucket":
        return f"{base}/commits/{sha}"
    if provider == "gitea":
        return f"{base}/commit/{sha}"
    return ""
