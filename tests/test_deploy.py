"""The ways to run it for real (O2): the sidecar image, deploy/compose.yaml and
deploy/kubernetes. No Docker engine or cluster here, so: hadolint on the Dockerfile, the
build context rebuilt from .dockerignore and the wheel built and run from it, compose
parsed by a spec-complete parser, every Kubernetes manifest (base and rendered overlays)
validated against the API schemas, and every configuration they carry checked by the
sidecar itself against the secret layout the platform will mount."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import kubernetes_validate
import pytest
import requests
import yaml
from compose_spec import PyCompose

from sidecar import configload
from sidecar.adapters.secrets import DirSecretSource, RedactingFilter
from tests.servers.common import free_port
from tests.servers.nodered import NodeRedServer, node_binary, red_js

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
OVERLAYS = ("dev", "staging", "production")
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CLI = [sys.executable, "-m", "sidecar"]
HADOLINT = Path(sys.executable).parent / "hadolint"
PLUGIN = "node-red-contrib-flow-gitops"


def version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)


# --- Dockerfile ------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def hadolint(text: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HADOLINT), "--no-color", "-"], input=text, capture_output=True, text=True, timeout=60)


def test_dockerfile_is_hadolint_clean_and_hadolint_does_catch_problems():
    text = (ROOT / "Dockerfile").read_text()
    res = hadolint(text)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr
    # the linter really runs: a floating base tag and an apt install without
    # --no-install-recommends are reported
    bad = text.replace("FROM python:${PYTHON_VERSION}-slim-bookworm\n", "FROM python:latest\n")
    bad = bad.replace("apt-get install -y --no-install-recommends", "apt-get install -y")
    out = hadolint(bad).stdout
    assert "DL3007" in out and "DL3015" in out, out


def test_dockerfile_shape():
    ins = dockerfile_instructions((ROOT / "Dockerfile").read_text())
    froms = [a for i, a in ins if i == "FROM"]
    stages = {a.split(" AS ")[1] for a in froms if " AS " in a}
    assert stages == {"node", "build"} and len(froms) == 3  # two builder stages, one runtime
    final = ins[max(n for n, (i, _) in enumerate(ins) if i == "FROM"):]
    runtime = "\n".join(f"{i} {a}" for i, a in final)
    assert "slim" in froms[-1]
    assert re.search(r"apt-get install -y --no-install-recommends git openssh-client ca-certificates", runtime)
    assert "rm -rf /var/lib/apt/lists/*" in runtime
    assert re.search(r"--mount=type=bind,from=build,source=/dist.*pip install --no-cache-dir /tmp/dist/\*\.whl", runtime)
    user = [a for i, a in final if i == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert any(i == "HEALTHCHECK" and "/healthz" in a for i, a in final)
    assert ("EXPOSE", "8472 8471") in final
    assert any(i == "ENV" and "FLOW_GITOPS_API__HTTP_LISTEN=0.0.0.0:8472" in a for i, a in final)
    assert ("ENTRYPOINT", '["flow-gitops"]') in final
    # no secret baked in: no credential-looking ENV/ARG, no COPY of secrets or state
    for i, a in ins:
        if i in ("ENV", "ARG"):
            assert not re.search(r"(?i)(token|password|secret|key)\s*=", a), (i, a)
        if i == "COPY":
            assert not re.search(r"(?i)secret|\.env|data/|api-token", a.replace("sidecar/", "")), a
    # Node 22 by default (ARG), the same Node image used for node/npm and for packing the plugin
    assert ("ARG", "NODE_MAJOR=22") in ins
    assert froms[0] == "node:${NODE_MAJOR}-bookworm-slim AS node"


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: patterns in order, the last match wins, `!` re-includes; a pattern
    that matches a parent directory matches everything below it."""
    def rx(p: str) -> re.Pattern:
        out = ""
        i = 0
        while i < len(p):
            if p.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif p.startswith("**", i):
                out += ".*"
                i += 2
            elif p[i] == "*":
                out += "[^/]*"
                i += 1
            elif p[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(p[i])
                i += 1
        return re.compile(out + "$")

    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        r = rx(pat[1:].strip("/") if neg else pat.strip("/"))
        if any(r.match(c) for c in candidates):
            excluded = not neg
    return excluded


def build_context(dest: Path) -> list[str]:
    """Copy what `docker build .` would send (per .dockerignore) to dest; the relative paths."""
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sent = []
    for rel in tracked:
        if (ROOT / rel).is_file() and not dockerignore_excludes(rel, patterns):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
            sent.append(rel)
    return sent


def test_the_build_context_has_every_file_the_dockerfile_copies_and_nothing_else(tmp_path):
    ctx = tmp_path / "context"
    sent = build_context(ctx)
    ins = dockerfile_instructions((ROOT / "Dockerfile").read_text())
    copies = [a for i, a in ins if i == "COPY" and not a.startswith("--from=")]
    assert copies, "the Dockerfile copies nothing from the context?"
    for args in copies:
        *sources, _dest = args.split()
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: missing from the repository"
            assert (ctx / src).exists(), f"COPY {src}: excluded by .dockerignore"
    # what goes in is what the image needs, never the venv, tools, node_modules or state
    assert "sidecar/data/catalog.json" in sent and "editor_plugin/gitops.js" in sent
    for rel in sent:
        assert rel.split("/")[0] in ("pyproject.toml", "README.md", "sidecar", "editor_plugin"), rel
        assert "node_modules" not in rel and "__pycache__" not in rel and "/test/" not in f"/{rel}", rel
    for excluded in (".venv/bin/python", ".tools/package.json", "editor_plugin/node_modules/x/package.json",
                     "tests/conftest.py", "deploy/compose.yaml", "sidecar/__pycache__/app.cpython-311.pyc", "demo-run/data/state.db"):
        patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert dockerignore_excludes(excluded, patterns), excluded
    # every `COPY --from=` and `--mount … from=` names a stage of this Dockerfile
    stages = {a.split(" AS ")[1] for i, a in ins if i == "FROM" and " AS " in a}
    for i, a in ins:
        for ref in re.findall(r"(?:--from=|,from=)([\w-]+)", a):
            assert ref in stages, f"{i} {a}: unknown stage {ref}"


def test_the_wheel_built_from_the_context_runs(tmp_path):
    """The builder stage's `pip wheel` from exactly the build context; the wheel alone
    (dependencies aside) runs the CLI and reads its packaged data."""
    ctx = tmp_path / "context"
    build_context(ctx)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(ctx)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("flow_gitops-*.whl")
    assert wheel.name == f"flow_gitops-{version()}-py3-none-any.whl"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=120)
    assert (target / "sidecar" / "data" / "catalog.json").is_file()
    assert (target / "sidecar" / "api" / "gen" / "flowgitops" / "v1" / "gitops_pb2.py").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    code = "import sidecar, sys; print(sidecar.__file__); from sidecar.cli import main; sys.exit(main(sys.argv[1:]))"
    res = subprocess.run([sys.executable, "-c", code, "--version"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.splitlines() == [str(target / "sidecar" / "__init__.py"), f"flow-gitops {version()}"]


# --- compose ---------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def secret_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, value in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(value + "\n")
    return root


def validate_config(path: Path, env: dict[str, str], *sets: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_GITOPS_")}
    return subprocess.run([*CLI, "config", "validate", str(path), *[a for s in sets for a in ("--set", s)]],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_compose_file_is_valid_and_everything_it_references_exists():
    text = (DEPLOY / "compose.yaml").read_text()

    def spec(source: str) -> PyCompose:
        # the compose specification, strictly; YAML merge keys (<<) resolved first, as compose does
        return PyCompose.from_json(json.dumps(yaml.safe_load(source)))

    assert sorted(spec(text).service_names()) == ["flow-gitops", "node-red", "plugin-install"]
    with pytest.raises(ValueError):
        spec(text.replace("stop_grace_period: 45s", "stop_grace_period: 45 seconds"))
    with pytest.raises(ValueError):
        spec(text.replace("    read_only: true", "    readonly: true"))

    c = compose()
    svc = c["services"]
    assert re.fullmatch(r"nodered/node-red:5\.\d+\.\d+-debian", svc["node-red"]["image"])
    assert svc["flow-gitops"]["image"] == svc["plugin-install"]["image"] == f"flow-gitops:{version()}"
    build = svc["plugin-install"]["build"]
    assert svc["flow-gitops"]["build"] == build  # both build the image: nothing is pulled under our name
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert build["args"]["NODE_MAJOR"] == "24"  # the Node.js of nodered/node-red:5.x
    # every published port is on loopback
    for name, s in svc.items():
        for port in s.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    # bind mounts and secret files: relative to deploy/; the secrets are the user's to create
    for name, s in svc.items():
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).is_file(), f"{name}: {src} does not exist"
            else:
                assert src in c["volumes"], f"{name}: unknown volume {src}"
    documented = (ROOT / "docs" / "compose.md").read_text()
    for name, sec in c["secrets"].items():
        assert sec["file"].startswith("./secrets/"), name
        assert sec["file"][2:] in documented, f"docs/compose.md does not say how to create {sec['file']}"
    for name, s in svc.items():
        for ref in s.get("secrets", []):
            assert ref["source"] in c["secrets"] and ref["target"].startswith("/run/secrets/")
    # Node-RED and the sidecar share the userDir where the sidecar's config says it is
    cfg = yaml.safe_load((DEPLOY / "config" / "flow-gitops.yaml").read_text())
    mounts = {n: {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", [])} for n, s in svc.items()}
    assert mounts["flow-gitops"][cfg["flow_app"]["user_dir"]] == mounts["node-red"]["/data"] == mounts["plugin-install"]["/data"] == "userdir"
    assert mounts["flow-gitops"][cfg["data_dir"]] == "state"
    assert mounts["flow-gitops"]["/etc/flow-gitops/config.yaml"] == "./config/flow-gitops.yaml"
    # the sidecar reaches Node-RED by service name; the plugin reaches the sidecar's HTTP port
    assert cfg["flow_app"]["url"] == "http://node-red:1880"
    assert svc["node-red"]["environment"]["FLOW_GITOPS_URL"] == f"http://flow-gitops:{cfg['api']['http_listen'].rsplit(':', 1)[1]}"
    assert "uiHost=0.0.0.0" in svc["node-red"]["command"][0] and cfg["api"]["http_listen"].startswith("0.0.0.0:")
    assert svc["flow-gitops"]["read_only"] is True and "/tmp" in svc["flow-gitops"]["tmpfs"]


def compose_secret_view(service: dict, secrets: dict) -> dict[str, str]:
    """In-container path → secret name, as compose mounts them."""
    return {ref["target"]: ref["source"] for ref in service.get("secrets", [])}


def test_compose_sample_config_is_valid_against_the_secrets_compose_mounts(tmp_path):
    c = compose()
    cfg_path = DEPLOY / "config" / "flow-gitops.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    view = compose_secret_view(c["services"]["flow-gitops"], c["secrets"])
    # lay the files out as the container sees them, under a temporary root
    files = {}
    for target, name in view.items():
        rel = PurePosixPath(target).relative_to(cfg["secrets"]["dir"])
        files[str(rel)] = f"value-of-{name}"
    root = secret_tree(tmp_path / "secrets", files)
    res = validate_config(cfg_path, {}, f"secrets.dir={root}")
    assert res.returncode == 0 and res.stdout.strip() == "configuration is valid", res.stdout + res.stderr
    # the sidecar's API token and the plugin's token file are one secret
    api_secret = view[str(PurePosixPath(cfg["secrets"]["dir"]) / cfg["api"]["token"].removeprefix("global.SECRETS.").replace(".", "/"))]
    nr = c["services"]["node-red"]
    assert compose_secret_view(nr, c["secrets"])[nr["environment"]["FLOW_GITOPS_TOKEN_FILE"]] == api_secret
    # flows see the git credentials only, never the admin or API tokens
    nr_dir = nr["environment"]["NR_SECRETS_DIR"]
    under = sorted(str(PurePosixPath(t).relative_to(nr_dir)) for t in compose_secret_view(nr, c["secrets"]) if t.startswith(nr_dir + "/"))
    assert under == ["git/token", "git/username"]
    # without the secrets the same file is refused, naming the missing path (no value anywhere)
    empty = tmp_path / "empty"
    empty.mkdir()
    res = validate_config(cfg_path, {}, f"secrets.dir={empty}")
    assert res.returncode == 3 and "repository.password" in res.stdout


# --- the editor plugin, installed as compose and Kubernetes install it --------------------

def install_scripts() -> dict[str, str]:
    c = compose()
    from_compose = c["services"]["plugin-install"]["command"][0].replace("$$", "$")
    dep = next(d for d in yaml.safe_load_all((K8S / "base" / "deployment.yaml").read_text()) if d["kind"] == "Deployment")
    (init,) = dep["spec"]["template"]["spec"]["initContainers"]
    return {"compose": from_compose, "kubernetes": init["args"][0]}


def test_the_plugin_install_step_installs_a_plugin_node_red_loads(tmp_path):
    scripts = install_scripts()
    assert scripts["compose"] == scripts["kubernetes"], "compose and Kubernetes install the plugin differently"
    script = scripts["compose"]
    # the tarball the image's node stage makes (npm pack of editor_plugin/)
    packed = subprocess.run(["npm", "pack", str(ROOT / "editor_plugin"), "--pack-destination", str(tmp_path), "--json",
                             "--no-update-notifier", "--loglevel=error"], capture_output=True, text=True, timeout=120, check=True)
    tgz = tmp_path / json.loads(packed.stdout)[0]["filename"]
    user_dir = tmp_path / "userdir"
    user_dir.mkdir()
    env = dict(os.environ, USER_DIR=str(user_dir), PLUGIN_TGZ=str(tgz), npm_config_cache=str(tmp_path / "npm-cache"))
    first = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0 and "flow-gitops plugin: installed" in first.stdout, first.stdout + first.stderr
    again = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout.strip() == "flow-gitops plugin: already installed"
    pkg = json.loads((user_dir / "package.json").read_text())
    assert pkg["dependencies"][PLUGIN] == f"file:.flow-gitops/{PLUGIN}.tgz"  # survives the sidecar's npm installs
    # Node-RED loads it from that userDir and serves the editor half's files
    with NodeRedServer(user_dir) as nr:
        plugins = nr.session.get(nr.url + "/plugins", headers={"Accept": "application/json"}, timeout=10).json()
        assert any(p.get("module") == PLUGIN for p in plugins), plugins
        html = nr.session.get(nr.url + "/plugins", headers={"Accept": "text/html"}, timeout=10).text
        scripts = re.findall(r'src="(resources/[^"]+)"', html)
        assert scripts, "the plugin's editor half (gitops.html) was not loaded"
        for src in scripts:
            r = nr.session.get(f"{nr.url}/{src}", timeout=10)
            assert r.status_code == 200, f"{src} is not in the installed plugin (editor_plugin/package.json \"files\")"


# --- Kubernetes ----------------------------------------------------------------------------

def kustomize(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    # the machine image carries kubectl (Debian package); its absence is a setup problem, not a pass
    assert kubectl is not None, "kubectl is needed to render the kustomizations (`kubectl kustomize`)"
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validate_all(docs: list[dict]) -> None:
    for doc in docs:
        for v in K8S_VERSIONS:
            kubernetes_validate.validate(doc, v, strict=True)


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs if d["kind"] != "ConfigMap"} | {
        d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] == "ConfigMap"}


def test_kustomizations_reference_existing_files_and_patch_kinds_the_base_has():
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    base_objects = {}
    for rel in base["resources"]:
        assert (K8S / "base" / rel).is_file(), rel
        for d in yaml.safe_load_all((K8S / "base" / rel).read_text()):
            base_objects[(d["kind"], d["metadata"]["name"])] = d
    for gen in base["configMapGenerator"]:
        for f in gen["files"]:
            assert (K8S / "base" / f.split("=")[-1]).is_file(), f
    assert (K8S / "base" / "node-red-settings.js").read_text() == (DEPLOY / "node-red" / "settings.js").read_text(), \
        "deploy/kubernetes/base/node-red-settings.js must be a copy of deploy/node-red/settings.js"
    for env in OVERLAYS:
        k = yaml.safe_load((K8S / "overlays" / env / "kustomization.yaml").read_text())
        assert k["resources"] == ["../../base"] and k["namespace"] == f"flow-apps-{env}"
        for p in k["patches"]:
            patch = yaml.safe_load((K8S / "overlays" / env / p["path"]).read_text())
            assert (patch["kind"], patch["metadata"]["name"]) in base_objects, (env, p)


def test_base_manifests_and_the_secret_example_validate():
    docs = []
    for f in sorted((K8S / "base").glob("*.yaml")):
        if f.name not in ("kustomization.yaml", "config.yaml"):
            docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    docs.append(yaml.safe_load((K8S / "secret.example.yaml").read_text()))
    assert {d["kind"] for d in docs} == {"ServiceAccount", "PersistentVolumeClaim", "Deployment", "Service", "NetworkPolicy", "Secret"}
    validate_all(docs)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {env: kustomize(K8S / "overlays" / env) for env in OVERLAYS}


def test_every_rendered_overlay_validates_against_the_kubernetes_schemas(rendered):
    for env, docs in rendered.items():
        assert sorted(d["kind"] for d in docs) == ["ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy",
                                                   "PersistentVolumeClaim", "PersistentVolumeClaim", "Service", "ServiceAccount"]
        assert {d["metadata"]["namespace"] for d in docs} == {f"flow-apps-{env}"}
        validate_all(docs)
    # the check has teeth: a misspelt field is refused
    dep = json.loads(json.dumps(by_kind(rendered["dev"])["Deployment"]))
    dep["spec"]["template"]["spec"]["containers"][1]["readinesProbe"] = dep["spec"]["template"]["spec"]["containers"][1].pop("readinessProbe")
    dep["spec"]["template"]["spec"]["containers"][1]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSIONS[0], strict=True)


def containers(dep: dict) -> dict[str, dict]:
    spec = dep["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def test_the_flow_app_pod_shape(rendered):
    for env, docs in rendered.items():
        k = by_kind(docs)
        dep, svc, pol = k["Deployment"], k["Service"], k["NetworkPolicy"]
        spec = dep["spec"]["template"]["spec"]
        cs = containers(dep)
        assert sorted(cs) == ["flow-gitops", "install-plugin", "node-red"]
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
        assert spec["terminationGracePeriodSeconds"] >= 45
        for name, c in cs.items():
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
            assert c["resources"]["limits"]["memory"], name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        # images: the official Node-RED 5; the sidecar image from the overlay's registry
        assert re.fullmatch(r"nodered/node-red:5\.\d+\.\d+-debian", cs["node-red"]["image"])
        assert cs["flow-gitops"]["image"] == cs["install-plugin"]["image"] == f"registry.example.com/flow-gitops:{version()}"
        # probes on the sidecar's HTTP port, which the config binds on all interfaces
        side = cs["flow-gitops"]
        cfg = yaml.safe_load(k["flow-gitops-config"]["data"]["config.yaml"])
        port = int(cfg["api"]["http_listen"].rsplit(":", 1)[1])
        assert cfg["api"]["http_listen"].startswith("0.0.0.0:")
        assert {p["name"]: p["containerPort"] for p in side["ports"]} == {"gitops-http": port}
        assert side["livenessProbe"]["httpGet"]["path"] == "/healthz" and side["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert side["securityContext"]["readOnlyRootFilesystem"] is True
        assert {m["mountPath"] for m in side["volumeMounts"]} >= {"/tmp", cfg["data_dir"], cfg["flow_app"]["user_dir"], "/etc/flow-gitops"}
        assert {"name": "HOME", "value": "/tmp"} in side["env"]
        # the userDir is one volume in both containers; Node-RED in the same pod on loopback
        def vol(c, path):
            return next(m["name"] for m in c["volumeMounts"] if m["mountPath"] == path)
        assert vol(cs["node-red"], "/data") == vol(side, cfg["flow_app"]["user_dir"]) == vol(cs["install-plugin"], "/data")
        assert cfg["flow_app"]["url"] == "http://127.0.0.1:1880"
        nr_env = {e["name"]: e for e in cs["node-red"]["env"]}
        assert nr_env["FLOW_GITOPS_URL"]["value"] == f"http://127.0.0.1:{port}"
        # the Service and the NetworkPolicy point at this pod and its named ports
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        named = {p["name"] for c in spec["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} == named == {"http", "gitops-http"}
        assert pol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        allowed = {p["port"] for rule in pol["spec"]["ingress"] for p in rule["ports"]}
        assert allowed == {1880, port}  # native gRPC (8471) is never reachable from outside the pod
        assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def kubelet_secret_volume(mount: Path, items: list[dict], data: dict[str, str]) -> None:
    """A Secret volume as the kubelet writes it (AtomicWriter): the files in a timestamped
    directory, `..data` pointing at it, and a symlink per top-level entry."""
    stamp = mount / "..2026_01_01_00_00_00.000000001"
    for item in items:
        f = stamp / item["path"]
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(data[item["key"]])
    (mount / "..data").symlink_to(stamp.name)
    for top in {PurePosixPath(i["path"]).parts[0] for i in items}:
        (mount / top).symlink_to(f"..data/{top}")


def pod_filesystem(tmp_path: Path, dep: dict, container: str, data: dict[str, str]) -> Path:
    """The Secret volumes of `container`, mounted under tmp_path as in the pod."""
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    root = tmp_path / container
    for m in containers(dep)[container]["volumeMounts"]:
        v = vols[m["name"]]
        if "secret" in v:
            mount = root / m["mountPath"].lstrip("/")
            mount.mkdir(parents=True)
            kubelet_secret_volume(mount, v["secret"]["items"], data)
    return root


def secret_keys() -> dict[str, str]:
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    return {k: f"value-of-{k}-0123456789" for k in example["stringData"]}


def test_each_environment_config_is_valid_with_the_secret_the_pod_mounts(rendered, tmp_path):
    data = secret_keys()
    expected = {"dev": ("dev", False), "staging": ("staging", False), "production": ("main", True)}
    for env, docs in rendered.items():
        k = by_kind(docs)
        dep = k["Deployment"]
        cfg_file = tmp_path / env / "config.yaml"
        cfg_file.parent.mkdir()
        cfg_file.write_text(k["flow-gitops-config"]["data"]["config.yaml"])
        side = containers(dep)["flow-gitops"]
        env_vars = {e["name"]: e["value"] for e in side["env"] if "value" in e}
        # every secretKeyRef names a key of the documented Secret
        for c in containers(dep).values():
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "flow-app-secrets" and ref["key"] in data, e
        fs = pod_filesystem(tmp_path / env / "pod", dep, "flow-gitops", data)
        cfg = yaml.safe_load(cfg_file.read_text())
        secrets_dir = fs / cfg["secrets"]["dir"].lstrip("/")
        res = validate_config(cfg_file, env_vars, f"secrets.dir={secrets_dir}")
        assert res.returncode == 0 and res.stdout.strip() == "configuration is valid", (env, res.stdout, res.stderr)
        # the overlay's variables win over the file: the stage name, the branch, approval
        loaded = configload.load(str(cfg_file), env_vars, [f"secrets.dir={secrets_dir}"])
        branch, approval = expected[env]
        assert (loaded.environment, loaded.repository.branch, loaded.sync.require_approval) == (env, branch, approval)
        # every secret value the sidecar may use is known to its log redaction
        source = DirSecretSource(secrets_dir)
        for path in (cfg["repository"]["password"], cfg["flow_app"]["token"], cfg["api"]["token"]):
            assert source.get(path) in source.values()


def node_red_args() -> dict[str, list[str]]:
    """The arguments each deployment gives the official image's entrypoint (after its own
    `--userDir /data flows.json`)."""
    line = next(ln for ln in compose()["services"]["node-red"]["command"][0].splitlines() if "./entrypoint.sh" in ln)
    from_compose = shlex.split(line.split("./entrypoint.sh", 1)[1])
    dep = next(d for d in yaml.safe_load_all((K8S / "base" / "deployment.yaml").read_text()) if d["kind"] == "Deployment")
    return {"compose": from_compose, "kubernetes": containers(dep)["node-red"]["args"]}


def test_node_red_as_deployed_keeps_tokens_from_flows_and_sees_only_the_git_secrets(rendered, tmp_path):
    """Node-RED started the way the pod starts it (settings.js from the ConfigMap, the same
    arguments, the Secret mounted as the kubelet mounts it): adminAuth on, global.SECRETS
    holds the Git credentials only, and flows cannot read the tokens through env.get()."""
    args = node_red_args()
    assert args["compose"] == args["kubernetes"], "compose and Kubernetes start Node-RED differently"
    data = secret_keys()
    dep = by_kind(rendered["production"])["Deployment"]
    nr = containers(dep)["node-red"]
    env = {e["name"]: e.get("value") for e in nr["env"]}
    refs = {e["name"]: data[e["valueFrom"]["secretKeyRef"]["key"]] for e in nr["env"] if "valueFrom" in e}
    fs = pod_filesystem(tmp_path, dep, "node-red", data)
    port = free_port()
    settings = tmp_path / "etc-node-red" / "settings.js"  # the ConfigMap's content, where the args say
    settings.parent.mkdir()
    settings.write_text(by_kind(rendered["production"])["node-red-settings"]["data"]["settings.js"])
    argv = [a.replace("/etc/node-red/settings.js", str(settings)).replace("uiHost=0.0.0.0", "uiHost=127.0.0.1") for a in nr["args"]]
    run_env = dict(os.environ, NR_PORT=str(port), NR_SECRETS_DIR=str(fs / env["NR_SECRETS_DIR"].lstrip("/")), **refs)
    run_env.pop("NR_USER_DIR", None)
    (tmp_path / "data").mkdir()
    log = open(tmp_path / "node-red.log", "wb")
    proc = subprocess.Popen([node_binary(), red_js(), "--userDir", str(tmp_path / "data"), "flows.json", *argv],
                            env=run_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {data['nodered-admin-token']}"}
    try:
        deadline = time.monotonic() + 30
        while "Started flows" not in (tmp_path / "node-red.log").read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "node-red.log").read_text()[-2000:]
            time.sleep(0.1)
        assert requests.get(url + "/flows", timeout=5).status_code == 401  # adminAuth is on
        probe = ("global.set('probe', JSON.stringify({admin: env.get('NR_ADMIN_TOKEN') || null, "
                 "cred: env.get('NR_CREDENTIAL_SECRET') || null, port: env.get('NR_PORT') || null, "
                 "secrets: global.get('SECRETS')}));")
        flows = [{"id": "t1", "type": "tab", "label": "probe"},
                 {"id": "f1", "type": "function", "z": "t1", "func": "return msg;", "outputs": 1, "initialize": probe,
                  "finalize": "", "libs": [], "wires": []}]
        r = requests.post(url + "/flows", json=flows, timeout=10, headers={**auth, "Node-RED-Deployment-Type": "full"})
        assert r.status_code in (200, 204), r.text
        deadline = time.monotonic() + 10
        while True:
            body = requests.get(url + "/context/global/probe", headers=auth, timeout=5).json()
            if body.get("format", "undefined") != "undefined" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        seen = json.loads(body["msg"])
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert seen["port"] == str(port)  # env.get works…
    assert seen["admin"] is None and seen["cred"] is None  # …but not for the tokens
    assert seen["secrets"] == {"git": {"username": data["git-username"], "token": data["git-token"]}}
    # the plugin's token file is the sidecar's API token, mounted outside the SECRETS tree
    token_file = fs / env["FLOW_GITOPS_TOKEN_FILE"].lstrip("/")
    assert token_file.read_text() == data["gitops-api-token"]
    assert not env["FLOW_GITOPS_TOKEN_FILE"].startswith(env["NR_SECRETS_DIR"] + "/")


def test_a_secret_volume_with_nested_item_paths_is_fully_visible_to_the_sidecar(tmp_path):
    """The one-volume layout many users write: `items: [{key: git-token, path: git/token}]`.
    The kubelet then exposes `git` as a symlink to `..data/git`: every value must still be
    readable, offered for autocomplete and redacted from logs."""
    mount = tmp_path / "secrets"
    mount.mkdir()
    data = {"git-token": "nested-token-0123456789", "nodered-admin-token": "nested-admin-0123456789"}
    kubelet_secret_volume(mount, [{"key": "git-token", "path": "git/token"},
                                  {"key": "nodered-admin-token", "path": "nodered/token"}], data)
    source = DirSecretSource(mount)
    assert source.get("global.SECRETS.git.token") == data["git-token"]
    assert sorted(source.values()) == sorted(data.values()), "secrets behind symlinked directories are invisible to redaction"
    import logging
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "token is %s", (data["git-token"],), None)
    RedactingFilter(source).filter(record)
    assert data["git-token"] not in record.getMessage()


# --- the docs a new user follows -------------------------------------------------------------

DOCS = ("getting-started.md", "compose.md", "kubernetes.md", "fleet.md", "troubleshooting.md", "SECURITY.md", "metrics.md")


def shell_blocks(doc: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "docs" / doc).read_text(), re.DOTALL)


def test_every_flow_gitops_command_in_the_docs_is_one_the_cli_accepts():
    from sidecar.cli import build_parser

    subcommands = "serve|sync|status|pull|plan|pause|resume|jobs|retry|approve|reject|demo|catalog|config"
    seen = 0
    for doc in DOCS:
        for block in shell_blocks(doc):
            variables = dict(re.findall(r'^([A-Z])="([^"]*)"$', block, re.MULTILINE))
            for line in block.splitlines():
                for name, value in variables.items():
                    line = line.replace(f"${name}", value)
                m = re.search(rf"(?:^|[\s/])flow-gitops\s+((?:{subcommands})\b.*)$", line)
                if not m:
                    continue
                argv = shlex.split(m.group(1), comments=True)
                try:
                    build_parser().parse_args(argv)
                except SystemExit:
                    raise AssertionError(f"docs/{doc}: `flow-gitops {' '.join(argv)}` is not a valid command") from None
                seen += 1
    assert seen >= 15


def test_links_and_repository_paths_in_the_docs_exist():
    for doc in DOCS:
        text = (ROOT / "docs" / doc).read_text()
        for target, anchor in re.findall(r"\]\(([^)#\s]+)(?:#([^)]*))?\)", text):
            if target.startswith("http"):
                continue
            assert (ROOT / "docs" / target).exists(), f"docs/{doc}: broken link {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / target).read_text(), re.MULTILINE)
                slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, f"docs/{doc}: no heading #{anchor} in {target}"
        for path in re.findall(r"(?<![\w/.-])((?:deploy|docs|scripts|sidecar|editor_plugin)/[\w./-]*[\w/])", text):
            # what the reader creates (secrets, a fleet overlay), and kubectl's `deploy/NAME`
            if path.startswith("deploy/secrets") or "production-orders" in path or path == "deploy/flow-app":
                continue
            assert (ROOT / path.rstrip("/")).exists(), f"docs/{doc}: {path} does not exist"


def test_the_getting_started_configuration_is_valid_with_the_secrets_it_creates(tmp_path):
    doc = (ROOT / "docs" / "getting-started.md").read_text()
    (tmp_path / "flow-gitops.yaml").write_text(re.search(r"```yaml\n(# flow-gitops.yaml\n.*?)```", doc, re.DOTALL).group(1))
    block = next(b for b in shell_blocks("getting-started.md") if "mkdir -p secrets" in b)
    setup = "\n".join(ln for ln in block.splitlines() if ln.startswith(("mkdir", "printf")))
    subprocess.run(["/bin/sh", "-c", setup], cwd=tmp_path, check=True)
    res = subprocess.run([*CLI, "config", "validate", "flow-gitops.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "configuration is valid", res.stdout + res.stderr


def test_the_fleet_overlay_example_renders_one_flow_app_per_instance(tmp_path):
    doc = (ROOT / "docs" / "fleet.md").read_text()
    m = re.search(r"```yaml\n# (deploy/kubernetes/overlays/[\w-]+)/kustomization.yaml\n(.*?)```", doc, re.DOTALL)
    tree = tmp_path / "repo"
    shutil.copytree(K8S, tree / "deploy" / "kubernetes")
    overlay = tree / m.group(1)
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(m.group(2))
    docs = kustomize(overlay)
    validate_all(docs)
    k = by_kind(docs)
    dep, svc, pol = k["Deployment"], k["Service"], k["NetworkPolicy"]
    assert dep["metadata"]["name"] == "orders-flow-app" and dep["metadata"]["namespace"] == "flow-apps-production"
    assert svc["spec"]["selector"]["app.kubernetes.io/instance"] == "orders"
    assert pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "orders"
    spec = dep["spec"]["template"]["spec"]
    assert {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v} == \
        {"orders-flow-app-userdir", "orders-flow-app-state"}
    env = {e["name"]: e.get("value") for e in containers(dep)["flow-gitops"]["env"]}
    assert env["FLOW_GITOPS_REPOSITORY__URL"].endswith("/orders-flows.git") and env["FLOW_GITOPS_SYNC__REQUIRE_APPROVAL"] == "true"


def test_the_kubernetes_settings_js_is_the_same_as_the_one_tests_and_the_demo_use():
    """kustomize needs the file inside the base: it must stay identical to deploy/node-red/settings.js."""
    base = ROOT / "deploy" / "kubernetes" / "base" / "node-red-settings.js"
    assert base.read_text() == (ROOT / "deploy" / "node-red" / "settings.js").read_text()
