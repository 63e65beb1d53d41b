"""alignlab's import graph has no cycle and every import points down the layers (docs/architecture.md)."""

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import alignlab

ROOT = Path(alignlab.__file__).parent
PACKAGE = "alignlab"

# docs/architecture.md: imports point downward only. Same rank may import each other (the cycle check still applies).
RANKS = {
    "": 0,  # alignlab/__init__.py
    "core": 0,
    "envs": 1,
    "lm": 1,
    "rewards": 1,
    "vision": 1,
    "interp": 2,
    "oversight": 2,
    "robustness": 2,
    "redteam": 2,
    "cai": 2,
    "evals": 2,
    "agents": 2,
    "techniques": 3,
    "controls": 3,
    "review": 4,
    "experiments": 5,
    "reports": 6,
    "cli": 7,
}

# Upward imports that need a design change rather than a move, each with its reason. Keep this empty if you can.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def module_name(path: Path, root: Path = ROOT, package: str = PACKAGE) -> str:
    """Dotted module name of a file under `root` (a package's `__init__.py` is the package itself)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def discover(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module under `root`, including folders without `__init__.py` (namespace packages, e.g. evals/inspect)."""
    return {module_name(p, root, package): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _deepest_known(name: str, modules: Iterable[str]) -> str | None:
    """The longest dotted prefix of `name` that is a known module (`a.b.C` where C is a class -> `a.b`)."""
    known = set(modules)
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in known:
            return candidate
    return None


def imports_of(source: str, module: str, is_package: bool, modules: Iterable[str], package: str = PACKAGE) -> set[str]:
    """The alignlab modules that `source` imports anywhere (module level, function-local, relative or absolute).

    `from pkg import name` counts as an edge to `pkg.name` when that is a module, else to `pkg`.
    Imports done by string (importlib, the registry's package walk) are not visible here.
    """
    known = set(modules)
    found: set[str] = set()

    def add(name: str) -> None:
        if name == package or name.startswith(package + "."):
            target = _deepest_known(name, known)
            if target is not None and target != module:
                found.add(target)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = here[: len(here) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in known else base)
    return found


def build_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the alignlab modules it imports."""
    modules = discover(root, package)
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", modules, package)
        for name, path in modules.items()
    }


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; only those with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    nodes = set(graph) | {t for targets in graph.values() for t in targets}
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return sorted(components)


def describe_cycles(graph: Mapping[str, Iterable[str]]) -> str:
    """One paragraph per cycle: its modules and the edges between them."""
    lines = []
    for component in strongly_connected(graph):
        members = set(component)
        lines.append("cycle: " + ", ".join(component))
        lines += [f"  {a} -> {b}" for a in component for b in sorted(graph.get(a, ())) if b in members]
    return "\n".join(lines)


def layer(module: str, package: str = PACKAGE) -> str:
    """The top-level subpackage of a module ('' for the package's own `__init__`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == package else ""


def package_graph(graph: Mapping[str, Iterable[str]], package: str = PACKAGE) -> dict[str, set[str]]:
    """The graph collapsed to top-level subpackages (layers): an edge wherever any module of one imports the other."""
    collapsed: dict[str, set[str]] = {}
    for a, targets in graph.items():
        collapsed.setdefault(layer(a, package), set()).update(
            layer(b, package) for b in targets if layer(b, package) != layer(a, package))
    return collapsed


def describe_package_cycles(graph: Mapping[str, Iterable[str]], package: str = PACKAGE) -> str:
    """One paragraph per cycle between packages, with the module imports behind each package edge."""
    packages = package_graph(graph, package)
    lines = []
    for component in strongly_connected(packages):
        lines.append("cycle: " + ", ".join(component))
        for a in component:
            for b in sorted(packages[a] & set(component)):
                edges = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                               if layer(m, package) == a and layer(t, package) == b)
                lines.append(f"  {a} -> {b}: " + "; ".join(edges))
    return "\n".join(lines)


def upward_imports(
    graph: Mapping[str, Iterable[str]], ranks: Mapping[str, int] = RANKS, package: str = PACKAGE
) -> list[tuple[str, str]]:
    """Edges from a lower-ranked layer to a higher-ranked one."""
    rank = {m: ranks[layer(m, package)] for m in set(graph) | {t for targets in graph.values() for t in targets}}
    return sorted((a, b) for a, targets in graph.items() for b in targets if rank[a] < rank[b])


def test_every_layer_has_a_rank():
    unranked = sorted({layer(m) for m in discover()} - set(RANKS))
    assert unranked == [], f"add these folders to RANKS (docs/architecture.md layers): {unranked}"


def test_no_import_cycles():
    graph = build_graph()
    assert strongly_connected(graph) == [], "import cycles (move the shared piece down):\n" + describe_cycles(graph)


def test_no_cycles_between_packages():
    """Packages of one rank (envs, lm, rewards; evals, agents; techniques, controls) may import each other, one way."""
    graph = build_graph()
    packages = package_graph(graph)
    assert strongly_connected(packages) == [], "cycles between packages:\n" + describe_package_cycles(graph)


def test_imports_point_down_the_layers():
    graph = build_graph()
    violations = [(a, b) for a, b in upward_imports(graph) if (a, b) not in ALLOWED_UPWARD]
    report = "\n".join(f"  {a} (rank {RANKS[layer(a)]}) -> {b} (rank {RANKS[layer(b)]})" for a, b in violations)
    assert violations == [], "imports from a lower layer to a higher one:\n" + report


def test_allow_list_has_no_stale_entries():
    graph = build_graph()
    stale = [edge for edge in ALLOWED_UPWARD if edge[1] not in graph.get(edge[0], set())]
    assert stale == [], f"these allowed upward imports no longer exist; remove them: {stale}"


# The checker itself, on tiny synthetic graphs and packages.


def test_tarjan_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert "  c -> a" in describe_cycles(graph)
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_tarjan_separates_two_cycles_joined_one_way():
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}}
    assert strongly_connected(graph) == [["a", "b"], ["c", "d"]]


