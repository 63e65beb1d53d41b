"""`alignlab guard` (run a command under the guard, roll back) and `alignlab audit` (show, verify).

The lead adds these groups to the main CLI: `cli.add_command(guard)` and `cli.add_command(audit)`.
Bad input raises UserError (one line, exit 2); a tampered audit log exits 1. Both groups print
every error as one line with rich markup escaped (so `[policy]` stays visible) and control
characters shown escaped; an unexpected error is one line too (exit 1; ALIGNLAB_DEBUG=1 re-raises).

What reaches the operator's terminal from a guarded command is untrusted: its output is shown
with control characters and escape sequences written out (`\\x1b[2J`), never interpreted,
so it cannot clear the screen, move the cursor, retitle the window or overwrite the guard's
notice, which is printed last (terminal escape injection: CVE-2003-0063 and the many like it).

Guard state must be out of the agent's reach, before anything runs: the policy file, the state
folder, the audit key, the anchor file and the Python installation running alignlab (interpreter,
environment, alignlab itself, every import path entry) are refused when inside the workspace,
the only place a confined command can write. A policy there could be rewritten for the next
run; state could be forged; planted code would run unconfined at the next `alignlab` call.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from alignlab.core.errors import UserError

console = Console()
err_console = Console(stderr=True)

STATE_HELP = ("Guard state folder: audit log and checkpoints (env ALIGNLAB_GUARD_STATE; default "
              "~/.alignlab/guard/<workspace name>-<hash>, outside the workspace).")
KEY_HELP = ("Key file that signs the audit log (env ALIGNLAB_AUDIT_KEY; default ~/.alignlab/guard/audit.key, "
            "created on first use, mode 0600). Keep it outside the workspace.")
ANCHOR_HELP = "A second file that receives the log's signed head after every record (keep it elsewhere)."

# C0 controls but newline and tab, DEL, C1 controls (0x9b is a one-byte CSI), line/paragraph separators,
# bidirectional overrides and isolates (they reorder what is shown: Boucher & Anderson, "Trojan Source", 2021),
# and lone surrogates (undecodable bytes).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                    "\ud800-\udfff]")


def _escaped(ch: str) -> str:
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def terminal_safe(text: str) -> tuple[str, int]:
    """(text with every control character and escape sequence shown escaped, how many); newlines and tabs kept."""
    text = text.replace("\r\n", "\n")
    count = 0

    def sub(m: re.Match) -> str:
        nonlocal count
        count += 1
        return _escaped(m.group())

    return UNSAFE.sub(sub, text), count


def safe(text: Any) -> str:
    return terminal_safe(str(text))[0]


def _write(stream: Any, text: str) -> None:
    """Write to a text stream whatever its encoding (unencodable characters backslash-escaped)."""
    enc = getattr(stream, "encoding", None) or "utf-8"
    buf = getattr(stream, "buffer", None)
    if buf is not None:
        stream.flush()
        buf.write(text.encode(enc, "backslashreplace"))
        buf.flush()
    else:
        stream.write(text.encode(enc, "backslashreplace").decode(enc))
        stream.flush()


def _fail(msg: str, code: int) -> None:
    err_console.print("[red]error:[/red] " + escape(safe(msg).replace("\n", " ")), highlight=False, soft_wrap=True)
    sys.exit(code)


class OneLineErrors(click.Group):
    """A command group whose errors are one escaped line each, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc), 2)
        except (click.exceptions.Exit, click.Abort, KeyboardInterrupt, BrokenPipeError):
            raise
        except click.ClickException as exc:
            _fail(f"{exc.format_message()} (see alignlab --help)", 2)
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback; ALIGNLAB_DEBUG=1 shows it
            if os.environ.get("ALIGNLAB_DEBUG"):
                raise
            _fail(f"internal error ({type(exc).__name__}: {str(exc)[:300]}); set ALIGNLAB_DEBUG=1 for the "
                  "traceback", 1)


