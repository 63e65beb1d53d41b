"""Intent rules on every exec inside the sandbox: the policy's `run` deny rules applied to each argv a program
hands to execve(2), and to the views a renamed or indirect exec hides (script interpreter lines, binfmt_script;
the dynamic loader run as a program, ld.so(8); multi-call binaries; copies of a denied binary).

exec_supervisor.py calls `ExecRules.decide` for each execve/execveat it is notified of. Name-based rules cannot
stop a renamed binary by themselves, so two rules close that gap: a copy (same inode, or same size and sha256)
of a system binary the policy denies by name is denied too; and with `workspace_exec = "deny"`, no file inside
the workspace or /tmp may be executed at all (a modified copy or a freshly compiled shell is caught only there).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Callable

RUN_ANNOTATIONS = frozenset({"destructive"})  # the `run` tool's own annotations (tools.py)
SEARCH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
LOADER = re.compile(r"ld(-linux[-\w.]*)?\.so(\.\d+)*|ld-[-\w.]+\.so(\.\d+)*")  # ld-linux-x86-64.so.2, ld-musl-...
LOADER_OPTS_WITH_VALUE = frozenset({"--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0",
                                    "--glibc-hwcaps-prefix", "--glibc-hwcaps-mask"})
MULTICALL = frozenset({"busybox", "toybox"})
INTERPRETER_DEPTH = 4  # the kernel's limit on nested script interpreters
Check = Callable[[list[str]], "str | None"]


def policy_check(policy) -> Check:
    """`Policy.exec_denial(argv)` where policy.py has it, else the guard's deny-rule matching on `run`'s argv.

    The fallback mirrors Guard._matches for a `run` call whose only argument is argv: a rule applies when its
    tool patterns match "run" and its annotations are the run tool's; every argument pattern must match an
    element of argv (`*` reads argv too); a rule naming another argument never matches an exec.
    """
    fn = getattr(policy, "exec_denial", None)
    if callable(fn):
        return fn
    tp = policy.tools.get("run")
    ann = tp.annotations if tp is not None and tp.annotations else RUN_ANNOTATIONS
    rules = [r for r in policy.deny
             if (not r.tools or any(p.matches("run") for p in r.tools)) and r.annotations <= ann]

    def check(argv: list[str]) -> str | None:
        for r in rules:
            if all(name in ("argv", "*") and any(p.matches(s) for s in argv for p in pats) for name, pats in r.args):
                return r.reason or f"denied by rule {r.id}"
        return None

    return check


@dataclass
class Target:
    """The file an exec names, as the supervisor found it in the sandbox (None fields: not found)."""

    path: str  # as the program wrote it (sandbox view)
    name: str = ""  # the file opened there (after symlinks), as the kernel names it
    st: os.stat_result | None = None
    head: bytes = b""  # the first bytes (an interpreter line starts with #!)
    fd: int | None = None

    @property
    def key(self) -> tuple[int, int] | None:
        return (self.st.st_dev, self.st.st_ino) if self.st is not None else None


def _sha256_fd(fd: int) -> str:
    h, off = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, off):
        h.update(chunk)
        off += len(chunk)
    return h.hexdigest()


@dataclass
class DeniedCopies:
    """System binaries the policy denies by name, known by inode and (lazily) by content."""

    inodes: dict[tuple[int, int], str] = field(default_factory=dict)
    by_size: dict[int, list[str]] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def scan(cls, check: Check, dirs: tuple[str, ...] = SEARCH_DIRS) -> "DeniedCopies":
        out = cls()
        for d in dirs:
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for n in names:
                path = os.path.join(d, n)
                if check([path]) is None and check([n]) is None:
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in out.inodes:
                    out.inodes[(st.st_dev, st.st_ino)] = path
                    out.by_size.setdefault(st.st_size, []).append(path)
        return out

    def match(self, t: Target) -> str | None:
        if t.st is None or t.key is None:
            return None
        if t.key in self.inodes:
            return self.inodes[t.key]
        same_size = self.by_size.get(t.st.st_size)
        if not same_size or t.fd is None:
            return None
        digest = _sha256_fd(t.fd)
        for path in same_size:
            if path not in self.digests:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    self.digests[path] = _sha256_fd(fd)
                finally:
                    os.close(fd)
            if self.digests[path] == digest:
                return path
        return None


def interpreter_line(head: bytes) -> list[str] | None:
    """[interpreter, optional argument] from a `#!` line, as the kernel splits it (one argument, the rest)."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        return None
    parts = line.split(None, 1)
    return [os.fsdecode(p.strip(b" \t")) for p in parts]


