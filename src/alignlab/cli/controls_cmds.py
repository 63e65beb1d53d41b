"""`alignlab guard` (run a command under the guard, roll back) and `alignlab audit` (show, verify).

The lead adds these groups to the main CLI: `cli.add_command(guard)` and `cli.add_command(audit)`.
Bad input raises UserError (one line, exit 2); a tampered audit log exits 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from alignlab.core.errors import UserError

console = Console()
err_console = Console(stderr=True)

STATE_HELP = ("Guard state folder: audit log and checkpoints (env ALIGNLAB_GUARD_STATE; default "
              "~/.alignlab/guard/<workspace name>-<hash>, outside the workspace).")


def default_state_dir(workspace: str | Path) -> Path:
    env = os.environ.get("ALIGNLAB_GUARD_STATE")
    if env:
        return Path(env)
    ws = Path(workspace).resolve()
    tag = hashlib.sha256(str(ws).encode()).hexdigest()[:8]
    return Path.home() / ".alignlab" / "guard" / f"{ws.name or 'root'}-{tag}"


def _workspace(path: str) -> Path:
    ws = Path(path)
    if not ws.is_dir():
        raise UserError(f"workspace {path!r} is not a folder")
    return ws.resolve()


def _state(workspace: Path, state_dir: str | None) -> Path:
    return Path(state_dir).resolve() if state_dir else default_state_dir(workspace)


def _log_path(log: str | None, workspace: str, state_dir: str | None) -> Path:
    if log:
        return Path(log)
    return _state(_workspace(workspace), state_dir) / "audit.jsonl"


@click.group()
def guard() -> None:
    """Run command-line agents under the guard (policy, sandbox, audit log), and roll back their changes."""


@guard.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("policy")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--workspace", "-w", default=".", show_default=True, help="Folder the command may change.")
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--timeout", type=float, default=None, help="Wall-clock limit in seconds (at most the policy's).")
@click.option("--approver", type=click.Choice(["deny", "terminal"]), default="deny", show_default=True,
              help="Who answers calls the policy sends to approval: refuse them, or ask at the terminal.")
@click.option("--recover-audit", is_flag=True, help="If the audit log ends in a torn record (a crash), "
              "record the damage and continue instead of refusing.")
def run_cmd(policy: str, command: tuple[str, ...], workspace: str, state_dir: str | None, timeout: float | None,
            approver: str, recover_audit: bool) -> None:
    """Run COMMAND (after `--`) in the sandbox under POLICY (a .toml/.yaml file or a bundled name).

    The call is checked by the policy, the workspace is checkpointed, the command runs with a
    scrubbed environment, no network, limits and protected files read-only, and everything is
    written to the audit log. Exit status: the command's (124 on timeout).
    """
    from alignlab.controls import policy as policy_mod
    from alignlab.controls.approval import DenyAll, TerminalApprover
    from alignlab.controls.audit import AuditLog
    from alignlab.controls.guard import Guard
    from alignlab.controls.sandbox import SandboxViolation
    from alignlab.controls.tools import ToolCall

    pol = policy_mod.load(policy)
    ws = _workspace(workspace)
    state = _state(ws, state_dir)
    argv = list(command[1:] if command and command[0] == "--" else command)
    if not argv:
        raise UserError("give the command after `--`, e.g. alignlab guard run default-coding -- python agent.py")
    try:
        audit_log = AuditLog(state / "audit.jsonl", recover=recover_audit)
        g = Guard.for_workspace(pol, ws, state, audit=audit_log,
                                approver=TerminalApprover() if approver == "terminal" else DenyAll())
    except SandboxViolation as exc:
        raise UserError(str(exc)) from None
    args: dict = {"argv": argv}
    if timeout is not None:
        args["timeout_s"] = float(timeout)
    call = ToolCall("run", args, id=f"cli-{int(time.time())}")
    decision = g.check(call)
    if not decision.allowed:
        raise UserError(f"denied by policy {pol.version} ({decision.stage}): {decision.reason}")
    out = g.execute(call, decision)
    if out.status in ("denied",) or (out.status == "refused" and not isinstance(out.value, dict)):
        raise UserError(f"{out.status}: {out.reason}")
    res = out.value
    sys.stdout.write(res["stdout"])
    sys.stderr.write(res["stderr"])
    iso = res["isolation"]
    notes = [f"checkpoint {out.checkpoint} (undo: alignlab guard rollback {out.checkpoint} -w {ws})",
             f"network isolated: {'yes' if iso.get('network') else 'NO'}",
             f"filesystem confined: {'yes' if iso.get('filesystem') else 'NO'}",
             f"audit: {state / 'audit.jsonl'} (record {g.audit.head[0]})"]
    if res["truncated"]:
        notes.append("output cut at the policy's cap; command killed")
    if out.violations:
        notes.append(f"changes to protected paths were reverted: {', '.join(out.violations)}")
    err_console.print("[dim]" + escape("[guard] " + "; ".join(notes)) + "[/dim]", highlight=False, soft_wrap=True)
    sys.exit(124 if res["timed_out"] else (res["returncode"] if res["returncode"] >= 0 else 128 - res["returncode"]))


@guard.command("rollback")
@click.argument("checkpoint")
@click.option("--workspace", "-w", default=".", show_default=True, help="The workspace the checkpoint belongs to.")
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--path", "paths", multiple=True, help="Restore only this path (repeatable); default: everything.")
def rollback_cmd(checkpoint: str, workspace: str, state_dir: str | None, paths: tuple[str, ...]) -> None:
    """Restore the workspace (or --path) to its state just before CHECKPOINT's change."""
    from alignlab.controls.audit import AuditLog
    from alignlab.controls.checkpoints import CheckpointStore
    from alignlab.controls.sandbox import SandboxViolation, Workspace

    ws_path = _workspace(workspace)
    state = _state(ws_path, state_dir)
    if not (state / "checkpoints").is_dir():
        raise UserError(f"no checkpoints under {state} (give --state-dir or -w)")
    try:
        forbidden = (str(state.relative_to(ws_path)).split("/")[0],) if ws_path in state.parents else ()
        store = CheckpointStore(state / "checkpoints", Workspace(ws_path, forbidden=forbidden))
        restored = store.rollback(checkpoint, list(paths) or None)
    except SandboxViolation as exc:
        raise UserError(str(exc)) from None
    with AuditLog(state / "audit.jsonl") as log:
        log.append("rollback", {"checkpoint": checkpoint, "paths": list(paths) or None, "restored": restored,
                                "by": "cli"})
    console.print(f"restored {len(restored)} path(s) to their state before {checkpoint}")
    for p in restored:
        console.print(f"  {escape(p)}", highlight=False)


