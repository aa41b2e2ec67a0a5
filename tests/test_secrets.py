"""Unit tests for secret sources, autocomplete, rotation, watching and redaction (S1–S5)."""
from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from sidecar.adapters.secrets import (
    DirSecretSource,
    EnvSecretSource,
    FileSecretSource,
    RedactingFilter,
    SecretSource,
    SecretWatcher,
    open_source,
)

TOKEN = "ghp_tok3n-VALUE-0123456789"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


# --------------------------------------------------------------------------- directory


def test_dir_nested_and_trailing_newline(tmp_path):
    _write(tmp_path / "git" / "token", TOKEN + "\n")
    _write(tmp_path / "git" / "user", "alice")
    _write(tmp_path / "db" / "prod" / "password", "pw-with-inner\nline\n")
    src = DirSecretSource(tmp_path)
    assert src.get("global.SECRETS.git.token") == TOKEN
    assert src.get("global.SECRETS.git.user") == "alice"
    assert src.get("global.SECRETS.db.prod.password") == "pw-with-inner\nline"
    assert src.get("global.SECRETS.git") is None  # a directory is not a value
    assert src.get("global.SECRETS.git.missing") is None
    assert src.get("git.token") is None  # not a secret path
    assert src.exists("global.SECRETS.git.user") and not src.exists("global.SECRETS.nope")
    assert src.paths() == ["global.SECRETS.db.prod.password", "global.SECRETS.git.token", "global.SECRETS.git.user"]


def test_dir_ignores_dotfiles_and_dot_dirs(tmp_path):
    _write(tmp_path / "git" / "token", TOKEN)
    _write(tmp_path / ".hidden", "h1dden-value")
    _write(tmp_path / "git" / ".swp", "swap-value")
    _write(tmp_path / ".git" / "config", "cfg-value")
    _write(tmp_path / "..data" / "other", "data-value")
    src = DirSecretSource(tmp_path)
    assert src.paths() == ["global.SECRETS.git.token"]
    assert set(src.values()) == {TOKEN}


def _k8s_volume(root: Path, values: dict[str, str], stamp: str) -> None:
    """Lay out `root` the way the kubelet mounts a Secret volume (atomic ..data swap)."""
    ts = root / f"..{stamp}"
    ts.mkdir(parents=True)
    for k, v in values.items():
        (ts / k).write_text(v)
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(ts.name)
    os.replace(tmp_link, root / "..data")
    for k in values:
        link = root / k
        if not link.is_symlink():
            link.symlink_to(f"..data/{k}")


def test_dir_kubernetes_symlink_layout_and_rotation(tmp_path):
    root = tmp_path / "secret-volume"
    _k8s_volume(root, {"token": TOKEN + "\n", "username": "bot"}, "2024_01_01_00_00_00.1")
    src = DirSecretSource(root)
    assert src.get("global.SECRETS.token") == TOKEN
    assert src.paths() == ["global.SECRETS.token", "global.SECRETS.username"]
    _k8s_volume(root, {"token": "rotated-token-value", "username": "bot"}, "2024_01_02_00_00_00.2")
    assert src.get("global.SECRETS.token") == "rotated-token-value"
    assert src.paths() == ["global.SECRETS.token", "global.SECRETS.username"]


@pytest.mark.matrix('attacks', 'a secret-directory entry that is a symlink out of the secret root', 'secrets',
                    expect='not read')
def test_dir_symlink_outside_root_refused(tmp_path):
    outside = tmp_path / "outside"
    _write(outside / "passwd", "outside-secret-value")
    root = tmp_path / "root"
    _write(root / "ok", "fine-value")
    (root / "escape").symlink_to(outside / "passwd")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    src = DirSecretSource(root)
    assert src.get("global.SECRETS.escape") is None
    assert src.get("global.SECRETS.linkdir.passwd") is None
    assert src.paths() == ["global.SECRETS.ok"]
    assert "outside-secret-value" not in src.values()


def test_dir_missing_root_is_empty(tmp_path):
    src = DirSecretSource(tmp_path / "absent")
    assert src.paths() == [] and src.get("global.SECRETS.a") is None


# --------------------------------------------------------------------------- file


