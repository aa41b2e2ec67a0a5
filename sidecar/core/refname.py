"""Branch-name rules of `git check-ref-format --branch`, checked without running git."""
from __future__ import annotations

_FORBIDDEN = set(" ~^:?*[\\")


def branch_error(name: str) -> str | None:
    """Why git would refuse `name` as a branch, or None if it is acceptable."""
    if not name:
        return "is empty"
    if name.startswith("-"):
        return "must not start with '-'"
    if name == "HEAD":
        return "must not be 'HEAD'"
    if name.endswith("/") or name.startswith("/"):
        return "must not start or end with '/'"
    if name.endswith("."):
        return "must not end with '.'"
    if "//" in name:
        return "must not contain '//'"
    if ".." in name:
        return "must not contain '..'"
    if "@{" in name:
        return "must not contain '@{'"
    for ch in name:
        if ord(ch) < 32 or ord(ch) == 127:
            return "must not contain control characters"
        if ch in _FORBIDDEN:
            return f"must not contain {ch!r}"
    for part in name.split("/"):
        if part.startswith("."):
            return "no path component may start with '.'"
        if part.endswith(".lock"):
            return "no path component may end with '.lock'"
    return None