def test_tarjan_handles_a_long_chain_without_recursion():
    n = 5000
    graph = {str(i): {str(i + 1)} for i in range(n)}
    assert strongly_connected(graph) == []
    graph[str(n)] = {"0"}
    assert len(strongly_connected(graph)[0]) == n + 1


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_graph_sees_local_relative_and_submodule_imports(tmp_path):
    root = tmp_path / "pkg"
    _write(root, {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/stats.py": "def mean(x):\n    return x\n",
        "lm/__init__.py": "from . import models\n",
        "lm/models.py": "def load():\n    from ..rewards import gold\n    return gold\n",
        "rewards/gold.py": "from pkg.lm.models import load\nfrom pkg.core import stats\nimport pkg.core.stats as s\n"
                           "import numpy\n",
        "rewards/raters.py": "from .gold import *\nfrom pkg.core.stats import mean\n",
    })
    graph = build_graph(root, "pkg")
    assert graph["pkg.lm"] == {"pkg.lm.models"}
    assert graph["pkg.lm.models"] == {"pkg.rewards.gold"}
    assert graph["pkg.rewards.gold"] == {"pkg.lm.models", "pkg.core.stats"}
    assert graph["pkg.rewards.raters"] == {"pkg.rewards.gold", "pkg.core.stats"}
    assert strongly_connected(graph) == [["pkg.lm.models", "pkg.rewards.gold"]]
    assert strongly_connected(package_graph(graph, "pkg")) == [["lm", "rewards"]]
    assert "  lm -> rewards: pkg.lm.models -> pkg.rewards.gold" in describe_package_cycles(graph, "pkg")


def test_a_package_cycle_without_a_module_cycle_is_caught(tmp_path):
    root = tmp_path / "pkg"
    _write(root, {
        "__init__.py": "",
        "lm/__init__.py": "",
        "lm/dpo.py": "from pkg.rewards.reward_models import comparisons_dataset\n",
        "lm/tasks.py": "",
        "rewards/gold.py": "from pkg.lm.tasks import Item\n",
        "rewards/reward_models.py": "",
    })
    graph = build_graph(root, "pkg")
    assert strongly_connected(graph) == []
    assert strongly_connected(package_graph(graph, "pkg")) == [["lm", "rewards"]]


def test_a_planted_cycle_and_upward_import_fail_the_checks(tmp_path):
    root = tmp_path / "pkg"
    _write(root, {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/a.py": "def f():\n    from pkg.experiments import b\n",
        "experiments/__init__.py": "",
        "experiments/b.py": "from pkg.core import a\n",
    })
    graph = build_graph(root, "pkg")
    assert strongly_connected(graph) == [["pkg.core.a", "pkg.experiments.b"]]
    assert upward_imports(graph, package="pkg") == [("pkg.core.a", "pkg.experiments.b")]
    with pytest.raises(AssertionError):
        assert strongly_connected(graph) == [], describe_cycles(graph)
