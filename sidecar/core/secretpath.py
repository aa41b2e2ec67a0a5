"""Secret paths: `global.SECRETS.<name>[.<name>…]`, the only way credentials are named."""
from __future__ import annotations

import re

PREFIX = "global.SECRETS"
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_PATH_RE = re.compile(rf"^global\.SECRETS(\.{_SEGMENT})+$")


def is_secret_path(value: str) -> bool:
    return bool(_PATH_RE.match(value or ""))


def segments(path: str) -> list[str]:
    """`global.SECRETS.git.token` → ["git", "token"]. Call only on valid paths."""
    return path.split(".")[2:]


def join(parts: list[str]) -> str:
    return ".".join([PREFIX, *parts])


def format_error(value: str) -> str | None:
    """A message saying what is wrong with a secret path, or None when it is well formed."""
    if not value:
        return "is empty"
    if not value.startswith(PREFIX + "."):
        return f"must be a secret path like {PREFIX}.git.token (plaintext values are not accepted)"
    if not is_secret_path(value):
        return f"is not a valid secret path: use {PREFIX}.<name>[.<name>…] with letters, digits, '_' and '-'"
    return None