def test_file_json_and_rotation(tmp_path):
    f = _write(tmp_path / "secrets.json", json.dumps({"git": {"token": TOKEN, "user": "alice"}, "port": 22}))
    src = FileSecretSource(f)
    assert src.get("global.SECRETS.git.token") == TOKEN
    assert src.get("global.SECRETS.port") == "22"
    assert src.get("global.SECRETS.git") is None
    assert src.paths() == ["global.SECRETS.git.token", "global.SECRETS.git.user", "global.SECRETS.port"]
    _write(f, json.dumps({"git": {"token": "rotated-" + TOKEN, "user": "alice"}}))
    assert src.get("global.SECRETS.git.token") == "rotated-" + TOKEN
    assert src.get("global.SECRETS.port") is None


def test_file_yaml_and_rotation(tmp_path):
    f = _write(tmp_path / "secrets.yaml", "git:\n  token: first-value\n  ssh:\n    key: KEYDATA\n")
    src = FileSecretSource(f)
    assert src.get("global.SECRETS.git.token") == "first-value"
    assert src.get("global.SECRETS.git.ssh.key") == "KEYDATA"
    _write(f, "git:\n  token: second-longer-value\n")
    assert src.get("global.SECRETS.git.token") == "second-longer-value"
    assert src.get("global.SECRETS.git.ssh.key") is None


def test_file_atomic_replace_rotation(tmp_path):
    f = _write(tmp_path / "s.yaml", "token: old-value-1\n")
    src = FileSecretSource(f)
    assert src.get("global.SECRETS.token") == "old-value-1"
    tmp = _write(tmp_path / "s.yaml.tmp", "token: new-value-22\n")
    os.replace(tmp, f)
    assert src.get("global.SECRETS.token") == "new-value-22"


def test_file_unparsable_or_missing_is_empty(tmp_path):
    bad = _write(tmp_path / "bad.json", "{not json")
    assert FileSecretSource(bad).paths() == []
    assert FileSecretSource(tmp_path / "none.yaml").get("global.SECRETS.a") is None
    scalar = _write(tmp_path / "scalar.yaml", "just text\n")
    assert FileSecretSource(scalar).paths() == []


# --------------------------------------------------------------------------- environment


def test_env_source_prefix_and_double_underscore():
    environ = {"FGS_git__token": TOKEN, "FGS_db__prod__pw": "dbpw", "FGS_": "empty-name", "OTHER_git__token": "x",
               "FGS_bad name": "nope"}
    src = EnvSecretSource("FGS_", environ)
    assert src.get("global.SECRETS.git.token") == TOKEN
    assert src.get("global.SECRETS.db.prod.pw") == "dbpw"
    assert src.get("global.SECRETS.git") is None
    assert src.paths() == ["global.SECRETS.db.prod.pw", "global.SECRETS.git.token"]
    environ["FGS_git__token"] = "rotated"
    assert src.get("global.SECRETS.git.token") == "rotated"


def test_open_source_picks_kind(tmp_path):
    assert open_source(dir=str(tmp_path)).kind == "dir"
    assert open_source(file=str(tmp_path / "s.json")).kind == "file"
    assert open_source(env_prefix="X_", environ={}).kind == "env"
    none = open_source()
    assert type(none) is SecretSource and none.get("global.SECRETS.a") is None and none.paths() == []


# --------------------------------------------------------------------------- suggest


@pytest.fixture(params=["dir", "file", "env"])
def populated(request, tmp_path) -> tuple[SecretSource, list[str]]:
    values = {("git", "token"): TOKEN, ("git", "user"): "alice-user", ("db", "password"): "db-pass-value"}
    if request.param == "dir":
        for parts, v in values.items():
            _write(tmp_path.joinpath(*parts), v + "\n")
        src: SecretSource = DirSecretSource(tmp_path)
    elif request.param == "file":
        data: dict = {}
        for (a, b), v in values.items():
            data.setdefault(a, {})[b] = v
        src = FileSecretSource(_write(tmp_path / "s.json", json.dumps(data)))
    else:
        src = EnvSecretSource("S_", {f"S_{a}__{b}": v for (a, b), v in values.items()})
    return src, list(values.values())


