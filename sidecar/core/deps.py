"""Dependency recovery, decided: what to install so the incoming flows can run.

Inputs are plain values: the repository's package.json dependencies, the modules the
Flow App has (name → version) and which of them Node-RED has loaded, the node types
still missing, and the catalog. The output says which `module@spec` to install and
why, which types no module provides, which specs cannot be installed here, and which
installs replace a loaded module (Node-RED only uses those after a restart).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from . import semver
from .catalog import Catalog


@dataclass(frozen=True)
class Install:
    module: str
    spec: str  # a range, a tag, or "" (the registry's latest)
    reason: str  # "package.json" | "node type <t> (<how>)"
    installed: str = ""  # the version on disk now ("" when absent)
    loaded: bool = False  # Node-RED runs the installed version: an upgrade needs a restart

    @property
    def target(self) -> str:
        return f"{self.module}@{self.spec}" if self.spec else self.module

    def to_dict(self) -> dict:
        return {"module": self.module, "spec": self.spec, "reason": self.reason, "installed": self.installed,
                "restart_required": self.restart_required}

    @property
    def restart_required(self) -> bool:
        return self.loaded and bool(self.installed)


@dataclass
class DepPlan:
    installs: list[Install] = field(default_factory=list)
    unresolved_types: list[str] = field(default_factory=list)
    unsupported: list[dict] = field(default_factory=list)  # {"module", "spec", "why"}
    provides: dict[str, list[str]] = field(default_factory=dict)  # module → missing types it should bring
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"installs": [i.to_dict() for i in self.installs], "unresolved_types": self.unresolved_types,
                "unsupported": self.unsupported, "ambiguous": self.ambiguous}


def plan_dependencies(package_deps: Mapping[str, str], installed: Mapping[str, str], loaded: set[str],
                      types_missing: list[str], catalog: Catalog, mapping: Mapping[str, str] | None = None) -> DepPlan:
    out = DepPlan()
    planned: dict[str, Install] = {}
    for module, spec in sorted(package_deps.items()):
        spec = str(spec).strip()
        have = installed.get(module, "")
        kind = semver.range_kind(spec) if spec else "semver"
        if kind == "semver":
            if have and _satisfies(have, spec or "*"):
                continue
            planned[module] = Install(module, spec, "package.json", have, module in loaded)
        elif kind == "tag":
            if not have:
                planned[module] = Install(module, spec, "package.json")
        elif not have:
            out.unsupported.append({"module": module, "spec": spec,
                                    "why": f"{kind} dependencies are not installed by the sidecar; install it in the Flow App"})
    resolution = catalog.resolve(types_missing, explicit=package_deps.keys(), mapping=mapping)
    out.ambiguous = resolution.ambiguous
    for t in sorted(types_missing):
        module = resolution.by_type.get(t)
        if module is None:
            out.unresolved_types.append(t)
            continue
        out.provides.setdefault(module, []).append(t)
        if module in planned:
            continue
        if installed.get(module) and module in loaded:
            # Node-RED has it but the type is still missing (disabled, or broken): reinstalling won't help.
            out.unresolved_types.append(t)
            continue
        # Absent, or on disk but never loaded (the sidecar died between npm and Node-RED):
        # install (npm finds it in place) and load it.
        spec = package_deps.get(module, "")
        planned[module] = Install(module, spec, f"node type {t} ({resolution.reason[t]})", installed.get(module, ""))
    out.installs = [planned[m] for m in sorted(planned)]
    return out


def _satisfies(version: str, spec: str) -> bool:
    try:
        return semver.satisfies(version, spec)
    except ValueError:
        return False
