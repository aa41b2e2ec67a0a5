"""How flows are laid out as files in the repository (V3), and back.

* `single`: one flows file (Node-RED's own format, as Node-RED Projects keep it) plus
  package.json, under the repository path.
* `split`: under `<path>/<environment>/`: `flows/<slug>.json` per flow (the tab node
  first, then its nodes), `subflows/<slug>.json` per subflow, `config-nodes.json` for
  global configuration nodes.

Every flow keeps a stable git path: the first time a flow is written its path comes
from its label's slug; after that the path is remembered (by flow id), so renaming a
flow never moves its file. Deleting a flow removes its file.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .flows import group_flows

CONFIG_FILE = "config-nodes.json"


def slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:60] or "flow"


def dumps(value) -> str:
    """Node-RED's pretty format (flowFilePretty): 4 spaces, UTF-8, trailing newline."""
    return json.dumps(value, indent=4, ensure_ascii=False) + "\n"


@dataclass
class Files:
    """The repository files a flow set becomes: path → text; `paths` = flow id → path."""

    files: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)


def split_files(nodes: list[dict], base: str, known_paths: dict[str, str]) -> Files:
    """Files of the split layout under `base` (e.g. "apps/production"); stable paths."""
    groups = group_flows(nodes)
    by_container: dict[str, list[dict]] = {}
    heads = {n["id"]: n for n in nodes if n.get("type") in ("tab", "subflow")}
    loose: list[dict] = []
    for n in nodes:
        if n.get("type") in ("tab", "subflow"):
            continue
        z = n.get("z")
        if z and z in heads:
            by_container.setdefault(z, []).append(n)
        else:
            loose.append(n)
    out = Files()
    taken = {p for i, p in known_paths.items() if i in heads}
    for key, g in groups.items():
        if g.kind == "config":
            continue
        path = known_paths.get(g.id)
        if not path:
            folder = "flows" if g.kind == "flow" else "subflows"
            stem = slug(g.label)
            path = str(PurePosixPath(base, folder, f"{stem}.json"))
            n = 2
            while path in taken:
                path = str(PurePosixPath(base, folder, f"{stem}-{n}.json"))
                n += 1
            taken.add(path)
        out.paths[g.id] = path
        out.files[path] = dumps([heads[g.id], *by_container.get(g.id, [])])
    if loose:
        out.files[str(PurePosixPath(base, CONFIG_FILE))] = dumps(loose)
    return out


def single_files(nodes: list[dict], base: str, flow_file: str) -> Files:
    return Files({str(PurePosixPath(base, flow_file)): dumps(nodes)}, {})


def package_json(existing: dict | None, name: str, used_modules: dict[str, str]) -> str:
    """package.json with the modules the flows use (D6: only for PUSH), other keys kept."""
    pkg = dict(existing or {})
    pkg.setdefault("name", slug(name) or "flows")
    pkg.setdefault("version", "0.0.1")
    pkg.setdefault("description", "Node-RED flows kept by flow-gitops")
    deps = dict(pkg.get("dependencies") or {})
    for module, version in sorted(used_modules.items()):
        deps[module] = f"~{version}" if version else "*"
    pkg["dependencies"] = dict(sorted(deps.items()))
    return json.dumps(pkg, indent=4) + "\n"


def read_split(files: dict[str, bytes]) -> list[dict]:
    """The flow set back from the split layout's files (path → bytes); errors name the file."""
    nodes: list[dict] = []
    for path in sorted(files):
        try:
            value = json.loads(files[path].decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(value, list):
            raise ValueError(f"{path}: must be a JSON array of nodes")
        nodes.extend(value)
    return nodes


def commit_message(environment: str, rev: str, changes: list[dict]) -> str:
    """Subject naming what changed, and the trailer that marks our own commits."""
    parts = []
    for action in ("changed", "added", "removed"):
        labels = [c["label"] for c in changes if c["action"] == action]
        if labels:
            shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
            parts.append(f"{action} {shown}")
    subject = f"Deploy from {environment}: " + ("; ".join(parts) if parts else "no flow changes")
    return f"{subject}\n\nFlow-App-Origin: {environment}/{rev}\n"


TRAILER_RE = re.compile(r"^Flow-App-Origin:\s*(\S+)/(\S+)\s*$", re.M)


def origin(message: str) -> tuple[str, str] | None:
    m = TRAILER_RE.search(message or "")
    return (m.group(1), m.group(2)) if m else None
