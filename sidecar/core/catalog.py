"""The node catalog: which npm module provides which Node-RED node type.

Three shapes are read:

* ours (`flow-gitops-catalog/1`): `{"modules": {name: {"version", "types", "downloads"}}}`;
* Node-RED's `.config.nodes.json`: `{module: {"version", "nodes": {set: {"types": [...]}}}}`;
* the community catalogue (catalogue.nodered.org): `{"modules": [{"id", "version", "types",
  "downloads": {"week"}}]}` — types there are extracted statically, so empty lists and junk
  entries (`__errors__`) are ignored, and several modules may claim one type.

Resolving a type follows one rule, in order: a module the repository's package.json
names explicitly; then a configured mapping; then the most-downloaded candidate (ties:
the name sorts first). Types no module claims are reported as unresolved.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

FORMAT = "flow-gitops-catalog/1"
# A registered node type: spaces allowed inside ("mqtt in"), no quotes or line breaks,
# not a placeholder like "__errors__".
_TYPE_RE = re.compile(r"^[^'\"`\r\n\t]{1,100}$")


def plausible_type(t: object) -> bool:
    return isinstance(t, str) and bool(_TYPE_RE.match(t)) and t == t.strip() and not t.startswith("__")


@dataclass
class ModuleInfo:
    name: str
    version: str = ""
    types: list[str] = field(default_factory=list)
    downloads: int = 0

    def to_dict(self) -> dict:
        return {"version": self.version, "types": sorted(self.types), "downloads": self.downloads}


@dataclass
class Resolution:
    by_type: dict[str, str] = field(default_factory=dict)  # type → module
    unresolved: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # type → candidates (when >1)
    reason: dict[str, str] = field(default_factory=dict)  # type → package.json | mapping | catalog

    def modules(self) -> list[str]:
        return sorted(set(self.by_type.values()))


class Catalog:
    def __init__(self, modules: Iterable[ModuleInfo] = ()) -> None:
        self.modules: dict[str, ModuleInfo] = {}
        self._index: dict[str, list[str]] | None = None
        for m in modules:
            self.add(m)

    def add(self, m: ModuleInfo) -> None:
        types = sorted({t for t in m.types if plausible_type(t)})
        if not types:
            return  # an empty list says nothing about what a module provides
        old = self.modules.get(m.name)
        if old:  # merge: keep every type either source saw, the larger download count
            types = sorted(set(old.types) | set(types))
            m = ModuleInfo(m.name, m.version or old.version, types, max(m.downloads, old.downloads))
        self.modules[m.name] = ModuleInfo(m.name, m.version, types, m.downloads)
        self._index = None

    def merge(self, other: "Catalog") -> "Catalog":
        for m in other.modules.values():
            self.add(m)
        return self

    def candidates(self, node_type: str) -> list[str]:
        if self._index is None:
            index: dict[str, list[str]] = {}
            for m in self.modules.values():
                for t in m.types:
                    index.setdefault(t, []).append(m.name)
            self._index = index
        names = self._index.get(node_type, [])
        return sorted(names, key=lambda n: (-self.modules[n].downloads, n))

    def resolve(self, types: Iterable[str], explicit: Iterable[str] = (), mapping: Mapping[str, str] | None = None) -> Resolution:
        explicit = set(explicit)
        mapping = mapping or {}
        out = Resolution()
        for t in sorted(set(types)):
            cands = self.candidates(t)
            if len(cands) > 1:
                out.ambiguous[t] = cands
            named = [c for c in cands if c in explicit]
            if named:
                out.by_type[t], out.reason[t] = named[0], "package.json"
            elif t in mapping:
                out.by_type[t], out.reason[t] = mapping[t], "mapping"
            elif cands:
                out.by_type[t], out.reason[t] = cands[0], "catalog"
            else:
                out.unresolved.append(t)
        return out

    # --- shapes ------------------------------------------------------------
    def to_json(self, generated_at: str = "", sources: list[str] | None = None) -> dict:
        return {"format": FORMAT, "generated_at": generated_at, "sources": sources or [],
                "modules": {n: self.modules[n].to_dict() for n in sorted(self.modules)}}

    @classmethod
    def from_json(cls, data: Mapping) -> "Catalog":
        """Any of the three shapes (see the module docstring)."""
        if not isinstance(data, Mapping):
            raise ValueError("a catalog must be a JSON object")
        mods = data.get("modules")
        if data.get("format") == FORMAT and isinstance(mods, Mapping):
            return cls(ModuleInfo(n, str(v.get("version", "")), list(v.get("types") or []), int(v.get("downloads") or 0))
                       for n, v in mods.items() if isinstance(v, Mapping))
        if isinstance(mods, list):
            return cls.from_community(data)
        return cls.from_nodes_config(data)

    @classmethod
    def from_community(cls, data: Mapping) -> "Catalog":
        out = cls()
        for m in data.get("modules") or []:
            if not isinstance(m, Mapping) or not isinstance(m.get("id"), str):
                continue
            downloads = m.get("downloads") or {}
            week = downloads.get("week", 0) if isinstance(downloads, Mapping) else 0
            types = m.get("types") if isinstance(m.get("types"), list) else []
            out.add(ModuleInfo(m["id"], str(m.get("version") or ""), types, int(week or 0)))
        return out

    @classmethod
    def from_nodes_config(cls, data: Mapping) -> "Catalog":
        out = cls()
        for name, info in data.items():
            if not isinstance(info, Mapping) or not isinstance(info.get("nodes"), Mapping):
                continue
            types = [t for s in info["nodes"].values() if isinstance(s, Mapping) for t in (s.get("types") or [])]
            out.add(ModuleInfo(name, str(info.get("version") or ""), types))
        return out


_REGISTER_RE = re.compile(r"""RED\s*\.\s*nodes\s*\.\s*registerType\s*\(\s*(['"`])([^'"`\r\n]+)\1""")


def registered_types(source: str) -> list[str]:
    """Node types a .js or .html file registers with a literal name."""
    return sorted({m.group(2) for m in _REGISTER_RE.finditer(source) if plausible_type(m.group(2))})
