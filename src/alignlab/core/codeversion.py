"""Code versions scoped to the code a cell runs, so a change re-runs only the cells it can affect.

A stored cell is keyed by (experiment, config hash, seed, code version). The code version is
`<package version>+<12 hex>`, the hash of every module the cell can run:

- each module is hashed as its syntax tree with the prose taken out (docstrings and other bare
  constant statements such as attribute docstrings; comments never reach the tree), dumped
  without line numbers, so editing prose or layout changes nothing and editing code does;
- the modules are the static import closure (module level and function-local imports, relative
  ones resolved, the parent packages whose `__init__` runs, and dotted module paths written as
  strings) of the runner (it runs every cell), of the experiment's class (its whole MRO), and of
  every registered component the cell reaches by name;
- a cell reaches a component by name through the registry, which static imports do not show.
  Counted: the names in the cell's parameters (any string, e.g. `"agent": "q-learning"` or
  `"technique": "quantilizer-v0(q=0.1)"`, resolved as the registry does, so a new `-vN` counts),
  and names written as literals (or module-level string constants) at registry lookups
  (`get`, `make`, `resolve`, `resolve_or_none`) in the code counted so far, to a fixed point.

A name a cell resolves by any other route (built at run time, read from a file) cannot be
predicted; the runner records every registry resolution a cell makes, and a cell that resolved
a component outside its prediction is stored under a version marked `~untracked(...)`, which no
plan produces, so it re-runs on every run and the runner warns (see `recording_resolutions`).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

import alignlab
from alignlab.core import registry
from alignlab.core.errors import RegistryError

ROOT_PACKAGE = "alignlab"
RUNNER_MODULE = "alignlab.core.runner"
UNTRACKED = "~untracked"

_REGISTRY_MODULE = "alignlab.core.registry"
_LOOKUPS = {f"{_REGISTRY_MODULE}.{f}" for f in ("get", "make", "resolve", "resolve_or_none")}
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DOTTED_RE = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[\w.]+)?$")

Component = tuple[str, str]  # (kind, full registered name)


# -- one module ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModuleInfo:
    name: str
    digest: str
    """sha256 of the prose-free syntax tree."""
    imports: tuple[str, ...]
    """Module names it may import (absolute; candidates that are not modules are dropped later)."""
    lookups: tuple[Component, ...]
    """(kind, name) of registry lookups whose arguments are literals or module-level constants."""


def _strip_prose(tree: ast.AST) -> ast.AST:
    """Drop statements that do nothing when run: docstrings, attribute docstrings, `...`, `pass`."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                setattr(node, field, [
                    s for s in stmts
                    if not (isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)))
                ])
    return tree


def _tree_digest(tree: ast.AST) -> str:
    return hashlib.sha256(ast.dump(tree, annotate_fields=False, include_attributes=False).encode()).hexdigest()


def code_digest(source: str | bytes) -> str:
    """Hash of a module's code: equal for sources that differ only in comments, docstrings or layout."""
    return _tree_digest(_strip_prose(ast.parse(source)))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _analyse(name: str, source: bytes, is_package: bool) -> ModuleInfo:
    tree = _strip_prose(ast.parse(source))  # prose cannot add imports or lookups either
    package = name if is_package else name.rpartition(".")[0]
    imports: set[str] = set()
    aliases: dict[str, str] = {}  # local name -> dotted target
    constants: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(getattr(stmt, "value", None), ast.Constant):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if isinstance(stmt.value.value, str):
                for t in targets:
                    if isinstance(t, ast.Name):
                        constants[t.id] = stmt.value.value
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                imports.add(a.name)
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod:
                continue
            imports.add(mod)
            for a in node.names:
                if a.name != "*":
                    imports.add(f"{mod}.{a.name}")
                    aliases[a.asname or a.name] = f"{mod}.{a.name}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _DOTTED_RE.match(node.value)
            if match:  # an entry point or import_module argument written as a string
                parts = match.group(1).split(".")
                imports.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))

    def literal(arg: ast.AST | None) -> str | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.Name):
            return constants.get(arg.id)
        return None

    lookups: set[Component] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        target = aliases.get(head, head) + (f".{rest}" if rest else "")
        if target not in _LOOKUPS:
            continue
        kw = {k.arg: k.value for k in node.keywords}
        kind = literal(node.args[0] if node.args else kw.get("kind"))
        comp = literal(node.args[1] if len(node.args) > 1 else kw.get("name"))
        if kind and comp:
            lookups.add((kind, comp))
    return ModuleInfo(name, _tree_digest(tree), tuple(sorted(imports)), tuple(sorted(lookups)))


_INFO_CACHE: dict[tuple[str, str], ModuleInfo] = {}


