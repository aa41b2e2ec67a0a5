"""npm's semver in pure Python: versions, ranges, and how npm reads a dependency spec.

A port of node-semver v7 (the copy npm bundles) with its default options (strict, no
includePrerelease). Ranges go through node-semver's own rewrite pipeline (hyphen, trim,
caret, tilde, x-range, star, >=0.0.0) with the same regular expressions, so odd inputs
(`^0.x`, `1.2.3 - 2`, `>= 1.2.3`, `* || 1.0.0-rc.1`, build metadata) get the answers
`semver.satisfies` gives; tests/test_semver.py checks that against the real node-semver.

parse/valid accept what `semver.clean` accepts (whitespace, leading "v"/"="); satisfies and
max_satisfying read versions like node-semver does (so "=1.2.3" never satisfies anything)
and raise ValueError for specs that are not semver ranges (range_kind(spec) != "semver"),
where node-semver would quietly answer false/null.
"""
from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable

MAX_LENGTH = 256
MAX_SAFE_INTEGER = 2**53 - 1
# JavaScript's \s and String.prototype.trim() set (Python's differs: it includes \x1c-\x1f).
_WS = "\t\n\v\f\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
_WSRUN = re.compile(f"[{_WS}]+")

# --- node-semver's internal/re.js, strict variants (plus LOOSEPLAIN, which COMPARATORTRIM uses) ---
_N, _NL = r"0|[1-9]\d*", r"\d+"
_NN = r"\d*[a-zA-Z-][a-zA-Z0-9-]*"
_PRID, _PRIDL = rf"(?:{_NN}|{_N})", rf"(?:{_NN}|{_NL})"
_PRE = rf"(?:-({_PRID}(?:\.{_PRID})*))"
_PREL = rf"(?:-?({_PRIDL}(?:\.{_PRIDL})*))"
_BUILD = r"(?:\+([a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*))"
_FULLPLAIN = rf"v?({_N})\.({_N})\.({_N}){_PRE}?{_BUILD}?"
_LOOSEPLAIN = rf"[v=\s]*({_NL})\.({_NL})\.({_NL}){_PREL}?{_BUILD}?"
_GTLT = r"((?:<|>)?=?)"
_XID = rf"{_N}|x|X|\*"
_XPLAIN = rf"[v=\s]*({_XID})(?:\.({_XID})(?:\.({_XID})(?:{_PRE})?{_BUILD}?)?)?"


def _re(src: str) -> re.Pattern[str]:
    """Compile like node-semver's safeRe: bounded repetition (same limits), ASCII classes."""
    for tok, n in ((r"\s", 1), (r"\d", MAX_LENGTH), ("[a-zA-Z0-9-]", MAX_LENGTH - 6)):
        src = src.replace(tok + "*", f"{tok}{{0,{n}}}").replace(tok + "+", f"{tok}{{1,{n}}}")
    return re.compile(src, re.ASCII)


_FULL = _re(rf"^{_FULLPLAIN}\Z")
_XRANGE = _re(rf"^{_GTLT}\s*{_XPLAIN}\Z")
_TILDE = _re(rf"^(?:~>?){_XPLAIN}\Z")
_CARET = _re(rf"^(?:\^){_XPLAIN}\Z")
_TILDETRIM = _re(r"(\s*)(?:~>?)\s+")
_CARETTRIM = _re(r"(\s*)(?:\^)\s+")
_COMPARATOR = _re(rf"^{_GTLT}\s*({_FULLPLAIN})\Z|^\Z")
_COMPARATORTRIM = _re(rf"(\s*){_GTLT}\s*({_LOOSEPLAIN}|{_XPLAIN})")
_HYPHEN = _re(rf"^\s*({_XPLAIN})\s+-\s+({_XPLAIN})\s*\Z")
_STAR = _re(r"(<|>)?=?\s*\*")
_GTE0 = _re(r"^\s*>=\s*0\.0\.0\s*\Z")
_BUILD_ONE = _re(_BUILD)
_BUILD_ALL = re.compile(_BUILD, re.ASCII)  # node strips build metadata with the unbounded regex
_NUMERIC = re.compile(r"[0-9]+\Z")