def default_state_dir(workspace: str | Path) -> Path:
    env = os.environ.get("ALIGNLAB_GUARD_STATE")
    if env:
        return Path(env)
    ws = Path(workspace).resolve()
    tag = hashlib.sha256(str(ws).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return Path.home() / ".alignlab" / "guard" / f"{ws.name or 'root'}-{tag}"


def _workspace(path: str) -> Path:
    ws = Path(path)
    if not ws.is_dir():
        raise UserError(f"workspace {path!r} is not a folder")
    return ws.resolve()


def _state(workspace: Path, state_dir: str | None) -> Path:
    return Path(state_dir).resolve() if state_dir else default_state_dir(workspace).resolve()


def _log_path(log: str | None, workspace: str, state_dir: str | None) -> Path:
    if log:
        return Path(log)
    return _state(_workspace(workspace), state_dir) / "audit.jsonl"


def _key_path(audit_key: str | None) -> Path:
    from alignlab.controls.audit import default_key_path

    return Path(os.path.abspath(os.path.expanduser(audit_key))) if audit_key else default_key_path()


# --------------------------------------------------------------------------- guard state out of reach
def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _reach(ws: Path, path: str | Path) -> Path | None:
    """`path` (as written, and with symlinks resolved) if it is in the workspace, else None."""
    cands = [Path(os.path.abspath(path))]
    try:
        cands.append(Path(path).resolve())
    except (OSError, RuntimeError):  # a symlink loop: the lexical path is all there is
        pass
    return next((c for c in cands if _inside(c, ws)), None)


def out_of_reach(ws: Path, *, policy: str | None = None, state: Path | None = None, key: Path | None = None,
                 anchor: str | None = None, installation: bool = True) -> None:
    """Refuse (UserError) guard state or code that a confined command could change: anything in the workspace."""
    why = "a command run under the guard can write there"
    if policy is not None and os.path.lexists(policy):
        hit = _reach(ws, policy)
        if hit is not None:
            raise UserError(f"the policy file {hit} is inside the workspace {ws}: {why}, so the next run could be "
                            "unconfined; keep policies outside the workspace")
        try:
            st = os.stat(policy)
            links = st.st_nlink if stat.S_ISREG(st.st_mode) else 1
        except OSError:
            links = 1  # missing or unreadable: loading it says so
        if links > 1:
            raise UserError(f"the policy file {policy} has other hard links, which could be in the agent's reach; "
                            "give a file with one name")
    if state is not None:
        hit = _reach(ws, state)
        if hit is not None:
            raise UserError(f"the state folder {hit} is inside the workspace {ws}: {why} (and could move it from "
                            "under the mount that hides it), so its log and checkpoints could be forged; give "
                            "--state-dir outside the workspace")
        if _inside(ws, state.resolve()):
            raise UserError(f"the state folder {state} contains the workspace {ws}; give a folder beside it")
    if key is not None:
        hit = _reach(ws, key)
        if hit is not None:
            raise UserError(f"the audit key {hit} is inside the workspace {ws}: the agent could read it and sign "
                            "a forged log; keep it outside (--audit-key, ALIGNLAB_AUDIT_KEY)")
        if _inside(ws, key.parent.resolve()):
            raise UserError(f"the audit key's folder {key.parent} contains the workspace {ws}; keep the key in a "
                            "folder of its own")
    if anchor is not None and _reach(ws, anchor) is not None:
        raise UserError(f"the anchor file {anchor} is inside the workspace {ws}: {why}; keep it outside")
    if installation:
        import alignlab

        places = [("the Python interpreter", sys.executable), ("the Python environment", sys.prefix),
                  ("the Python installation", sys.base_prefix), ("the Python installation", sys.exec_prefix),
                  ("the alignlab package", os.path.dirname(alignlab.__file__))]
        places += [("the import path entry", entry or os.getcwd()) for entry in sys.path]
        for what, place in places:
            if not place:
                continue
            hit = _reach(ws, place)
            if hit is not None:
                cwd = " (python -m puts the current folder first on the import path: run alignlab from outside " \
                      "the workspace, or with python -P)" if what == "the import path entry" else ""
                raise UserError(f"{what} {hit} is inside the workspace {ws}: {why}, and code planted there would "
                                f"run unconfined at the next alignlab or python call{cwd}; install and run alignlab "
                                "from outside the workspace")


def _timeout(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UserError(f"--timeout must be a positive number of seconds, got {value!r}")
    return value


# --------------------------------------------------------------------------- guard
@click.group(cls=OneLineErrors)
def guard() -> None:
    """Run command-line agents under the guard (policy, sandbox, audit log), and roll back their changes."""


@guard.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("policy")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--workspace", "-w", default=".", show_default=True, help="Folder the command may change.")
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--timeout", type=float, default=None, callback=_timeout,
              help="Wall-clock limit in seconds (at most the policy's).")
@click.option("--approver", type=click.Choice(["deny", "terminal"]), default="deny", show_default=True,
              help="Who answers calls the policy sends to approval: refuse them, or ask at the terminal.")
@click.option("--recover-audit", is_flag=True, help="If the audit log ends in a torn record (a crash), "
              "record the damage and continue instead of refusing.")
@click.option("--audit-key", default=None, help=KEY_HELP)
@click.option("--anchor", default=None, help=ANCHOR_HELP)
def run_cmd(policy: str, command: tuple[str, ...], workspace: str, state_dir: str | None, timeout: float | None,
            approver: str, recover_audit: bool, audit_key: str | None, anchor: str | None) -> None:
    """Run COMMAND (after `--`) in the sandbox under POLICY (a .toml/.yaml file or a bundled name).

    The call is checked by the policy, the workspace is checkpointed, the command runs with a
    scrubbed environment, no network, limits and protected files read-only, and everything is
    written to the signed audit log. The command's output is shown with control characters
    escaped; the guard's notice is the last line. Exit status: the command's (124 on timeout).
    """
    from alignlab.controls import policy as policy_mod
    from alignlab.controls.approval import DenyAll, TerminalApprover
    from alignlab.controls.audit import AuditLog
    from alignlab.controls.guard import Guard
    from alignlab.controls.sandbox import SandboxViolation
    from alignlab.controls.tools import ToolCall

    if command and command[0] != "--" and command[0].startswith("-"):
        raise UserError(f"{safe(command[0])} after POLICY is taken as the command; options go before POLICY: "
                        "alignlab guard run [OPTIONS] POLICY -- COMMAND")
    argv = list(command[1:] if command and command[0] == "--" else command)
    if not argv:
        raise UserError("give the command after `--`, e.g. alignlab guard run default-coding -- python agent.py")
    for n, a in enumerate(argv):
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"argument {n} of the command ({safe(a)}) is not valid UTF-8; the guard runs UTF-8 "
                            "arguments only") from None
    ws = _workspace(workspace)
    state = _state(ws, state_dir)
    key = _key_path(audit_key)
    out_of_reach(ws, policy=policy, state=state, key=key, anchor=anchor)
    pol = policy_mod.load(policy)
    try:
        audit_log = AuditLog(state / "audit.jsonl", recover=recover_audit, key=key, anchor=anchor)
        g = Guard.for_workspace(pol, ws, state, audit=audit_log,
                                approver=TerminalApprover() if approver == "terminal" else DenyAll())
    except SandboxViolation as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot open the guard state in {state}: {exc.strerror or exc}") from None
    args: dict = {"argv": argv}
    if timeout is not None:
        args["timeout_s"] = float(timeout)
    call = ToolCall("run", args, id=f"cli-{int(time.time())}")
    decision = g.check(call)
    if not decision.allowed:
        raise UserError(f"denied by policy {pol.version} ({decision.stage}): {decision.reason}")
    out = g.execute(call, decision)
    if out.status == "denied" or not isinstance(out.value, dict):
        raise UserError(f"command not completed ({out.status}): {out.reason or out.value}")
    res = out.value
    stdout, n_out = terminal_safe(res["stdout"])
    stderr, n_err = terminal_safe(res["stderr"])
    _write(sys.stdout, stdout)
    _write(sys.stderr, stderr)
    iso = res["isolation"]
    notes = [f"checkpoint {out.checkpoint} (undo: alignlab guard rollback {out.checkpoint} -w {ws})",
             f"network isolated: {'yes' if iso.get('network') else 'NO'}",
             f"filesystem confined: {'yes' if iso.get('filesystem') else 'NO'}",
             f"audit: {state / 'audit.jsonl'} (record {g.audit.head[0]})"]
    if n_out or n_err:
        notes.append(f"{n_out + n_err} control characters in the output shown escaped")
    if res["truncated"]:
        notes.append("output cut at the policy's cap; command killed")
    if out.violations:
        notes.append(f"changes to protected paths were reverted: {', '.join(out.violations)}")
    # The notice is the last thing written, on a line of its own: escaped output cannot move the cursor over it.
    lead = "\n" if any(t and not t.endswith("\n") for t in (stdout, stderr)) else ""
    err_console.print(lead + "[dim]" + escape(safe("[guard] " + "; ".join(notes))) + "[/dim]", highlight=False,
                      soft_wrap=True)
    sys.exit(124 if res["timed_out"] else (res["returncode"] if res["returncode"] >= 0 else 128 - res["returncode"]))


