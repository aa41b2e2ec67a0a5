"""How flows are laid out as files in the repository (V3), and back.

* `single`: one flows file (Node-RED's own format, as Node-RED Projects keep it) plus
  package.json, under the repository path.
* `split`: under `<path>/<environment>/`: `flows/<slug>.json` per flow (the tab node
  first, then its nodes), `subflows/<slug>.json` per subflow, `config-nodes.json` for
  global configuration nodes.

Every flow keeps a stable git path: the first time a flow is written its path comes
from its label's slug; after that the path is remembered (by flow id), so renaming a
flow never moves its file. Deleting a flow removes its file.

Reading the split layout back (imports: pull with `split`, bidirectional, promotion)
reports problems per file (V7 import errors) instead of stopping at the first one:

* **file names**: every file under `flows/` and `subflows/` must be named
  `<slug>.json`, where the slug is what `slug()` makes: lower-case `a-z`, `0-9` and
  single hyphens between them, at most 64 characters (60 for the label plus room for
  the `-2`, `-3` … that keep two flows with one label apart). No folders below them.
  Hidden files (`.gitkeep`) are skipped; other files of the environment's folder
  (a README) are not flows and are ignored.
* **content**: each file is UTF-8 JSON, an array of objects with a string `id` and
  `type`; an id appears in one file only; a node's `z` names a flow or subflow of the
  set.
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
    return s[:60].rstrip("-") or "flow"  # cut first, then trim: a slug never ends in "-"


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


FLOW_FOLDERS = ("flows", "subflows")
MAX_STEM = 64
_STEM = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class FileProblem:
    """Why one repository file cannot be imported (V7): `path` from the repository root."""

    path: str
    message: str

    def to_dict(self) -> dict:
        return {"path": self.path, "message": self.message}


def name_problem(name: str, folder: str = "flows") -> str | None:
    """Why `name` (a file directly under flows/ or subflows/) is not a valid flow file name."""
    if not name.endswith(".json"):
        return f"not a .json file: only <slug>.json files belong in {folder}/"
    stem = name[: -len(".json")]
    if not _STEM.fullmatch(stem) or len(stem) > MAX_STEM:
        return (f"invalid file name: use a slug of lower-case letters, digits and single hyphens, at most "
                f"{MAX_STEM} characters, such as {slug(stem)}.json")
    return None


def split_candidates(paths: list[str], base: str) -> tuple[list[str], list[FileProblem]]:
    """The files under `base` that hold flows, and the problems of those that are misnamed."""
    prefix = f"{base}/" if base not in ("", ".") else ""
    wanted: list[str] = []
    problems: list[FileProblem] = []
    for path in sorted(paths):
        if not path.startswith(prefix):
            continue
        rel = PurePosixPath(path[len(prefix):])
        if rel.parts == (CONFIG_FILE,):
            wanted.append(path)
            continue
        if len(rel.parts) < 2 or rel.parts[0] not in FLOW_FOLDERS or any(p.startswith(".") for p in rel.parts[1:]):
            continue  # not a flow file (README, hidden files such as .gitkeep)
        if len(rel.parts) > 2:
            problems.append(FileProblem(path, f"no folders below {rel.parts[0]}/: flow files are {rel.parts[0]}/<slug>.json"))
            continue
        problem = name_problem(rel.parts[1], rel.parts[0])
        if problem:
            problems.append(FileProblem(path, problem))
        else:
            wanted.append(path)
    return wanted, problems


def _file_nodes(data: bytes) -> tuple[list[dict] | None, str]:
    """A file's nodes, or None and why not."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except ValueError as exc:
        return None, f"not valid JSON ({exc})"
    if not isinstance(value, list):
        return None, f"must be a JSON array of nodes, found {type(value).__name__}"
    seen: set[str] = set()
    for index, node in enumerate(value):
        if not isinstance(node, dict):
            return None, f"item {index} is not an object"
        node_id, node_type = node.get("id"), node.get("type")
        if not isinstance(node_id, str) or not node_id:
            return None, f"item {index} has no string 'id'"
        if not isinstance(node_type, str) or not node_type:
            return None, f"node {node_id!r} has no string 'type'"
        if node_id in seen:
            return None, f"node id {node_id!r} appears more than once"
        seen.add(node_id)
    return value, ""


def read_split(files: dict[str, bytes]) -> tuple[list[dict], list[FileProblem]]:
    """The flow set back from the split layout's files (path → bytes), and every file's
    problem (one per file). Callers apply nothing unless the problem list is empty."""
    nodes: list[dict] = []
    problems: list[FileProblem] = []
    owner: dict[str, str] = {}  # node id → the file it came from
    for path in sorted(files):
        value, why = _file_nodes(files[path])
        if value is None:
            problems.append(FileProblem(path, why))
            continue
        dup = next((n["id"] for n in value if n["id"] in owner), None)
        if dup is not None:
            problems.append(FileProblem(path, f"node id {dup!r} is also in {owner[dup]}"))
            continue
        owner.update((n["id"], path) for n in value)
        nodes.extend(value)
    if problems:  # a node pointing into a file that failed would only add noise
        return nodes, sorted(problems, key=lambda p: p.path)
    containers = {n["id"] for n in nodes if n["type"] in ("tab", "subflow")}
    stray: dict[str, dict] = {}
    for n in nodes:
        z = n.get("z")
        if z not in (None, "") and z not in containers and owner[n["id"]] not in stray:
            stray[owner[n["id"]]] = n
    for path, n in stray.items():
        problems.append(FileProblem(path, f"node {n['id']!r} ({n['type']}) belongs to flow {n['z']!r}, which no file defines"))
    return nodes, sorted(problems, key=lambda p: p.path)


def describe_problems(problems: list[FileProblem], base: str) -> str:
    """One line for the status reason and the job record; the details are the import errors."""
    if len(problems) == 1:
        return f"{problems[0].path} cannot be imported, nothing was applied: {problems[0].message}"
    shown = ", ".join(p.path for p in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f"{len(problems)} files under {base}/ cannot be imported (see the import errors), nothing was applied: {shown}{more}"


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
