"""Agents and techniques never read the intended objective (docs/architecture.md: two objectives)."""

import ast
from pathlib import Path

import alignlab

ROOT = Path(alignlab.__file__).parent
FORBIDDEN_MODULES = {"alignlab.envs.evaluation"}
FORBIDDEN_NAMES = {"_intended_last", "_intended_total", "intended_reward", "intended_return", "intended_rewards"}
# e.g. TabularModel.intended: planners get the specified reward array only
FORBIDDEN_ATTRS = FORBIDDEN_NAMES | {"intended"}


def offending(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            full = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            if full & FORBIDDEN_MODULES or (
                    node.module == "alignlab.envs" and any(a.name == "evaluation" for a in node.names)):
                found.append(f"{path.name}:{node.lineno} imports the evaluation API")
        if isinstance(node, ast.Import) and any(a.name in FORBIDDEN_MODULES for a in node.names):
            found.append(f"{path.name}:{node.lineno} imports the evaluation API")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            found.append(f"{path.name}:{node.lineno} reads .{node.attr}")
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"{path.name}:{node.lineno} uses {node.id}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FORBIDDEN_NAMES:
            found.append(f"{path.name}:{node.lineno} names {node.value!r} (getattr?)")
    return found


def test_agents_and_techniques_do_not_read_the_intended_objective():
    problems = []
    for folder in ("agents", "techniques"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            problems += offending(path)
    assert problems == []


def test_the_checker_catches_a_peek(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from alignlab.envs.evaluation import intended_return\n"
                   "x = env.unwrapped._intended_total\ny = model.intended\n")
    assert len(offending(bad)) >= 3