@guard.command("rollback")
@click.argument("checkpoint")
@click.option("--workspace", "-w", default=".", show_default=True, help="The workspace the checkpoint belongs to.")
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--path", "paths", multiple=True, help="Restore only this path (repeatable); default: everything.")
@click.option("--audit-key", default=None, help=KEY_HELP)
def rollback_cmd(checkpoint: str, workspace: str, state_dir: str | None, paths: tuple[str, ...],
                 audit_key: str | None) -> None:
    """Restore the workspace (or --path) to its state just before CHECKPOINT's change."""
    from alignlab.controls.audit import AuditLog
    from alignlab.controls.checkpoints import CheckpointStore
    from alignlab.controls.sandbox import SandboxViolation, Workspace

    ws_path = _workspace(workspace)
    state = _state(ws_path, state_dir)
    key = _key_path(audit_key)
    out_of_reach(ws_path, state=state, key=key, installation=False)
    if not (state / "checkpoints").is_dir():
        raise UserError(f"no checkpoints under {state} (give --state-dir or -w)")
    try:
        store = CheckpointStore(state / "checkpoints", Workspace(ws_path))
        restored = store.rollback(checkpoint, list(paths) or None)
    except SandboxViolation as exc:
        raise UserError(str(exc)) from None
    with AuditLog(state / "audit.jsonl", key=key) as log:
        log.append("rollback", {"checkpoint": checkpoint, "paths": list(paths) or None, "restored": restored,
                                "by": "cli"})
    console.print(f"restored {len(restored)} path(s) to their state before {escape(safe(checkpoint))}",
                  highlight=False)
    for p in restored:
        console.print(f"  {escape(safe(p))}", highlight=False)