def test_suggest_returns_paths_only(populated):
    src, secret_values = populated
    assert src.suggest("global.SECRETS.git") == ["global.SECRETS.git.token", "global.SECRETS.git.user"]
    assert src.suggest("global.SECRETS.") == ["global.SECRETS.db.password", "global.SECRETS.git.token",
                                              "global.SECRETS.git.user"]
    assert src.suggest("global.SECRETS.zzz") == []
    assert src.suggest("global.SECRETS.", limit=1) == ["global.SECRETS.db.password"]
    everything = "\n".join(src.suggest("") + src.paths())
    for v in secret_values:
        assert v not in everything
    assert sorted(src.values()) == sorted(secret_values)


# --------------------------------------------------------------------------- watcher


def _wait(event: threading.Event, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if event.wait(0.05):
            return True
    return False


def test_watcher_reports_dir_change(tmp_path):
    _write(tmp_path / "git" / "token", "one")
    src = DirSecretSource(tmp_path)
    changed = threading.Event()
    watcher = SecretWatcher(src, changed.set)
    watcher.start()
    try:
        time.sleep(0.1)
        _write(tmp_path / "git" / "token", "two-rotated")
        assert _wait(changed), "no change reported within 5 s"
        assert src.get("global.SECRETS.git.token") == "two-rotated"
    finally:
        watcher.stop()


def test_watcher_reports_file_change(tmp_path):
    f = _write(tmp_path / "s.yaml", "token: one\n")
    src = FileSecretSource(f)
    changed = threading.Event()
    watcher = SecretWatcher(src, changed.set)
    watcher.start()
    try:
        time.sleep(0.1)
        _write(f, "token: two-rotated\n")
        assert _wait(changed), "no change reported within 5 s"
        assert src.get("global.SECRETS.token") == "two-rotated"
    finally:
        watcher.stop()


def test_watcher_ignores_env_source():
    watcher = SecretWatcher(EnvSecretSource("X_", {}), lambda: None)
    watcher.start()
    assert watcher._observer is None
    watcher.stop()


# --------------------------------------------------------------------------- redaction


@pytest.fixture
def redacting_logger(tmp_path):
    _write(tmp_path / "git" / "token", TOKEN + "\n")
    _write(tmp_path / "short", "abc")
    src = DirSecretSource(tmp_path)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(src))
    log = logging.getLogger(f"test_secrets.redact.{id(out)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    yield log, out, tmp_path
    log.removeHandler(handler)


@pytest.mark.matrix('attacks', 'a secret value logged by accident (message or arguments)', 'secrets / logs',
                    expect='scrubbed from the line')
def test_redacting_filter_removes_secret_from_message_and_args(redacting_logger):
    log, out, _ = redacting_logger
    log.info("cloning with token %s from %s", TOKEN, "https://github.com/o/r.git")
    log.warning(f"inline {TOKEN} twice {TOKEN}")
    text = out.getvalue()
    assert TOKEN not in text
    assert text.count("***") == 3
    assert "https://github.com/o/r.git" in text


def test_redacting_filter_picks_up_rotation(redacting_logger):
    log, out, root = redacting_logger
    _write(root / "git" / "token", "brand-new-rotated-token\n")
    log.info("now %s", "brand-new-rotated-token")
    assert "brand-new-rotated-token" not in out.getvalue()


def test_redacting_filter_keeps_very_short_values(redacting_logger):
    log, out, _ = redacting_logger
    log.info("abc abc")  # values under 4 characters would shred ordinary text
    assert "abc abc" in out.getvalue()


@pytest.mark.matrix('attacks', "a secret value inside an exception's text", 'secrets / logs',
                    expect='scrubbed from the traceback')
def test_redacting_filter_covers_exception_text(redacting_logger):
    log, out, _ = redacting_logger
    try:
        raise RuntimeError(f"fatal: Authentication failed for https://x:{TOKEN}@github.com/o/r.git")
    except RuntimeError:
        log.exception("git fetch failed")
    text = out.getvalue()
    assert "git fetch failed" in text and "RuntimeError" in text
    assert TOKEN not in text