@guard.command("checkpoints")
@click.option("--workspace", "-w", default=".", show_default=True)
@click.option("--state-dir", default=None, help=STATE_HELP)
def checkpoints_cmd(workspace: str, state_dir: str | None) -> None:
    """List the checkpoints of a workspace."""
    state = _state(_workspace(workspace), state_dir)
    folder = state / "checkpoints" / "manifests"
    if not folder.is_dir():
        raise UserError(f"no checkpoints under {state}")
    table = RichTable(title=f"checkpoints in {state}")
    for col in ("id", "created", "scope", "paths", "label"):
        table.add_column(col)
    for p in sorted(folder.glob("cp-*.json")):
        m = json.loads(p.read_text())
        table.add_row(m["id"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["created"])), m["scope"],
                      str(len(m["entries"])), m["label"])
    console.print(table)


@click.group()
def audit() -> None:
    """Inspect and verify the guard's hash-chained audit log."""


@audit.command("show")
@click.option("--log", default=None, help="Audit log file (default: the workspace's state folder).")
@click.option("--workspace", "-w", default=".", show_default=True)
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--tail", type=int, default=50, show_default=True, help="Show the last N records (0: all).")
@click.option("--kind", default=None, help="Only records of this kind (session, decision, approval, execution, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print raw JSON lines.")
def show_cmd(log: str | None, workspace: str, state_dir: str | None, tail: int, kind: str | None,
             as_json: bool) -> None:
    """Show audit records (and whether the chain verifies)."""
    from alignlab.controls.audit import read_records, verify

    path = _log_path(log, workspace, state_dir)
    if not path.exists():
        raise UserError(f"no audit log at {path}")
    rows = [(i, r) for i, r, _ in read_records(path) if r is not None and (kind is None or r["kind"] == kind)]
    rows = rows[-tail:] if tail else rows
    if as_json:
        for _, r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    table = RichTable(title=str(path))
    for col in ("#", "time", "kind", "summary"):
        table.add_column(col)
    for i, r in rows:
        d = r["data"]
        if r["kind"] == "decision":
            summary = f"{d['tool']} -> {d['action'].upper()} [{d['stage']}] {d['reason']}"
        elif r["kind"] == "execution":
            summary = f"seq {d.get('seq')} {d['status']} {d.get('reason', '')} cp={d.get('checkpoint')}"
        else:
            summary = json.dumps(d, sort_keys=True)[:160]
        table.add_row(str(i), time.strftime("%H:%M:%S", time.localtime(r["ts"])), r["kind"], escape(summary))
    console.print(table)
    console.print(verify(path).line(), highlight=False)


@audit.command("verify")
@click.option("--log", default=None, help="Audit log file (default: the workspace's state folder).")
@click.option("--workspace", "-w", default=".", show_default=True)
@click.option("--state-dir", default=None, help=STATE_HELP)
def verify_cmd(log: str | None, workspace: str, state_dir: str | None) -> None:
    """Check the hash chain; exit 1 and name the first bad record if anything was edited, cut, moved or torn."""
    from alignlab.controls.audit import verify

    path = _log_path(log, workspace, state_dir)
    result = verify(path)
    if not result.ok and result.records == 0 and not path.exists():
        raise UserError(f"no audit log at {path}")
    click.echo(result.line())
    if not result.ok:
        sys.exit(1)