@guard.command("checkpoints")
@click.option("--workspace", "-w", default=".", show_default=True)
@click.option("--state-dir", default=None, help=STATE_HELP)
def checkpoints_cmd(workspace: str, state_dir: str | None) -> None:
    """List the checkpoints of a workspace."""
    state = _state(_workspace(workspace), state_dir)
    folder = state / "checkpoints" / "manifests"
    if not folder.is_dir():
        raise UserError(f"no checkpoints under {state}")
    table = RichTable(title=escape(safe(f"checkpoints in {state}")))
    for col in ("id", "created", "scope", "paths", "label"):
        table.add_column(col)
    for p in sorted(folder.glob("cp-*.json")):
        m = json.loads(p.read_text())
        table.add_row(*(escape(safe(x)) for x in (
            m["id"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["created"])), m["scope"],
            len(m["entries"]), m["label"])))
    console.print(table)


# --------------------------------------------------------------------------- audit
@click.group(cls=OneLineErrors)
def audit() -> None:
    """Inspect and verify the guard's signed, hash-chained audit log."""


@audit.command("show")
@click.option("--log", default=None, help="Audit log file (default: the workspace's state folder).")
@click.option("--workspace", "-w", default=".", show_default=True)
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--tail", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show the last N records (0: all).")
@click.option("--kind", default=None, help="Only records of this kind (session, decision, approval, execution, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print raw JSON lines.")
@click.option("--audit-key", default=None, help=KEY_HELP)
def show_cmd(log: str | None, workspace: str, state_dir: str | None, tail: int, kind: str | None,
             as_json: bool, audit_key: str | None) -> None:
    """Show audit records (and whether the chain verifies)."""
    from alignlab.controls.audit import read_records, verify

    path = _log_path(log, workspace, state_dir)
    if not path.is_file():
        raise UserError(f"no audit log at {path}")
    rows = [(i, r) for i, r, _ in read_records(path)
            if isinstance(r, dict) and (kind is None or r.get("kind") == kind)]
    rows = rows[-tail:] if tail else rows
    if as_json:
        for _, r in rows:
            click.echo(json.dumps(r, sort_keys=True))  # ASCII: control characters are \u escapes
        return
    table = RichTable(title=escape(safe(path)))
    for col in ("#", "time", "kind", "summary"):
        table.add_column(col)
    for i, r in rows:
        d = r.get("data")
        try:
            if r["kind"] == "decision":
                summary = f"{d['tool']} -> {d['action'].upper()} [{d['stage']}] {d['reason']}"
            elif r["kind"] == "execution":
                summary = f"seq {d.get('seq')} {d['status']} {d.get('reason', '')} cp={d.get('checkpoint')}"
            else:
                raise TypeError
        except (TypeError, KeyError, AttributeError):
            summary = json.dumps(d, sort_keys=True, default=str)[:160]
        try:
            when = time.strftime("%H:%M:%S", time.localtime(r["ts"]))
        except (TypeError, KeyError, ValueError, OverflowError, OSError):
            when = "?"
        table.add_row(str(i), when, escape(safe(r.get("kind"))), escape(safe(summary)))
    console.print(table)
    console.print(escape(safe(verify(path, key=_key_path(audit_key)).line())), highlight=False)


@audit.command("verify")
@click.option("--log", default=None, help="Audit log file (default: the workspace's state folder).")
@click.option("--workspace", "-w", default=".", show_default=True)
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--audit-key", default=None, help=KEY_HELP)
@click.option("--anchor", default=None, help="The anchor file written by `guard run --anchor`: the log must still "
              "hold the record it names.")
def verify_cmd(log: str | None, workspace: str, state_dir: str | None, audit_key: str | None,
               anchor: str | None) -> None:
    """Check the chain and its signatures; exit 1 and name the first bad record if anything was edited, forged,
    appended, cut, emptied, moved or torn (or cannot be checked)."""
    from alignlab.controls.audit import verify

    path = _log_path(log, workspace, state_dir)
    if not os.path.lexists(path) and anchor is None:
        raise UserError(f"no audit log at {path}")
    result = verify(path, key=_key_path(audit_key), anchor=anchor)
    click.echo(safe(result.line()))
    if not result.ok:
        sys.exit(1)