def loader_program(args: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(program, --argv0 value, program's arguments) from the arguments of ld.so run as a program."""
    argv0, i = None, 0
    while i < len(args) and args[i].startswith("--"):
        if args[i] == "--":
            i += 1
            break
        opt, eq, val = args[i].partition("=")
        if opt in LOADER_OPTS_WITH_VALUE and not eq:
            val, i = (args[i + 1] if i + 1 < len(args) else ""), i + 1
        if opt == "--argv0":
            argv0 = val
        i += 1
    return (args[i] if i < len(args) else None), argv0, args[i + 1:]


def _short(argv: list[str]) -> str:
    text = " ".join(argv[:6]) + (" ..." if len(argv) > 6 else "")
    return text if len(text) <= 160 else text[:157] + "..."


class ExecRules:
    """`decide(argv, target, open_path)`: (None (allowed) or the reason an exec is denied, the files it runs)."""

    def __init__(self, check: Check, copies: DeniedCopies | None = None, workspace: str | None = None,
                 workspace_exec: str = "allow"):
        if workspace_exec not in ("allow", "deny"):
            raise ValueError(f"workspace_exec must be 'allow' or 'deny', got {workspace_exec!r}")
        self.check = check
        self.copies = copies if copies is not None else DeniedCopies.scan(check)
        self.workspace = workspace
        self.workspace_exec = workspace_exec

    def decide(self, argv: list[str], target: Target,
               open_path: Callable[[str], Target]) -> tuple[str | None, list[Target]]:
        views: list[tuple[str, list[str]]] = [("argv", argv or [target.path])]
        rest = argv[1:]
        files = [target]
        views.append(("path", [target.path, *rest]))
        if target.name:
            views.append(("file", [target.name, *rest]))
        # script interpreter lines: the kernel runs `interpreter [arg] script args...` with no second execve
        cur, script = target, [target.path, *rest]
        for _ in range(INTERPRETER_DEPTH):
            line = interpreter_line(cur.head)
            if line is None:
                break
            script = [*line, *script]
            views.append(("interpreter line", script))
            cur = open_path(line[0])
            files.append(cur)
            if cur.name:
                views.append(("interpreter file", [cur.name, *script[1:]]))
        # the dynamic loader run as a program maps the real program itself, again with no second execve
        base = os.path.basename(target.name or target.path)
        if LOADER.fullmatch(base):
            prog, argv0, prog_args = loader_program(rest)
            if prog is not None:
                views.append(("program run by the loader", [prog, *prog_args]))
                if argv0:
                    views.append(("loader --argv0", [argv0, *prog_args]))
                loaded = open_path(prog)
                files.append(loaded)
                if loaded.name:
                    views.append(("file run by the loader", [loaded.name, *prog_args]))
        # multi-call binaries choose the program by argv[0], or by argv[1] when called by their own name
        if base in MULTICALL and argv and os.path.basename(argv[0]) in MULTICALL and len(argv) > 1:
            views.append(("multi-call applet", argv[1:]))
        for label, view in views:
            why = self.check(view)
            if why:
                return f"{why} (exec {label}: {_short(view)})", files
        for f in files:
            copy = self.copies.match(f)
            if copy is not None:
                return (f"{f.name or f.path} is a copy of {copy}, which the policy denies by name "
                        f"(exec: {_short(argv)})"), files
        if self.workspace_exec == "deny":
            for f in files:
                where = next((r for r in (self.workspace, "/tmp") if r and f.name
                              and (f.name == r or f.name.startswith(r.rstrip("/") + "/"))), None)
                if where is not None:
                    return f"{f.name} is inside {where}, and the policy allows no exec of files there", files
        return None, files
