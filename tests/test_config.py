"""Unit tests for configuration: typed parsing, per-field validation and loading (C1, C2, C5)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sidecar import configload
from sidecar.core import config, refname
from sidecar.core.config import Config, ConfigError, validate

SECRET_USER = "global.SECRETS.git.user"
SECRET_TOKEN = "global.SECRETS.git.token"
SECRET_KEY = "global.SECRETS.git.ssh_key"
SECRET_HOSTS = "global.SECRETS.git.known_hosts"


def _cfg(**repo) -> Config:
    data = {"repository": {"url": "https://github.com/o/r.git", **repo}}
    return config.from_dict(data)


def _problems(cfg: Config, field: str, **kw) -> list[str]:
    return [v.message for v in validate(cfg, **kw) if v.field == field]


def _url_problems(protocol: str, url: str) -> list[str]:
    return _problems(_cfg(protocol=protocol, url=url), "repository.url")


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize("url", ["https://github.com/o/r.git", "http://git.local:3000/o/r"])
def test_ssh_with_http_url_is_protocol_mismatch(url):
    msgs = _url_problems("ssh", url)
    assert len(msgs) == 1 and "Protocol Mismatch" in msgs[0]
    assert "git@host:owner/repo.git" in msgs[0] and "ssh://" in msgs[0]


@pytest.mark.parametrize("url", ["git@github.com:o/r.git", "ssh://git@github.com/o/r.git"])
def test_https_with_ssh_url_is_protocol_mismatch(url):
    msgs = _url_problems("https", url)
    assert len(msgs) == 1 and "Protocol Mismatch" in msgs[0]
    assert "https://" in msgs[0]


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:o/r.git",
        "git@gitlab.example.com:group/sub/repo.git",
        "deploy-user@10.0.0.5:/srv/git/flows.git",
        "ssh://git@github.com/o/r.git",
        "ssh://git@git.example.com:2222/o/r.git",
    ],
)
def test_ssh_accepts_scp_and_ssh_urls(url):
    assert _url_problems("ssh", url) == []


@pytest.mark.parametrize("url", ["ssh://git@github.com", "ssh://git@github.com/", "ssh:///o/r.git"])
def test_ssh_url_needs_host_and_path(url):
    msgs = _url_problems("ssh", url)
    assert len(msgs) == 1 and "host" in msgs[0]


@pytest.mark.parametrize("url", ["github.com:o/r.git", "git@github.com", "git@github.com:", "git @host:o/r"])
def test_ssh_refuses_malformed_scp(url):
    assert any("Protocol Mismatch" in m for m in _url_problems("ssh", url))


def test_https_accepts_http_and_https():
    assert _url_problems("https", "https://github.com/o/r.git") == []
    assert _url_problems("https", "http://127.0.0.1:8080/o/r.git") == []


def test_file_protocol_needs_file_url():
    assert _url_problems("file", "file:///srv/git/flows.git") == []
    for url in ("/srv/git/flows.git", "https://github.com/o/r.git"):
        msgs = _url_problems("file", url)
        assert len(msgs) == 1 and "Protocol Mismatch" in msgs[0] and "file://" in msgs[0]


def test_unknown_protocol_refused():
    cfg = _cfg(protocol="ftp", url="ftp://x/y")
    assert _problems(cfg, "repository.protocol")


@pytest.mark.parametrize(
    "protocol,url,secret",
    [
        ("https", "https://alice:tok-PLAINTEXT-123@github.com/o/r.git", "tok-PLAINTEXT-123"),
        ("https", "https://tok-PLAINTEXT-123@github.com/o/r.git", "tok-PLAINTEXT-123"),
        ("ssh", "ssh://git:pw-PLAINTEXT-123@github.com/o/r.git", "pw-PLAINTEXT-123"),
    ],
)
@pytest.mark.matrix('attacks', 'credentials embedded in a repository URL', 'configuration',
                    expect='refused without echoing the value')
def test_urls_with_embedded_credentials_refused_without_echoing_them(protocol, url, secret):
    msgs = _url_problems(protocol, url)
    assert msgs, "embedded credentials must be refused"
    assert any("credentials" in m or "password" in m for m in msgs)
    everything = " ".join(str(v) for v in validate(_cfg(protocol=protocol, url=url)))
    assert secret not in everything


def test_flow_app_url_with_embedded_credentials_refused():
    # S1/C2: credentials only ever as secret paths; the Admin API URL is no exception.
    cfg = config.from_dict({"flow_app": {"url": "http://admin:hunter2-secret@127.0.0.1:1880"}})
    violations = validate(cfg)
    assert any(v.field == "flow_app.url" for v in violations)
    assert all("hunter2-secret" not in str(v) for v in violations)


def test_flow_app_url_must_be_http():
    cfg = config.from_dict({"flow_app": {"url": "ftp://127.0.0.1:1880"}})
    assert _problems(cfg, "flow_app.url")
    assert _problems(config.from_dict({}), "flow_app.url") == []


@pytest.mark.parametrize(
    "section,url",
    [("repository", "https://[github.com/o/r.git"), ("repository", "ssh://git@[::1/o/r.git"), ("flow_app", "http://[::1:1880")],
)
def test_malformed_url_gives_violation_not_crash(section, url):
    data = {"repository": {"url": "https://github.com/o/r.git"}}
    data.setdefault(section, {})["url"] = url
    if url.startswith("ssh"):
        data["repository"].update(protocol="ssh", ssh_key=SECRET_KEY, known_hosts=SECRET_HOSTS)
    cfg = config.from_dict(data)
    violations = validate(cfg)  # must report, not raise ValueError from urlsplit
    assert any(v.field == f"{section}.url" for v in violations)


# --------------------------------------------------------------------------- branches

TRICKY_BRANCHES = [
    "main", "feature/x", "a..b", "a.lock", ".hidden", "x/.y", "-x", "@", "a@{b", "with space",
    "tab\t", "end/", "a//b", "end.", "ü-unicode", "release/1.2", "x~1", "a^", "a:b", "a?b",
    "a*b", "a[b", "a\\b", "HEAD", "@{-1}", "/lead", "a/b.lock/c", ".lock", "a@b", "@@",
    "x/..", "refs/heads/x", "-", "a/.", "Main", "v1.0.0-rc.1", "del\x7f", "a]b", "{x}", "a/b/c/d",
]


@pytest.fixture(scope="module")
def git_branch_oracle(tmp_path_factory):
    """`git check-ref-format --branch` run outside any repository."""
    where = tmp_path_factory.mktemp("refname")
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(where.parent), "LC_ALL": "C"}

    def accepts(name: str) -> bool:
        r = subprocess.run(["git", "check-ref-format", "--branch", name], cwd=where, env=env,
                           capture_output=True, timeout=10)
        return r.returncode == 0

    return accepts


@pytest.mark.parametrize("name", TRICKY_BRANCHES, ids=[repr(n) for n in TRICKY_BRANCHES])
def test_branch_error_matches_git(name, git_branch_oracle):
    ours = refname.branch_error(name)
    if git_branch_oracle(name):
        assert ours is None, f"git accepts {name!r} but we refuse it: {ours}"
    else:
        assert isinstance(ours, str) and ours, f"git refuses {name!r} but we accept it"


def test_branch_violation_message_and_case_sensitivity():
    msgs = _problems(_cfg(branch="a..b"), "repository.branch")
    assert msgs == ["is not a valid branch name: it must not contain '..'"]
    assert _problems(_cfg(branch="Main"), "repository.branch") == []
    assert _cfg(branch="Main").repository.branch == "Main"
    assert _problems(_cfg(branch=""), "repository.branch")


# --------------------------------------------------------------------------- interval


@pytest.mark.parametrize("interval", [0, 60, 119, -5])
def test_interval_below_120_refused(interval):
    cfg = config.from_dict({"repository": {"url": "https://github.com/o/r.git"}, "sync": {"interval": interval}})
    msgs = _problems(cfg, "sync.interval")
    assert len(msgs) == 1 and "120" in msgs[0]


@pytest.mark.parametrize("interval", [120, 121, 3600])
def test_interval_at_or_above_120_accepted(interval):
    cfg = config.from_dict({"repository": {"url": "https://github.com/o/r.git"}, "sync": {"interval": interval}})
    assert _problems(cfg, "sync.interval") == []


def test_interval_must_be_whole_number():
    with pytest.raises(ConfigError) as ei:
        config.from_dict({"sync": {"interval": "soon"}})
    assert [v.field for v in ei.value.violations] == ["sync.interval"]
    assert config.from_dict({"sync": {"interval": "300"}}).sync.interval == 300


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "bad",
    ["global.SECRETS", "global.SECRETS.", "global.SECRETS.git..token", "global.SECRETS.git.to ken",
     "global.SECRETS.-x", "global.SECRETS.git.tok$en", "global.secrets.git.token", "SECRETS.git.token"],
)
def test_secret_path_bad_form_refused(bad):
    cfg = _cfg(username=SECRET_USER, password=bad)
    msgs = _problems(cfg, "repository.password")
    assert len(msgs) == 1 and "global.SECRETS." in msgs[0]


@pytest.mark.parametrize("field", ["password", "username", "ssh_key", "ssh_passphrase", "known_hosts"])
@pytest.mark.matrix('attacks', 'a plaintext credential where a secret path belongs', 'configuration',
                    expect='refused without echoing the value')
def test_plaintext_credentials_refused_without_echo(field):
    plaintext = "ghp_PlainTextTokenValue0123456789"
    repo = {"protocol": "ssh", "url": "git@github.com:o/r.git", "ssh_key": SECRET_KEY, "known_hosts": SECRET_HOSTS}
    if field in ("password", "username"):
        repo = {"protocol": "https", "url": "https://github.com/o/r.git", "username": SECRET_USER, "password": SECRET_TOKEN}
    repo[field] = plaintext
    cfg = _cfg(**repo)
    violations = validate(cfg)
    mine = [v for v in violations if v.field == f"repository.{field}"]
    assert len(mine) == 1 and "plaintext" in mine[0].message
    assert all(plaintext not in str(v) for v in violations)
    assert plaintext not in str(ConfigError(violations))


def test_plaintext_flow_app_token_refused_without_echo():
    cfg = config.from_dict({"flow_app": {"token": "s3cr3t-admin-token"}})
    violations = validate(cfg)
    assert [v.field for v in violations] == ["flow_app.token"]
    assert "s3cr3t-admin-token" not in str(violations[0])


def test_secret_existence_checked_through_callback():
    cfg = _cfg(username=SECRET_USER, password=SECRET_TOKEN)
    asked: list[str] = []

    def exists(path: str) -> bool:
        asked.append(path)
        return path == SECRET_USER

    violations = validate(cfg, secret_exists=exists)
    assert sorted(asked) == sorted([SECRET_USER, SECRET_TOKEN])
    assert [(v.field, v.message) for v in violations] == [
        ("repository.password", f"{SECRET_TOKEN} does not exist in the secret source")
    ]
    assert validate(cfg, secret_exists=lambda p: True) == []


def test_secret_callback_not_asked_for_malformed_path():
    asked: list[str] = []
    cfg = _cfg(username=SECRET_USER, password="plain")
    validate(cfg, secret_exists=lambda p: asked.append(p) or True)
    assert "plain" not in asked


def test_required_credentials_per_protocol():
    ssh = _cfg(protocol="ssh", url="git@github.com:o/r.git")
    fields = {v.field for v in validate(ssh)}
    assert {"repository.ssh_key", "repository.known_hosts"} <= fields
    ok = _cfg(protocol="ssh", url="git@github.com:o/r.git", ssh_key=SECRET_KEY, known_hosts_file="/etc/ssh/known_hosts")
    assert validate(ok) == []
    https = _cfg(password=SECRET_TOKEN)
    assert _problems(https, "repository.username") == ["is required when a password is given"]
    assert _problems(_cfg(username=SECRET_USER), "repository.password") == ["is required"]


def test_unconfigured_default_is_valid_and_paused():
    cfg = config.from_dict({})
    assert not cfg.configured
    assert validate(cfg) == []
    assert cfg.sync.paused is True


@pytest.mark.matrix('attacks', "repository.path climbing out with '..'", 'configuration',
                    expect='refused naming the field')
def test_repository_path_must_stay_inside_repo():
    assert _problems(_cfg(path="/etc"), "repository.path") == ["must be relative to the repository root"]
    assert _problems(_cfg(path="flows/../../x"), "repository.path") == ["must not contain '..'"]
    assert _problems(_cfg(path="flows/prod"), "repository.path") == []


def test_choose_one_secret_source():
    cfg = config.from_dict({"secrets": {"dir": "/run/secrets", "env_prefix": "S_"}})
    assert [v.field for v in validate(cfg)] == ["secrets"]


# --------------------------------------------------------------------------- loading


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def test_load_precedence_defaults_file_env_flags(tmp_path):
    f = _write(tmp_path / "c.yaml",
               "environment: from-file\nrepository:\n  branch: file-branch\n  url: https://file/o/r.git\n"
               "sync:\n  interval: 300\n")
    env = {"FLOW_GITOPS_REPOSITORY__BRANCH": "env-branch", "FLOW_GITOPS_SYNC__INTERVAL": "400",
           "FLOW_GITOPS_LOG__LEVEL": "debug", "UNRELATED": "x", "FLOW_GITOPS_NODE": "/usr/bin/node"}
    cfg = configload.load(str(f), env, ["repository.branch=flag-branch"])
    assert cfg.repository.branch == "flag-branch"      # flag beats env and file
    assert cfg.sync.interval == 400                     # env beats file
    assert cfg.log.level == "debug"                     # env beats default
    assert cfg.environment == "from-file"               # file beats default
    assert cfg.repository.url == "https://file/o/r.git"
    assert cfg.repository.protocol == "https"           # default survives
    assert cfg.repository.path == "."


def test_load_env_nested_and_top_level_keys(tmp_path):
    env = {"FLOW_GITOPS_DATA_DIR": str(tmp_path / "d"), "FLOW_GITOPS_SYNC__PAUSED": "false",
           "FLOW_GITOPS_FLOW_APP__URL": "http://nr:1880"}
    cfg = configload.load(None, env)
    assert cfg.data_dir == str(tmp_path / "d")
    assert cfg.sync.paused is False
    assert cfg.flow_app.url == "http://nr:1880"


def test_set_flags_keep_text_values_as_text():
    cfg = configload.load(None, {}, ["repository.branch=release-2", "sync.interval=600", "sync.paused=false"])
    assert cfg.repository.branch == "release-2"
    assert cfg.sync.interval == 600 and cfg.sync.paused is False


@pytest.mark.parametrize("branch", ["1.10", "2024.01", "0123", "yes", "null"])
def test_set_flag_branch_is_taken_verbatim(branch):
    # C1: the branch is exact; `--set repository.branch=1.10` must not become "1.1".
    cfg = configload.load(None, {}, [f"repository.branch={branch}"])
    assert cfg.repository.branch == branch


def test_env_branch_is_taken_verbatim():
    cfg = configload.load(None, {"FLOW_GITOPS_REPOSITORY__BRANCH": "1.10"})
    assert cfg.repository.branch == "1.10"


def test_set_flag_without_equals_refused():
    with pytest.raises(ConfigError) as ei:
        configload.load(None, {}, ["repository.branch"])
    assert ei.value.violations[0].field == "--set"


def test_data_dir_argument_beats_everything(tmp_path):
    f = _write(tmp_path / "c.yaml", "data_dir: /from/file\n")
    cfg = configload.load(str(f), {"FLOW_GITOPS_DATA_DIR": "/from/env"}, ["data_dir=/from/set"], data_dir="/from/arg")
    assert cfg.data_dir == "/from/arg"


def test_relative_paths_in_file_resolve_against_file(tmp_path, monkeypatch):
    conf = tmp_path / "etc" / "flow-gitops"
    f = _write(conf / "c.yaml",
               "data_dir: ../../var/data\nsecrets:\n  dir: secrets\nrepository:\n  known_hosts_file: ssh/known_hosts\n"
               "  ca_file: /abs/ca.pem\nflow_app:\n  user_dir: nr\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = configload.load(str(f), {})
    assert cfg.data_dir == str((tmp_path / "var" / "data").resolve())
    assert cfg.secrets.dir == str((conf / "secrets").resolve())
    assert cfg.repository.known_hosts_file == str((conf / "ssh" / "known_hosts").resolve())
    assert cfg.repository.ca_file == "/abs/ca.pem"
    assert cfg.flow_app.user_dir == str((conf / "nr").resolve())


@pytest.mark.parametrize("how", ["data_dir_arg", "set_flag", "env"])
def test_relative_paths_outside_the_file_resolve_against_cwd(tmp_path, monkeypatch, how):
    # Only paths written *in the config file* are relative to that file.
    conf = tmp_path / "etc"
    f = _write(conf / "c.yaml", "environment: dev\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    kw: dict = {"environ": {}, "sets": []}
    if how == "data_dir_arg":
        kw["data_dir"] = "state"
    elif how == "set_flag":
        kw["sets"] = ["data_dir=state"]
    else:
        kw["environ"] = {"FLOW_GITOPS_DATA_DIR": "state"}
    cfg = configload.load(str(f), **kw)
    assert Path(cfg.data_dir).resolve() == (cwd / "state").resolve()


@pytest.mark.parametrize(
    "text,field",
    [("repositry:\n  url: x\n", "repositry"), ("repository:\n  bogus: 1\n", "repository.bogus"),
     ("sync:\n  interval: 300\n  jitter: 5\n", "sync.jitter")],
)
@pytest.mark.matrix('inputs', 'unknown configuration keys', '',
                    expect='refused naming the key')
def test_unknown_keys_named(tmp_path, text, field):
    f = _write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as ei:
        configload.load(str(f), {})
    assert [v.field for v in ei.value.violations] == [field]
    assert "unknown" in ei.value.violations[0].message


def test_unknown_env_key_named():
    with pytest.raises(ConfigError) as ei:
        configload.load(None, {"FLOW_GITOPS_REPOSITORY__BOGUS": "1"})
    assert [v.field for v in ei.value.violations] == ["repository.bogus"]


def test_section_given_as_scalar_refused():
    with pytest.raises(ConfigError) as ei:
        config.from_dict({"repository": "https://github.com/o/r.git"})
    assert ei.value.violations[0].field == "repository"


@pytest.mark.matrix('inputs', 'a configuration file that is not YAML', '',
                    expect='refused naming the line')
def test_invalid_yaml_reports_line(tmp_path):
    f = _write(tmp_path / "c.yaml", "environment: dev\nrepository:\n  url: x\n  branch: [a, b\nsync: {}\n")
    with pytest.raises(ConfigError) as ei:
        configload.load(str(f), {})
    msg = str(ei.value)
    assert "not valid YAML" in msg and "line " in msg
    tab = _write(tmp_path / "t.yaml", "repository:\n\turl: x\n")
    with pytest.raises(ConfigError) as ei:
        configload.load(str(tab), {})
    assert "line 2" in str(ei.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        configload.load(str(tmp_path / "nope.yaml"), {})
    f = _write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        configload.load(str(f), {})
    empty = _write(tmp_path / "empty.yaml", "")
    assert configload.load(str(empty), {}).environment == "default"


def test_apply_saved_overlays_sections():
    cfg = configload.load(None, {}, ["repository.branch=main"])
    saved = configload.apply_saved(cfg, {"repository": {"branch": "prod"}, "sync": {"interval": 900}})
    assert saved.repository.branch == "prod" and saved.sync.interval == 900
    assert cfg.repository.branch == "main"  # original untouched
    assert configload.apply_saved(cfg, None) is cfg


# --------------------------------------------------------------------------- property


def _field_names() -> list[str]:
    import dataclasses

    names = set()
    for f in dataclasses.fields(Config):
        names.add(f.name)
        default = getattr(Config(), f.name)
        if dataclasses.is_dataclass(default):
            names.update(g.name for g in dataclasses.fields(default))
    return sorted(names)


_INTERESTING = [
    "https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@h/o/r.git", "file:///r", "http://[",
    "https://[::1", "global.SECRETS.git.token", "global.SECRETS", "ssh", "https", "file", "pull", "off",
    "hold", "deploy", "json", "-x", "..", "/abs", "120", "true", "",
]
_scalars = st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none(), st.sampled_from(_INTERESTING))
_keys = st.one_of(st.sampled_from(_field_names()), st.text(max_size=8))
_nested = st.recursive(_scalars, lambda inner: st.dictionaries(_keys, inner, max_size=5), max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _nested, max_size=6))
@example({"repository": {"url": "https://[x"}})
@example({"flow_app": {"url": "http://["}})
@example({"": None})  # an empty key must still yield a named field
@pytest.mark.matrix('inputs', 'configuration (hypothesis: any nested mapping)', '',
                    expect='only ConfigError naming fields; never another exception')
def test_from_dict_and_validate_only_raise_config_error(data):
    try:
        cfg = config.from_dict(data)
    except ConfigError as exc:
        assert exc.violations
        assert all(v.field and v.message for v in exc.violations)
        return
    for exists in (None, lambda p: False):
        violations = validate(cfg, secret_exists=exists)
        assert all(isinstance(v.field, str) and v.field and v.message for v in violations)
