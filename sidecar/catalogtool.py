"""Catalog files on disk: the default catalog, `catalog build` from npm packages,
`catalog import` of a community catalogue."""
from __future__ import annotations

import json
import posixpath
import tarfile
import time
from pathlib import Path

from .core.catalog import Catalog, ModuleInfo, registered_types

DEFAULT_CATALOG = Path(__file__).resolve().parent / "data" / "catalog.json"
MAX_MEMBER_BYTES = 8 * 1024 * 1024


def load_catalog(extra: str = "") -> Catalog:
    """The shipped catalog, with an operator's extra catalog merged over it."""
    cat = Catalog()
    if DEFAULT_CATALOG.exists():
        cat.merge(Catalog.from_json(json.loads(DEFAULT_CATALOG.read_text())))
    if extra:
        cat.merge(Catalog.from_json(json.loads(Path(extra).read_text())))
    return cat


def read_package(tgz: Path) -> ModuleInfo:
    """The node types an npm package tarball registers (its `node-red.nodes` files and
    their .html companions; every .html when the package names no node files)."""
    with tarfile.open(tgz, "r:gz") as tf:
        members = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if m.isfile() and "/" in m.name}

        def read(name: str) -> str:
            m = members.get(posixpath.normpath(name))
            if m is None or m.size > MAX_MEMBER_BYTES:
                return ""
            return tf.extractfile(m).read().decode("utf-8", "replace")

        pkg = json.loads(read("package.json") or "{}")
        nodes = (pkg.get("node-red") or {}).get("nodes") or {}
        files: list[str] = []
        for f in nodes.values():
            if isinstance(f, str):
                files += [f, f[:-3] + ".html" if f.endswith(".js") else f + ".html"]
        if not files:
            files = [n for n in members if n.endswith(".html")]
        types = sorted({t for f in files for t in registered_types(read(f))})
    return ModuleInfo(pkg.get("name", tgz.stem), pkg.get("version", ""), types)


def build(specs: list[str], npm, workdir: Path) -> tuple[Catalog, list[str]]:
    """Catalog entries from package names (fetched with `npm pack`) or local tarballs."""
    cat, problems = Catalog(), []
    for spec in specs:
        try:
            tgz = Path(spec) if spec.endswith((".tgz", ".tar.gz")) and Path(spec).exists() else npm.pack(spec, workdir)
            info = read_package(tgz)
        except Exception as exc:  # report and go on: one bad package must not stop a build
            problems.append(f"{spec}: {exc}")
            continue
        if not info.types:
            problems.append(f"{spec}: registers no node types")
        cat.add(info)
    return cat, problems


def write(cat: Catalog, out: Path, sources: list[str]) -> None:
    data = cat.to_json(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
