"""Tool calls, tool specifications, and the built-in coding tools that run inside the sandbox.

A `ToolCall` is hashed over its canonical JSON (sorted keys, UTF-8), the value an approval
receipt binds (approvals bound to the exact arguments, as users of guard layers ask in the
public issue trackers of NeMo Guardrails, the OpenAI Agents SDK and Invariant). Tool annotations follow MCP's
tool hints (read-only, destructive, idempotent, open-world; modelcontextprotocol.io, spec 2025-03-26), plus `sink`
for data exfiltration points.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from alignlab.controls.audit import canonical
from alignlab.controls.policy import RUN_ANNOTATIONS, ArgSpec
from alignlab.controls.process import Runner
from alignlab.controls.sandbox import Workspace

ALL = "ALL"  # `mutates` answer meaning: anything in the workspace may change (checkpoint it all)


@dataclass(frozen=True)
class ToolCall:
    tool: str
    args: dict = field(default_factory=dict)
    id: str = ""

    def sha256(self) -> str:
        return call_hash(self.tool, self.args)


def call_hash(tool: str, args: Any) -> str:
    return hashlib.sha256(canonical({"tool": tool, "args": args})).hexdigest()


@dataclass
class Tool:
    """A callable the guard may execute. `mutates(args)` names what it changes: paths, ALL, or None."""

    name: str
    fn: Callable[..., Any]
    args: dict[str, ArgSpec] = field(default_factory=dict)
    annotations: frozenset[str] = frozenset()
    mutates: Callable[[dict], list[str] | str | None] | None = None
    doc: str = ""


def spec(**types: str) -> dict[str, ArgSpec]:
    """`spec(path="path", content="str?")`: a schema from type names ('?' = optional)."""
    return {k: ArgSpec(t.rstrip("?"), not t.endswith("?")) for k, t in types.items()}


def check_type(value: Any, tp: str) -> bool:
    if tp == "any":
        return True
    if tp in ("str", "path"):
        return isinstance(value, str)
    if tp == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tp == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp == "bool":
        return isinstance(value, bool)
    if tp in ("list[str]", "list[path]"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if tp == "dict":
        return isinstance(value, dict)
    return False


def readonly_paths(ws: Workspace, protected: Callable[[str], bool] | None) -> tuple[str, ...]:
    """Absolute paths to bind read-only in the sandbox: whole folders whose every possible descendant is
    protected (so new files cannot be created there either), and protected files elsewhere."""
    if protected is None:
        return ()
    entries = ws.walk()
    dirs = []
    for rel, kind in entries:
        if kind == "dir" and not any(rel.startswith(d + "/") for d in dirs) and all(
                protected(f"{rel}/{probe}") for probe in (".alignlab-probe", "alignlab-probe.zz/alignlab-probe")):
            dirs.append(rel)
    files = [rel for rel, kind in entries
             if kind == "file" and protected(rel) and not any(rel.startswith(d + "/") for d in dirs)]
    return tuple(str(ws.root / rel) for rel in dirs + files)


def clear_setid_bits(root: Path, skip: Iterable[str] = ()) -> list[str]:
    """Clear set-user-ID and set-group-ID bits on the workspace's regular files; the paths cleared.

    Inside the sandbox every mount is nosuid, but a file a command leaves with those bits (a copy of an
    interpreter, owned by the caller, chmod 4755) keeps them on the host: whoever runs it later would run it with
    the caller's rights. Called after the command's processes are all gone, so nothing can swap a file meanwhile.
    """
    out = []
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for dirpath, dirnames, filenames, dfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            base = dirpath[2:] if dirpath.startswith("./") else ""
            if not base:
                dirnames[:] = [d for d in dirnames if d not in skip]
            for name in filenames:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    os.chmod(name, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID), dir_fd=dfd)
                    out.append(f"{base}/{name}" if base else name)
    finally:
        os.close(fd)
    return sorted(out)


def coding_tools(ws: Workspace, runner: Runner | None,
                 protected: Callable[[str], bool] | None = None) -> list[Tool]:
    """read_file, list_files, write_file, edit_file, delete_file, run: what a coding agent needs.

    `protected(relpath)`: files for which it is true are bound read-only inside `run`'s sandbox.
    """

    def read_file(path: str) -> str:
        return ws.read_text(path)

    def list_files(path: str = ".") -> list[str]:
        return [e.name + ("/" if e.kind == "dir" else "") for e in ws.listdir(path)]

    def write_file(path: str, content: str) -> str:
        ws.write_text(path, content)
        return f"wrote {len(content.encode())} bytes to {path}"

    def edit_file(path: str, old: str, new: str) -> str:
        text = ws.read_text(path)
        if text.count(old) != 1:
            raise ValueError(f"'old' must occur exactly once in {path} (found {text.count(old)} times)")
        ws.write_text(path, text.replace(old, new))
        return f"edited {path}"

    def delete_file(path: str) -> str:
        ws.delete(path)
        return f"deleted {path}"

    tools = [
        Tool("read_file", read_file, spec(path="path"), frozenset({"read-only"}), doc="Read a UTF-8 text file."),
        Tool("list_files", list_files, spec(path="path?"), frozenset({"read-only"}), doc="List a directory."),
        Tool("write_file", write_file, spec(path="path", content="str"), frozenset({"destructive"}),
             mutates=lambda a: [a["path"]], doc="Create or overwrite a file."),
        Tool("edit_file", edit_file, spec(path="path", old="str", new="str"), frozenset({"destructive"}),
             mutates=lambda a: [a["path"]], doc="Replace one exact occurrence of `old` by `new`."),
        Tool("delete_file", delete_file, spec(path="path"), frozenset({"destructive"}),
             mutates=lambda a: [a["path"]], doc="Delete a file or an empty directory."),
    ]
    if runner is not None:
        def run(argv: list[str], timeout_s: float | None = None) -> dict:
            res = runner.run(argv, timeout_s=timeout_s, readonly=readonly_paths(ws, protected))
            return {"returncode": res.returncode, "stdout": res.stdout, "stderr": res.stderr,
                    "timed_out": res.timed_out, "truncated": res.truncated, "isolation": res.isolation}

        tools.append(Tool("run", run, spec(argv="list[str]", timeout_s="float?"), RUN_ANNOTATIONS,
                          mutates=lambda a: ALL, doc="Run a command (argv list, no shell) in the sandbox."))
    return tools
