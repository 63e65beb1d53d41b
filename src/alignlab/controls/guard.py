"""The guard: every tool call passes `check` (a fixed decision pipeline) and then `execute`.

Pipeline, in order (after what users ask of guard layers in the public issue trackers of NeMo
Guardrails, the OpenAI Agents SDK and Invariant, and MCP's tool annotations): argument-schema
validation -> deny rules and protected paths (final) -> budgets and loop detection ->
information flow (taint into destructive/open-world/sink tools) -> ask rules and destructive
tools -> approver (a signed receipt binding the call's sha256 and the policy version) ->
escalation (a monitor's score; stop the run after N denials). Blocking happens before any
side effect; `execute` re-validates the decision, the call hash, the policy version and the
receipt (fail closed), takes a checkpoint of what will change, runs the tool in the sandbox,
and logs both decision and execution to the hash-chained audit log. Any internal error denies.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from alignlab.controls import exec_supervisor
from alignlab.controls.approval import (ApprovalRequest, Approver, DenyAll, Receipt, ReceiptSigner, safe_decide)
from alignlab.controls.audit import AuditLog, MemoryAudit, canonical, default_key_path
from alignlab.controls.checkpoints import CheckpointStore
from alignlab.controls.policy import ArgSpec, Policy, Rule
from alignlab.controls.process import Runner, scrubbed_env
from alignlab.controls.sandbox import SandboxViolation, Workspace, check_path
from alignlab.controls.taint import Tainted, TaintTracker
from alignlab.controls.tools import ALL, Tool, ToolCall, call_hash, check_type, clear_setid_bits, coding_tools
from alignlab.core.registry import register

SINK_ANNOTATIONS = frozenset({"destructive", "open-world", "sink"})
Monitor = Callable[[ToolCall, list], float]


@dataclass(frozen=True)
class Decision:
    action: str  # allow | deny
    stage: str
    reason: str
    call_hash: str
    policy_version: str
    rule: str | None = None
    labels: tuple[str, ...] = ()
    receipt: Receipt | None = None
    seq: int = -1

    @property
    def allowed(self) -> bool:
        return self.action == "allow"


@dataclass
class Outcome:
    status: str  # ok | denied | refused (sandbox) | error (the tool raised)
    value: Any
    decision: Decision
    reason: str = ""
    checkpoint: str | None = None
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _preview(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str):
        if len(value) <= limit:
            return str(value)
        return f"{value[:limit]}... [{len(value)} chars, sha256 {hashlib.sha256(value.encode()).hexdigest()[:16]}]"
    if isinstance(value, dict):
        return {str(k): _preview(v, limit) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_preview(v, limit) for v in list(value)[:50]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _preview(str(value), limit)


@register("control", "tool-guard-v0")
class Guard:
    """A runtime guard between an agent and its tools (permissions, sandbox, flow, approval, audit, rollback)."""

    def __init__(self, policy: Policy, tools: Iterable[Tool] = (), *, workspace: Workspace | None = None,
                 state_dir: str | Path | None = None, audit: Any = None, approver: Approver | None = None,
                 monitor: Monitor | None = None, trusted_text: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic, fsync: bool = True):
        self.policy = policy
        self.tools = {t.name: t for t in tools}
        self.workspace = workspace
        self.state_dir = Path(state_dir) if state_dir else None
        if audit is None:
            audit = AuditLog(self.state_dir / "audit.jsonl", fsync=fsync) if self.state_dir else MemoryAudit()
        self.audit = audit
        self.checkpoints = (CheckpointStore(self.state_dir / "checkpoints", workspace)
                            if workspace is not None and self.state_dir else None)
        self.approver = approver or DenyAll()
        self.signer = ReceiptSigner()
        self.monitor = monitor
        self.taint = TaintTracker(policy.flow.min_atom, [*trusted_text, *policy.flow.trusted_text])
        self.clock = clock
        self.started = clock()
        self.total = 0
        self.per_tool: Counter[str] = Counter()
        self.denials = 0
        self.halted: str | None = None
        self.window: deque[str] = deque(maxlen=policy.budgets.loop_window)
        self.history: deque[tuple[ToolCall, Decision]] = deque(maxlen=100)
        self._pending: dict[int, tuple] = {}
        self._seq = 0
        self.audit.append("session", {"policy": policy.version, "source": policy.source,
                                      "workspace": str(workspace.root) if workspace else None,
                                      "tools": sorted(self.tools), "pid": os.getpid()})

    @classmethod
    def for_workspace(cls, policy: Policy, root: str | Path, state_dir: str | Path, **kwargs: Any) -> "Guard":
        """A guard with the built-in coding tools over a workspace, its runner, checkpoints and audit log."""
        root_p, state_p = Path(root).resolve(), Path(state_dir).resolve()
        forbidden = ()
        if state_p == root_p:
            raise SandboxViolation("the state folder cannot be the workspace itself")
        if root_p in state_p.parents:
            forbidden = (str(state_p.relative_to(root_p)).split("/")[0],)
        # The audit key signs the log: never in the workspace, and hidden from commands with the state folder.
        audit = kwargs.get("audit")
        key_path = getattr(audit, "key_path", None) if audit is not None else default_key_path()
        hide: tuple[str, ...] = (str(state_p),)
        if key_path is not None:
            key_p = Path(key_path).resolve()
            if key_p == root_p or root_p in key_p.parents:
                raise SandboxViolation(f"the audit key {key_p} is inside the workspace: the agent could read it "
                                       "and forge the log; keep it outside (--audit-key, ALIGNLAB_AUDIT_KEY)")
            hide += (str(key_p.parent),)
        ws = Workspace(root_p, policy.sandbox.max_file_bytes, forbidden)
        runner = Runner(ws.root, policy.sandbox, hide=hide)
        holder: list[Guard] = []
        tools = coding_tools(ws, runner, protected=lambda rel: holder[0].policy.is_protected(rel))
        guard = cls(policy, tools, workspace=ws, state_dir=state_p, **kwargs)
        holder.append(guard)
        guard.runner = runner
        return guard

    # ================================================================== check
    def check(self, call: ToolCall) -> Decision:
        """Decide, before any side effect. Always returns a Decision; an internal error is a denial."""
        self._seq += 1
        seq = self._seq
        try:
            h = call_hash(call.tool, call.args)
        except Exception as exc:  # noqa: BLE001
            h = "unhashable"
            decision = self._deny("schema", f"arguments cannot be serialised: {exc}", h, seq=seq)
        else:
            try:
                decision = self._pipeline(call, h, seq)
            except Exception as exc:  # noqa: BLE001 - fail closed on any bug or approver crash
                decision = self._deny("error", f"guard error ({type(exc).__name__}: {exc}); failing closed", h, seq=seq)
        self.history.append((call, decision))
        self.audit.append("decision", {
            "seq": seq, "call_id": call.id, "tool": call.tool, "args": _preview(call.args), "call_hash": h,
            "action": decision.action, "stage": decision.stage, "rule": decision.rule, "reason": decision.reason,
            "labels": list(decision.labels), "policy": self.policy.version,
            "receipt": decision.receipt.nonce if decision.receipt else None})
        if decision.allowed:
            self._pending[seq] = (h, self.policy.version, decision.receipt.nonce if decision.receipt else None)
        else:
            self._count_denial(decision.reason)
        return decision

    def _deny(self, stage: str, reason: str, h: str, rule: str | None = None, labels: Iterable[str] = (),
              seq: int = -1) -> Decision:
        return Decision("deny", stage, reason, h, self.policy.version, rule, tuple(sorted(labels)), None, seq)

    def _count_denial(self, reason: str) -> None:
        self.denials += 1
        limit = self.policy.escalation.max_denials
        if limit and self.denials >= limit and not self.halted:
            self._halt(f"{self.denials} denials reached the escalation limit ({limit}); last: {reason}")

    def _halt(self, why: str) -> None:
        self.halted = why
        self.audit.append("escalation", {"halted": why, "denials": self.denials, "calls": self.total})

    def tool_info(self, name: str) -> tuple[frozenset[str], dict[str, ArgSpec]] | None:
        """(annotations, argument schema) from the policy's [tools] entry over the tool's own; None if unknown."""
        tool, tp = self.tools.get(name), self.policy.tools.get(name)
        if tool is None and tp is None:
            return None
        ann = tp.annotations if tp is not None and tp.annotations else (tool.annotations if tool else frozenset())
        schema = tp.args if tp is not None and tp.args is not None else (tool.args if tool else None)
        return ann, schema if schema is not None else {}

    def _normalise(self, args: dict, schema: dict[str, ArgSpec]) -> dict:
        """Schema check, and paths made canonical (relative, no `.`/`..`, no symlinks) so rules see one spelling."""
        if not isinstance(args, dict):
            raise SandboxViolation(f"arguments must be an object, got {type(args).__name__}")
        unknown = sorted(set(args) - set(schema))
        if unknown:
            raise SandboxViolation(f"unknown argument(s) {unknown}; valid: {sorted(schema) or '(none)'}")
        out = {}
        for name, spec in schema.items():
            if name not in args:
                if spec.required:
                    raise SandboxViolation(f"missing required argument {name!r} ({spec.type})")
                continue
            value = args[name]
            if not check_type(value, spec.type):
                raise SandboxViolation(f"argument {name!r} must be {spec.type}, got {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise SandboxViolation(f"argument {name!r} must be a finite number, got {value!r}")
            if spec.type == "path":
                value = self._path(value)
            elif spec.type == "list[path]":
                value = [self._path(v) for v in value]
            out[name] = value
        return out

    def _path(self, value: str) -> str:
        if self.workspace is not None:
            return self.workspace.canonical(value, allow_root=True)
        return check_path(value, allow_root=True)

    @staticmethod
    def _as_strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)):
            return [v if isinstance(v, str) else canonical(v).decode() for v in value]
        if isinstance(value, dict):
            return [canonical(value).decode()]
        return [str(value)]

    def _exec_env(self) -> dict[str, str]:
        """The environment a `run` command starts with (what pytest reads PYTEST_ADDOPTS from)."""
        return scrubbed_env(self.policy.sandbox, self.workspace.root if self.workspace else Path.cwd())

    def _match(self, rule: Rule, tool: str, args: dict, ann: frozenset[str]) -> str | None:
        env = self._exec_env() if (rule.pytest and "argv" in args) else None
        return rule.match(tool, args, ann, self._as_strings, env)

    def _matches(self, rule: Rule, tool: str, args: dict, ann: frozenset[str]) -> bool:
        return self._match(rule, tool, args, ann) is not None

    def _pipeline(self, call: ToolCall, h: str, seq: int) -> Decision:
        pol = self.policy
        if self.halted:
            return self._deny("halted", f"run stopped by escalation: {self.halted}", h, seq=seq)
        # 1. argument schema
        info = self.tool_info(call.tool)
        if info is None:
            return self._deny("schema",
                              f"unknown tool {call.tool!r}; known: {sorted(set(self.tools) | set(pol.tools))}",
                              h, seq=seq)
        ann, schema = info
        try:
            args = self._normalise(call.args, schema)
        except SandboxViolation as exc:
            return self._deny("schema", str(exc), h, seq=seq)
        # 2. deny rules and protected paths (final)
        for rule in pol.deny:
            detail = self._match(rule, call.tool, args, ann)
            if detail is not None:
                return self._deny("deny-rule", rule.describe(detail), h, rule.id, seq=seq)
        if pol.protect and "read-only" not in ann:
            for name, spec in schema.items():
                if spec.type in ("path", "list[path]") and name in args:
                    for p in self._as_strings(args[name]):
                        if pol.is_protected(p):
                            return self._deny("protect", f"{p!r} is protected: {pol.protect_reason}", h, "protect",
                                              seq=seq)
        # 3. budgets and loops
        b = pol.budgets
        if b.wall_time_s is not None and self.clock() - self.started > b.wall_time_s:
            return self._deny("budget", f"wall-time budget of {b.wall_time_s:g} s is spent", h, "wall_time_s", seq=seq)
        if b.max_calls is not None and self.total >= b.max_calls:
            return self._deny("budget", f"run budget of {b.max_calls} calls is spent", h, "max_calls", seq=seq)
        if call.tool in b.per_tool and self.per_tool[call.tool] >= b.per_tool[call.tool]:
            return self._deny("budget", f"budget of {b.per_tool[call.tool]} {call.tool} calls is spent", h,
                              f"per_tool.{call.tool}", seq=seq)
        repeats = sum(1 for x in self.window if x == h)
        self.window.append(h)
        if b.loop_repeat is not None and repeats + 1 >= b.loop_repeat:
            return self._deny("loop", f"the same call {repeats + 1} times in the last {b.loop_window} calls "
                              "(loop detected)", h, "loop", seq=seq)
        # 4. information flow
        labels: frozenset[str] = frozenset()
        if ann & SINK_ANNOTATIONS:
            guarded = pol.flow.sinks.get(call.tool) or tuple(args)
            labels = frozenset().union(*(self.taint.labels_of(call.args.get(a)) for a in guarded if a in args))
            if labels and pol.flow.action == "deny":
                return self._deny("flow", f"untrusted data ({', '.join(sorted(labels))}) flows into "
                                  f"{'/'.join(sorted(ann & SINK_ANNOTATIONS))} tool {call.tool}",
                                  h, "flow", labels, seq)
        # 5. ask / allow / destructive / default
        ask = None
        if labels:
            ask = ("flow", "flow", f"untrusted data ({', '.join(sorted(labels))}) flows into {call.tool}")
        else:
            hit = next((r for r in pol.ask if self._matches(r, call.tool, args, ann)), None)
            if hit is not None:
                ask = ("ask-rule", hit.id, hit.reason or f"rule {hit.id} asks for approval")
            elif any(self._matches(r, call.tool, args, ann) for r in pol.allow):
                pass
            elif pol.ask_destructive and "destructive" in ann:
                ask = ("destructive", None, f"{call.tool} is destructive")
            elif pol.default == "deny":
                return self._deny("default", f"no rule allows {call.tool} (default deny)", h, seq=seq)
            elif pol.default == "ask":
                ask = ("default", None, f"no rule allows {call.tool} (default ask)")
        # 6. approver
        receipt = None
        if ask is not None:
            stage, rule_id, reason = ask
            req = ApprovalRequest(call.tool, copy.deepcopy(call.args), h, pol.version, stage, rule_id, reason,
                                  tuple(sorted(labels)))
            approved, why = safe_decide(self.approver, req)
            receipt = self.signer.issue(req, self.approver.name, approved)
            self.audit.append("approval", {"seq": seq, "call_hash": h, "approver": self.approver.name,
                                           "approved": approved, "reason": reason, "nonce": receipt.nonce})
            if not approved:
                return self._deny("approval", f"{reason}: {why}", h, rule_id, labels, seq)
        # 7. escalation: monitor score
        thr = pol.escalation.monitor_threshold
        if self.monitor is not None and thr is not None:
            try:
                score = float(self.monitor(call, list(self.history)))
            except Exception as exc:  # noqa: BLE001
                score, thr = 1.0, -1.0  # a failed monitor fails closed
                self.audit.append("monitor-error", {"seq": seq, "error": f"{type(exc).__name__}: {exc}"})
            if not score <= thr:  # NaN fails closed too
                self._halt(f"monitor score {score:.3f} over threshold {thr}")
                return self._deny("monitor", f"monitor score {score:.3f} over threshold {thr}", h, "monitor", seq=seq)
        self.total += 1
        self.per_tool[call.tool] += 1
        stage = ask[0] if ask else "allow"
        return Decision("allow", stage, "approved" if ask else "allowed", h, pol.version, None, tuple(sorted(labels)),
                        receipt, seq)

    # ================================================================== execute
    def execute(self, call: ToolCall, decision: Decision | None = None,
                fn: Callable[..., Any] | None = None) -> Outcome:
        """Run an allowed call (`fn` overrides the tool's executor, e.g. an external runtime)."""
        if decision is None:
            decision = self.check(call)
        if not decision.allowed:
            return Outcome("denied", f"denied: {decision.reason}", decision, decision.reason)
        args = copy.deepcopy(call.args)
        pending = self._pending.pop(decision.seq, None)
        problem = None
        try:
            h = call_hash(call.tool, args)
        except Exception:  # noqa: BLE001
            h = "unhashable"
        if pending is None:
            problem = "decision was not issued by this guard or was already used"
        elif h != pending[0] or h != decision.call_hash:
            problem = "call changed after it was checked (hash differs)"
        elif self.policy.version != pending[1]:
            problem = f"policy changed after the decision ({pending[1]} -> {self.policy.version})"
        elif pending[2] is not None:
            if decision.receipt is None or decision.receipt.nonce != pending[2]:
                problem = "approval receipt missing or swapped"
            else:
                problem = self.signer.redeem(decision.receipt, h, self.policy.version)
        if problem is None and self.halted:
            problem = f"run stopped by escalation: {self.halted}"
        if problem is not None:
            self.audit.append("execution", {"seq": decision.seq, "call_hash": h, "status": "denied",
                                            "reason": f"revalidation failed: {problem}"})
            self._count_denial(problem)
            return Outcome("denied", f"denied: {problem}", decision, problem)

        tool = self.tools.get(call.tool)
        started = time.perf_counter()
        cp, violations, status, reason = None, [], "ok", ""
        try:
            info = self.tool_info(call.tool)
            nargs = self._normalise(args, info[1] if info else {})
            if fn is None and tool is None:
                raise LookupError(f"no executor for tool {call.tool!r}")
            mut = tool.mutates(nargs) if tool is not None and tool.mutates else None
            with contextlib.ExitStack() as hold:
                if mut and self.checkpoints is not None:
                    # One writer per workspace from checkpoint to revert: a second guard run waits.
                    hold.enter_context(self.checkpoints.locked())
                    cp = self.checkpoints.create(None if mut == ALL else list(mut), label=f"{call.tool} {h[:12]}")
                with exec_supervisor.enforcing(self.policy):  # every exec inside a sandbox it starts: deny rules
                    value = (fn or tool.fn)(**nargs)
                if mut == ALL and cp and self.policy.protect:
                    violations = self.checkpoints.restore_protected(cp, self.policy.is_protected)
                    if violations:
                        status, reason = "refused", f"changed protected paths, reverted: {violations}"
            self._audit_execs(decision.seq, value)
            setid = clear_setid_bits(self.workspace.root, self.workspace.forbidden) \
                if mut == ALL and self.workspace is not None else []
            if setid:
                violations = violations + setid
                status = "refused"
                reason = "; ".join(filter(None, [reason, f"set-user/group-ID bits cleared on {setid}"]))
        except SandboxViolation as exc:
            value, status, reason = f"refused: {exc}", "refused", str(exc)
        except Exception as exc:  # noqa: BLE001 - the tool failed; the agent sees the error
            value, status, reason = f"error: {type(exc).__name__}: {exc}", "error", f"{type(exc).__name__}: {exc}"
        if status == "ok" or status == "error":
            value = self._label(call.tool, value)
        self.audit.append("execution", {
            "seq": decision.seq, "call_hash": h, "status": status, "reason": reason, "checkpoint": cp,
            "violations": violations, "seconds": round(time.perf_counter() - started, 6),
            "result_sha256": hashlib.sha256(canonical(value)).hexdigest(), "result": _preview(value)})
        if status == "refused":
            self._count_denial(reason)
        return Outcome(status, value, decision, reason, cp, violations)

    def _audit_execs(self, seq: int, value: Any) -> None:
        """One audit event per exec the sandbox's supervisor refused (value["isolation"]["exec"]["decisions"])."""
        try:
            decisions = value["isolation"]["exec"]["decisions"]
        except (KeyError, TypeError, IndexError):
            return
        for d in decisions if isinstance(decisions, list) else []:
            if isinstance(d, dict) and d.get("action") == "deny":  # refused, or killed after landing elsewhere
                self.audit.append("exec", {"seq": seq, **d})

    def _label(self, tool: str, value: Any) -> Any:
        if any(p.matches(tool) for p in self.policy.flow.untrusted):
            label = f"untrusted:{tool}"
            self.taint.add_untrusted(value, label)
            return Tainted(value, {label}) if isinstance(value, str) else value
        self.taint.add_trusted(value)
        return value

    def call(self, tool: str, **args: Any) -> Outcome:
        """check + execute in one step."""
        c = ToolCall(tool, args)
        return self.execute(c, self.check(c))

    # ================================================================== management
    def reload_policy(self, policy: Policy) -> None:
        """Swap the policy; decisions and receipts issued under the old version fail closed at execution."""
        old = self.policy.version
        self.policy = policy
        self.window = deque(self.window, maxlen=policy.budgets.loop_window)
        self.audit.append("policy", {"from": old, "to": policy.version})

    def rollback(self, checkpoint: str, paths: list[str] | None = None) -> list[str]:
        if self.checkpoints is None:
            raise SandboxViolation("this guard has no workspace checkpoints")
        restored = self.checkpoints.rollback(checkpoint, paths)
        self.audit.append("rollback", {"checkpoint": checkpoint, "paths": paths, "restored": restored})
        return restored

    def stats(self) -> dict:
        return {"calls_allowed": self.total, "denials": self.denials, "halted": self.halted,
                "per_tool": dict(self.per_tool), "audit_head": self.audit.head}
