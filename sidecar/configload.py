"""Where configuration comes from, in increasing precedence:

1. built-in defaults (`sidecar.core.config`);
2. the YAML file given with `--config`;
3. environment variables `FLOW_GITOPS_<KEY>`, nested keys joined by `__`
   (`FLOW_GITOPS_REPOSITORY__URL`, `FLOW_GITOPS_SYNC__INTERVAL`, `FLOW_GITOPS_DATA_DIR`);
4. command-line flags (`--set repository.branch=main`, `--data-dir`);
5. the `repository` and `sync` sections saved through the API (they live in the
   state database, so what a person saved in the tab survives restarts).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import yaml

from .core.config import Config, ConfigError, Violation, deep_merge, merge

ENV_PREFIX = "FLOW_GITOPS_"
# Variables with this prefix that are not settings.
_NOT_SETTINGS = {"FLOW_GITOPS_NODE", "FLOW_GITOPS_NODE_RED", "FLOW_GITOPS_ADDRESS", "FLOW_GITOPS_TOKEN",
                 "FLOW_GITOPS_TOKEN_FILE", "FLOW_GITOPS_URL", "FLOW_GITOPS_PYTHON", "FLOW_GITOPS_NPM",
                 "FLOW_GITOPS_FAILPOINTS", "FLOW_GITOPS_FAILPOINT_DIR"}  # test-only hooks: sidecar/failpoints.py


def _nest(dotted: str, value: object) -> dict:
    out: dict = {}
    cur = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def read_file(path: str | Path) -> dict:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError([Violation("config", f"file {p} does not exist")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError([Violation("config", f"{p} is not valid YAML{where}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([Violation("config", f"{p} must hold a mapping of settings")])
    return data


def from_env(environ: Mapping[str, str]) -> dict:
    out: dict = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX):].lower().replace("__", ".")
        out = deep_merge(out, _nest(key, value))
    return out


def from_flags(sets: list[str]) -> dict:
    out: dict = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError([Violation("--set", f"expected key=value, got {item!r}")])
        # The raw text: typed fields are converted by the config model, so a branch
        # named 1.10 stays "1.10" (YAML would read it as the number 1.1).
        out = deep_merge(out, _nest(key.strip(), value))
    return out


def load(path: str | None, environ: Mapping[str, str], sets: list[str] | None = None, data_dir: str | None = None) -> Config:
    layers: list[dict] = []
    if path:
        layers.append(_resolve_paths(read_file(path), Path(path).resolve().parent))
    layers.append(from_env(environ))
    layers.append(from_flags(sets or []))
    if data_dir:
        layers.append({"data_dir": data_dir})
    merged: dict = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    return merge(Config(), merged)


# File settings that name paths on disk.
_PATH_KEYS = (("data_dir",), ("secrets", "dir"), ("secrets", "file"), ("repository", "known_hosts_file"),
              ("repository", "ca_file"), ("flow_app", "user_dir"), ("api", "token_file"), ("api", "tls_cert"),
              ("api", "tls_key"), ("dependencies", "catalog"))


def _resolve_paths(data: dict, base: Path) -> dict:
    """Relative file paths written in a config file are relative to that file
    (values from the environment or flags stay relative to the working directory)."""
    for keys in _PATH_KEYS:
        holder = data
        for k in keys[:-1]:
            holder = holder.get(k) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            value = holder.get(keys[-1])
            if isinstance(value, str) and value and not Path(value).is_absolute():
                holder[keys[-1]] = str((base / value).resolve())
    return data


def apply_saved(cfg: Config, saved: dict | None) -> Config:
    """Overlay the sections saved through the API (stored in the state database)."""
    if not saved:
        return cfg
    return merge(cfg, saved)