def _find_top(top: str) -> tuple[Path | None, list[Path]]:
    """(file of the top-level module or package `__init__`, folders to look for submodules in)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None, []
    if spec is None:
        return None, []
    origin = Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    return origin, [Path(p) for p in (spec.submodule_search_locations or [])]


class ModuleIndex:
    """Finds, reads and analyses modules by name; one instance per computation (files are read
    once per instance, analyses are cached across instances by content)."""

    def __init__(self) -> None:
        self._tops: dict[str, tuple[Path | None, list[Path]]] = {}
        self._infos: dict[str, ModuleInfo | None] = {}

    def _locate(self, name: str) -> tuple[Path, bool] | None:
        top, _, rest = name.partition(".")
        if top not in self._tops:
            self._tops[top] = _find_top(top)
        origin, dirs = self._tops[top]
        if not rest:
            return (origin, bool(dirs)) if origin else None
        parts = rest.split(".")
        for d in dirs:
            base = d.joinpath(*parts)
            if (base / "__init__.py").is_file():
                return base / "__init__.py", True
            if base.with_suffix(".py").is_file():
                return base.with_suffix(".py"), False
        return None

    def info(self, name: str) -> ModuleInfo | None:
        """None where `name` is not a module with Python source (an attribute, a namespace package)."""
        if name in self._infos:
            return self._infos[name]
        found = self._locate(name)
        info = None
        if found is not None:
            path, is_package = found
            try:
                source = path.read_bytes()
            except OSError:
                source = None
            if source is not None:
                key = (name, hashlib.sha256(source).hexdigest())
                info = _INFO_CACHE.get(key)
                if info is None:
                    try:
                        info = _analyse(name, source, is_package)
                    except SyntaxError:  # hash the bytes: the cell would fail anyway
                        info = ModuleInfo(name, key[1], (), ())
                    _INFO_CACHE[key] = info
        self._infos[name] = info
        return info

    def closure(self, roots: Iterable[str], tracked: Iterable[str] = ()) -> dict[str, ModuleInfo]:
        """The modules `roots` import, transitively, within alignlab and the `tracked` top-level
        packages, with the parent packages whose `__init__` an import runs."""
        tops = {ROOT_PACKAGE, *tracked}
        out: dict[str, ModuleInfo] = {}
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name.split(".")[0] not in tops:
                continue
            seen.add(name)
            info = self.info(name)
            if info is None:
                continue
            out[name] = info
            parts = name.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
            todo.extend(info.imports)
        return out


# -- components ------------------------------------------------------------------------------

_RECORDING_PAUSED = 0


@contextlib.contextmanager
def _not_recorded() -> Iterator[None]:
    """Lookups made to compute a version (possibly inside a cell) are not the cell reaching a
    component: `recording_resolutions` skips them."""
    global _RECORDING_PAUSED
    _RECORDING_PAUSED += 1
    try:
        yield
    finally:
        _RECORDING_PAUSED -= 1


def _resolve(kind: str, name: str) -> str:
    with _not_recorded():
        return registry.resolve(kind, name)


def _get(kind: str, name: str) -> Any:
    with _not_recorded():
        return registry.get(kind, name)


def _defining_modules(obj: Any) -> tuple[list[str], str | None]:
    """(modules defining a registered object, its own top-level package). The modules: every
    class of its MRO inside alignlab or its own package (a preset subclass made in
    envs/registration.py runs its base's code), or a function's module."""
    target = obj if isinstance(obj, type) else getattr(obj, "func", obj)  # functools.partial
    own = getattr(target, "__module__", None)
    own_top = own.split(".")[0] if isinstance(own, str) else None
    classes = target.__mro__ if isinstance(target, type) else (target, *type(target).__mro__)
    tops = {ROOT_PACKAGE, own_top}
    mods = [getattr(c, "__module__", None) for c in classes]
    return [m for m in dict.fromkeys(mods) if isinstance(m, str) and m.split(".")[0] in tops], own_top


def _name_table() -> dict[str, set[Component]]:
    """{name or name without -vN: the components it resolves to, over every kind}."""
    table: dict[str, set[Component]] = {}
    for kind in registry.KINDS:
        for full in registry.names(kind):
            table.setdefault(full, set()).add((kind, full))
            base = full.rsplit("-v", 1)[0]
            table.setdefault(base, set()).add((kind, _resolve(kind, base)))
    return table


def names_in(value: Any, table: dict[str, set[Component]]) -> set[Component]:
    """Registered components named anywhere in a parameter value (strings, keys, nested lists)."""
    out: set[Component] = set()
    if isinstance(value, str):
        for token in _TOKEN_RE.findall(value):
            out |= table.get(token, set())
    elif isinstance(value, dict):
        for k, v in value.items():
            out |= names_in(k, table) | names_in(v, table)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            out |= names_in(v, table)
    return out


def _digest(modules: dict[str, ModuleInfo], components: Iterable[Component]) -> str:
    h = hashlib.sha256()
    for name in sorted(modules):
        h.update(f"m {name} {modules[name].digest}\n".encode())
    for kind, name in sorted(components):
        h.update(f"c {kind} {name}\n".encode())
    return f"{alignlab.__version__}+{h.hexdigest()[:12]}"


class Scope:
    """Modules and components reached from some roots, closed over literal registry lookups."""

    def __init__(self, index: ModuleIndex | None = None):
        self.index = index or ModuleIndex()
        self._component_modules: dict[Component, dict[str, ModuleInfo]] = {}

    def modules_of(self, roots: Iterable[str]) -> dict[str, ModuleInfo]:
        roots = list(roots)
        return self.index.closure(roots, {r.split(".")[0] for r in roots})

    def component_modules(self, comp: Component) -> dict[str, ModuleInfo]:
        if comp not in self._component_modules:
            kind, name = comp
            roots, own_top = _defining_modules(_get(kind, name))
            self._component_modules[comp] = self.index.closure(roots, {own_top} if own_top else ())
        return self._component_modules[comp]

    def expand(self, modules: dict[str, ModuleInfo], components: Iterable[Component]
               ) -> tuple[dict[str, ModuleInfo], frozenset[Component]]:
        """Add the components' modules and, to a fixed point, what literal lookups in them name."""
        modules = dict(modules)
        done: set[Component] = set()
        todo = list(components)
        for info in list(modules.values()):
            todo.extend(self._resolve_lookups(info))
        while todo:
            comp = todo.pop()
            if comp in done:
                continue
            done.add(comp)
            new = self.component_modules(comp)
            for name, info in new.items():
                if name not in modules:
                    modules[name] = info
                    todo.extend(self._resolve_lookups(info))
        return modules, frozenset(done)

    @staticmethod
    def _resolve_lookups(info: ModuleInfo) -> list[Component]:
        out = []
        for kind, name in info.lookups:
            try:
                out.append((kind, _resolve(kind, name)))
            except RegistryError:  # an unknown kind or name fails the cell itself
                pass
        return out


class CellVersions:
    """The code versions of one experiment's cells. Built once per run: the part every cell
    shares (runner, experiment, literal lookups) is computed here, the rest once per distinct
    set of components the cells' parameters name."""

    def __init__(self, experiment: str):
        self.experiment = _resolve("experiment", experiment)
        self._scope = Scope()
        base = self._scope.modules_of([RUNNER_MODULE])
        base, comps = self._scope.expand(base, [("experiment", self.experiment)])
        self._base_modules = base
        self._base_components = comps
        self._table = _name_table()
        self._by_components: dict[frozenset[Component], tuple[str, tuple[Component, ...]]] = {}

    def _entry(self, params: dict[str, Any]) -> tuple[str, tuple[Component, ...]]:
        named = frozenset(names_in(params, self._table))
        if named not in self._by_components:
            modules, comps = self._scope.expand(self._base_modules, self._base_components | named)
            self._by_components[named] = (_digest(modules, comps), tuple(sorted(comps)))
        return self._by_components[named]

    def version(self, params: dict[str, Any]) -> str:
        """`<package version>+<12 hex>` of the code a cell with these parameters can run."""
        return self._entry(params)[0]

    def components(self, params: dict[str, Any]) -> tuple[Component, ...]:
        """The registered components counted in that version (what the cell may resolve)."""
        return self._entry(params)[1]


def scoped_version(modules: Iterable[str] = (), components: Iterable[tuple[str, str]] = ()) -> str:
    """Code version of some modules and components (names may omit -vN), e.g. for a cache file
    whose contents are computed by that code."""
    scope = Scope()
    comps = [(kind, _resolve(kind, name)) for kind, name in components]
    mods, comps2 = scope.expand(scope.modules_of(modules), comps)
    return _digest(mods, comps2)


def package_version() -> str:
    """Code version of every module of the package (prose-insensitive): for uses with no narrower scope."""
    root = Path(alignlab.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        source = path.read_bytes()
        try:
            digest = code_digest(source)
        except SyntaxError:
            digest = hashlib.sha256(source).hexdigest()
        h.update(f"{path.relative_to(root).as_posix()} {digest}\n".encode())
    return f"{alignlab.__version__}+{h.hexdigest()[:12]}"


# -- what a cell actually resolved -----------------------------------------------------------


@contextlib.contextmanager
def recording_resolutions() -> Iterator[set[Component]]:
    """Record every (kind, full name) `registry.resolve` returns inside the block (`get` and
    `make` go through it)."""
    seen: set[Component] = set()
    original = registry.resolve

    def resolve(kind: str, name: str) -> str:
        full = original(kind, name)
        if not _RECORDING_PAUSED:
            seen.add((kind, full))
        return full

    registry.resolve = resolve  # type: ignore[assignment]
    try:
        yield seen
    finally:
        registry.resolve = original  # type: ignore[assignment]


def mark_untracked(version: str, untracked: Iterable[Component]) -> str:
    """A version no plan produces, naming the components resolved outside the prediction."""
    return f"{version}{UNTRACKED}({','.join(f'{k}:{n}' for k, n in sorted(untracked))})"


def is_untracked(version: str) -> bool:
    return UNTRACKED in version