def _cmp_ids(a: int | str, b: int | str) -> int:
    """internal/identifiers.js compareIdentifiers: numeric < alphanumeric, numbers by value."""
    an, bn = (isinstance(x, int) or bool(_NUMERIC.match(x)) for x in (a, b))
    if an and bn and not (isinstance(a, int) and isinstance(b, int)):
        a, b = float(a), float(b)  # JS `+a`: only matters for ids beyond 2**53
    if a == b:
        return 0
    if an != bn:
        return -1 if an else 1
    return -1 if a < b else 1  # type: ignore[operator]


def _cmp_lists(a: tuple, b: tuple) -> int:
    """SemVer.comparePre/compareBuild loop: element-wise, shorter list first."""
    for x, y in zip(a, b):
        if type(x) is not type(y) or x != y:  # JS !==
            return _cmp_ids(x, y)
    return (len(a) > len(b)) - (len(a) < len(b))


@functools.total_ordering
class Version:
    """A parsed SemVer 2.0 version; comparisons use precedence, so build metadata is ignored."""

    __slots__ = ("build", "major", "minor", "patch", "prerelease")

    def __init__(self, major: int, minor: int, patch: int,
                 prerelease: tuple[int | str, ...] = (), build: tuple[str, ...] = ()) -> None:
        self.major, self.minor, self.patch = major, minor, patch
        self.prerelease, self.build = tuple(prerelease), tuple(build)

    def __str__(self) -> str:  # node-semver's `.version`: no build metadata
        pre = "-" + ".".join(map(str, self.prerelease)) if self.prerelease else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}"

    def __repr__(self) -> str:
        build = "+" + ".".join(self.build) if self.build else ""
        return f"Version('{self}{build}')"

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 by SemVer precedence (node-semver's SemVer.compare)."""
        main = (self.major, self.minor, self.patch), (other.major, other.minor, other.patch)
        if main[0] != main[1]:
            return -1 if main[0] < main[1] else 1
        if bool(self.prerelease) != bool(other.prerelease):
            return -1 if self.prerelease else 1  # a prerelease sorts below its release
        return _cmp_lists(self.prerelease, other.prerelease)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __hash__(self) -> int:  # coarse but consistent with __eq__
        return hash((self.major, self.minor, self.patch, len(self.prerelease)))

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0


def _strict(version: str) -> Version:
    """`new SemVer(version)`: trimmed, at most one leading "v", no "=" allowed."""
    if len(version) > MAX_LENGTH:
        raise ValueError(f"invalid version: longer than {MAX_LENGTH} characters")
    m = _FULL.match(version.strip(_WS))
    if not m:
        raise ValueError(f"invalid version {version!r}: expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]")
    nums = [int(g) for g in m.groups()[:3]]
    for name, n in zip(("major", "minor", "patch"), nums):
        if n > MAX_SAFE_INTEGER:
            raise ValueError(f"invalid version {version!r}: {name} is larger than {MAX_SAFE_INTEGER}")
    pre = tuple(int(p) if _NUMERIC.match(p) and int(p) < MAX_SAFE_INTEGER else p
                for p in (m.group(4).split(".") if m.group(4) else ()))
    return Version(*nums, pre, tuple(m.group(5).split(".")) if m.group(5) else ())


def parse(version: str | Version) -> Version:
    """Parse like `semver.clean`: surrounding whitespace and leading "v"/"=" are tolerated."""
    if isinstance(version, Version):
        return version
    if not isinstance(version, str):
        raise TypeError(f"version must be a string, not {type(version).__name__}")
    return _strict(re.sub(r"^[=v]+", "", version.strip(_WS)))


def valid(version: object) -> bool:
    """True when parse() accepts `version`."""
    try:
        parse(version)  # type: ignore[arg-type]
        return True
    except (ValueError, TypeError):
        return False


def sort(versions: Iterable[str]) -> list[str]:
    """Ascending like `semver.sort`: precedence, ties broken by build metadata; stable."""
    pairs = [(parse(v), v) for v in versions]
    key = functools.cmp_to_key(lambda a, b: a[0].compare(b[0]) or _cmp_lists(a[0].build, b[0].build))
    return [v for _, v in sorted(pairs, key=key)]


# --- classes/range.js: desugar a range into OR-ed sets of AND-ed (operator, Version|None) ---
def _x(part: str | None) -> bool:
    return not part or part.lower() == "x" or part == "*"


def _hyphen(m: re.Match[str]) -> str:
    frm, fM, fm, fp, _fpr, _fb, to, tM, tm, tp, tpr, _tb = m.groups()
    lo = "" if _x(fM) else f">={fM}.0.0" if _x(fm) else f">={fM}.{fm}.0" if _x(fp) else f">={frm}"
    hi = ("" if _x(tM) else f"<{int(tM) + 1}.0.0-0" if _x(tm) else f"<{tM}.{int(tm) + 1}.0-0" if _x(tp)
          else f"<={tM}.{tm}.{tp}-{tpr}" if tpr else f"<={to}")
    return f"{lo} {hi}".strip(_WS)


def _caret(m: re.Match[str], tilde: bool = False) -> str:
    M, mi, p, pr = m.group(1, 2, 3, 4)
    if _x(M):
        return ""
    if _x(mi):
        return f">={M}.0.0 <{int(M) + 1}.0.0-0"
    if _x(p):
        upper = f"{M}.{int(mi) + 1}.0" if tilde or M == "0" else f"{int(M) + 1}.0.0"
        return f">={M}.{mi}.0 <{upper}-0"
    low = f">={M}.{mi}.{p}" + (f"-{pr}" if pr else "")
    if tilde or (M == "0" and mi != "0"):
        return f"{low} <{M}.{int(mi) + 1}.0-0"
    return f"{low} <{M}.{mi}.{int(p) + 1}-0" if M == "0" else f"{low} <{int(M) + 1}.0.0-0"


def _xrange(comp: str) -> str:
    comp = comp.strip(_WS)
    m = _XRANGE.match(comp)
    if not m:
        return comp
    gtlt, M, mi, p = m.group(1, 2, 3, 4)
    if (_x(M) and not _x(mi)) or (_x(mi) and p and not _x(p)):  # invalidXRangeOrder, e.g. 1.x.3
        return comp
    xM, xm, xp = _x(M), _x(M) or _x(mi), _x(M) or _x(mi) or _x(p)
    if gtlt == "=" and xp:
        gtlt = ""
    if xM:
        return "<0.0.0-0" if gtlt in (">", "<") else "*"
    if gtlt and xp:
        M, mi = int(M), (0 if xm else int(mi))
        if gtlt == ">":  # >1 => >=2.0.0, >1.2 => >=1.3.0
            gtlt, M, mi = ">=", (M + 1 if xm else M), (0 if xm else mi + 1)
        elif gtlt == "<=":  # <=1.2 => <1.3.0-0
            gtlt, M, mi = "<", (M + 1 if xm else M), (mi if xm else mi + 1)
        return f"{gtlt}{M}.{mi}.0" + ("-0" if gtlt == "<" else "")
    if xm:
        return f">={M}.0.0 <{int(M) + 1}.0.0-0"
    if xp:
        return f">={M}.{mi}.0 <{M}.{int(mi) + 1}.0-0"
    return m.group(0)


def _each(comp: str, fn, trim: bool = True) -> str:
    return " ".join(fn(c) for c in _WSRUN.split(comp.strip(_WS) if trim else comp))


def _comparator(comp: str) -> tuple[str, Version | None]:
    comp = " ".join(_WSRUN.split(comp.strip(_WS)))
    m = _COMPARATOR.match(comp)
    if not m:
        raise ValueError(f"invalid comparator {comp!r}")
    op = "" if m.group(1) in (None, "=") else m.group(1)
    return (op, _strict(m.group(2)) if m.group(2) else None)


def _parse_set(r: str) -> list[tuple[str, Version | None]]:
    r = _BUILD_ALL.sub("", r)
    r = _HYPHEN.sub(_hyphen, r, count=1)
    r = _COMPARATORTRIM.sub(r"\1\2\3", r)
    r = _CARETTRIM.sub(r"\1^", _TILDETRIM.sub(r"\1~", r))
    out = []
    for comp in r.split(" "):
        comp = _BUILD_ONE.sub("", comp, count=1)
        comp = _each(comp, lambda c: _CARET.sub(_caret, c, count=1))
        comp = _each(comp, lambda c: _TILDE.sub(lambda m: _caret(m, tilde=True), c, count=1))
        comp = _each(comp, _xrange, trim=False)
        out.append(_STAR.sub("", comp.strip(_WS), count=1))
    comps = [_comparator(_GTE0.sub("", c.strip(_WS), count=1)) for c in _WSRUN.split(" ".join(out))]
    by_value: dict[str, tuple[str, Version | None]] = {}
    for c in comps:
        value = "" if c[1] is None else f"{c[0]}{c[1]}"  # node-semver's Comparator.value
        if value == "<0.0.0-0":  # the null set: nothing can match
            return [c]
        by_value.setdefault(value, c)
    if len(by_value) > 1:
        by_value.pop("", None)
    return list(by_value.values())


@functools.lru_cache(maxsize=1024)
def _range(spec: str) -> tuple[tuple[tuple[str, Version | None], ...], ...]:
    raw = _WSRUN.sub(" ", spec.strip(_WS))
    sets = [s for s in (_parse_set(part.strip(_WS)) for part in raw.split("||")) if s]
    if len(sets) > 1:
        sets = [s for s in sets if s[0] != ("<", Version(0, 0, 0, (0,)))] or sets[:1]
        sets = next(([s] for s in sets if len(s) == 1 and s[0][1] is None), sets)  # `*` swallows the rest
    return tuple(tuple(s) for s in sets)


_OPS = {"": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _test_set(comps, v: Version) -> bool:
    if not all(c[1] is None or _OPS[c[0]](v.compare(c[1]), 0) for c in comps):
        return False
    if not v.prerelease:
        return True
    # A prerelease only matches if a comparator names a prerelease of the same major.minor.patch.
    return any(c[1] is not None and c[1].prerelease and (c[1].major, c[1].minor, c[1].patch) ==
               (v.major, v.minor, v.patch) for c in comps)


def _matcher(range_: str):
    """A function version -> Version | None (None: unparseable or not in range)."""
    kind = range_kind(range_)
    if kind != "semver":
        raise ValueError(f"{range_!r} is not a semver range (npm reads it as: {kind})")
    sets = _range(range_.strip(_WS))

    def match(version: str | Version) -> Version | None:
        if not isinstance(version, Version):
            try:  # like `new SemVer(version)` inside Range.test; "" and non-strings never match
                version = _strict(version) if version and isinstance(version, str) else None
            except ValueError:
                return None
        return version if version is not None and any(_test_set(s, version) for s in sets) else None
    return match


def satisfies(version: str | Version, range_: str) -> bool:
    """`semver.satisfies(version, range_)`; an unparseable version just does not satisfy."""
    return _matcher(range_)(version) is not None


def max_satisfying(versions: Iterable[str], range_: str) -> str | None:
    """`semver.maxSatisfying`: the highest version in range (the first one among equals)."""
    match, best, best_v = _matcher(range_), None, None
    for v in versions:
        pv = match(v)
        if pv is not None and (best_v is None or best_v < pv):
            best, best_v = v, pv
    return best


# --- package.json dependency specs, classified roughly like npm-package-arg's resolve() ---
_FILE_START = re.compile(r"(?:\.|~/|/|[a-zA-Z]:)")
_TARBALL = re.compile(r"\.(?:tgz|tar\.gz|tar)\Z", re.IGNORECASE)
_URL = re.compile(r"((?:git\+)?[a-z]+):", re.IGNORECASE)
_GIT_PROTOCOLS = {"git", "git+http", "git+https", "git+rsync", "git+ftp", "git+file", "git+ssh"}
_HOSTED_SHORTCUT = re.compile(r"(?:github|gitlab|bitbucket|gist|sourcehut):[^/\s]", re.IGNORECASE)
_HOSTED_HTTPS = re.compile(r"https?://(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org)/"
                           r"[^/#\s]+/[^/#\s]+?(?:\.git)?/?(?:#.*)?\Z", re.IGNORECASE)
_SCP_GIT = re.compile(r"[^@/\s]+@[^:./\s]+\.[^:\s]+:.+\Z")
_TAG = re.compile(r"[A-Za-z0-9\-_.!~*'()]+\Z")  # what encodeURIComponent leaves alone
_PKG_NAME = re.compile(r"(?:@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*\Z")


def _github_shorthand(spec: str) -> bool:
    """hosted-git-info's "user/repo[#committish]" test."""
    head = spec.split("#", 1)[0]
    return (head.count("/") == 1 and not head.startswith(("/", ".")) and not head.endswith("/")
            and not any(ch in head for ch in "@:" + _WS))


def range_kind(spec: str) -> str:
    """How npm reads a package.json dependency spec (npm-package-arg's order of tests).

    "semver": a range satisfies() takes ("", "*", "^1.2", "1.2.3 - 2"); "tag": a dist-tag
    ("latest"); "alias": "npm:name@range" (see parse_alias); "url": an http(s) tarball;
    "file": "file:", a path or a local tarball; "git": git URLs, "github:user/repo",
    "user/repo", "git@host:path"; "invalid": what npm rejects ("workspace:*": unsupported
    URL type) or what only semver's loose mode reads as a range ("^1 || junk").
    """
    s = spec.strip(_WS)
    low = s.lower()
    if low.startswith("file:") or _FILE_START.match(s):
        return "file"
    if low.startswith("npm:"):
        try:
            parse_alias(s)
            return "alias"
        except ValueError:
            return "invalid"
    if _HOSTED_SHORTCUT.match(s) or _github_shorthand(s) or _HOSTED_HTTPS.match(s) or _SCP_GIT.match(s):
        return "git"
    m = _URL.match(s)
    if m:  # git protocols are git, http(s) a tarball; npm rejects any other "URL type"
        scheme = m.group(1).lower()
        return "url" if scheme in ("http", "https") else "git" if scheme in _GIT_PROTOCOLS else "invalid"
    if "/" in s or _TARBALL.search(s):
        return "file"
    try:
        _range(s)
        return "semver"
    except ValueError:
        return "tag" if _TAG.match(s) else "invalid"


def parse_alias(spec: str) -> tuple[str, str]:
    """"npm:@scope/pkg@^1.2" -> ("@scope/pkg", "^1.2"); a missing range means "*"."""
    s = spec.strip(_WS)
    if not s.lower().startswith("npm:"):
        raise ValueError(f"{spec!r} is not an npm: alias")
    rest = s[4:]
    at = rest.find("@", 1)
    name, rng = (rest[:at], rest[at + 1:].strip(_WS) or "*") if at > 0 else (rest, "*")
    if not _PKG_NAME.match(name):
        raise ValueError(f"npm: alias {spec!r} names no valid package ({name!r})")
    kind = range_kind(rng)
    if kind not in ("semver", "tag"):
        raise ValueError(f"npm: alias {spec!r} must point at a registry range or tag, not a {kind} spec")
    return name, rng
