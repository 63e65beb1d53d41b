"""`alignlab guard heldout`: the test command on the agent's code with the checkpoint's own tests, in a fresh sandbox.

Graders that re-run the original tests in a fresh environment rather than trust the agent's copy follow
SWE-bench (Jimenez et al. 2024, arXiv:2310.06770); the guard's checkpoint is the pristine copy. Imported
by cli/main.py, which adds the command to the `guard` group.
"""
from __future__ import annotations

import sys

import click
from rich.markup import escape

from alignlab.cli.controls_cmds import (STATE_HELP, UserError, _state, _workspace, _write, err_console, guard,
                                        out_of_reach, safe, terminal_safe)


@guard.command("heldout", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("checkpoint")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--workspace", "-w", default=".", show_default=True, help="The workspace the checkpoint belongs to.")
@click.option("--state-dir", default=None, help=STATE_HELP)
@click.option("--policy", default="default-coding", show_default=True,
              help="Policy whose [protect] paths are the specification and whose [sandbox] runs the check.")
def heldout_cmd(checkpoint: str, command: tuple[str, ...], workspace: str, state_dir: str | None,
                policy: str) -> None:
    """Run the test COMMAND (after `--`) on the workspace's code with the tests and test configuration of
    CHECKPOINT, in a fresh sandbox: what the agent changed in them, or added, plays no part."""
    from alignlab.controls import policy as policy_mod
    from alignlab.controls.checkpoints import CheckpointStore
    from alignlab.controls.heldout import run_pristine
    from alignlab.controls.sandbox import SandboxViolation, Workspace

    argv = list(command[1:] if command and command[0] == "--" else command)
    if not argv:
        raise UserError("give the test command after `--`, e.g. alignlab guard heldout cp-000001 -- python -m pytest")
    ws = _workspace(workspace)
    state = _state(ws, state_dir)
    out_of_reach(ws, policy=policy, state=state)
    pol = policy_mod.load(policy)
    if not (state / "checkpoints").is_dir():
        raise UserError(f"no checkpoints under {state} (give --state-dir or -w)")
    try:
        res = run_pristine(CheckpointStore(state / "checkpoints", Workspace(ws)), checkpoint, argv,
                           protected=pol.is_protected, settings=pol.sandbox)
    except SandboxViolation as exc:
        raise UserError(str(exc)) from None
    _write(sys.stdout, terminal_safe(res.stdout)[0])
    _write(sys.stderr, terminal_safe(res.stderr)[0])
    err_console.print("[dim]" + escape(safe(
        f"[guard] held-out run from {checkpoint}: {len(res.spec)} specification paths from the checkpoint, "
        f"{len(res.ignored)} workspace paths ignored")) + "[/dim]", highlight=False, soft_wrap=True)
    sys.exit(124 if res.timed_out else (res.returncode if res.returncode >= 0 else 128 - res.returncode))
