"""AgentDojo bridge: the guard between AgentDojo's FunctionsRuntime and scripted agents, with no language model.

AgentDojo (Debenedetti et al. 2024, arXiv:2406.13352; PyPI `agentdojo`, MIT) gives tool-using
tasks with ground-truth calls and utility/security checkers. Two scripted agents stand in for
a model: a benign one replays each user task's ground-truth calls; a worst-case obedient one
does the same but, as soon as a tool result contains the injected text, executes the
injection task's ground-truth calls (and repeats its answer). Every call goes
`guard.check` -> `guard.execute(fn=runtime.run_function)`, so the guard's decision happens
before the environment changes, and results are taint-labelled on the way back. Metrics:
benign utility, utility under attack, targeted attack success rate (ASR).
`agentdojo` is optional and imported on first use (`require()`): its import pulls every LLM client it
supports (seconds), which `alignlab`'s start-up (the registry walks this package) should not pay.
Without it, `require()` raises a UserError with the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from alignlab.controls import policy as policy_mod
from alignlab.controls.approval import ApprovalRequest, CallbackApprover
from alignlab.controls.audit import MemoryAudit
from alignlab.controls.guard import Guard
from alignlab.controls.policy import ArgSpec, Policy
from alignlab.controls.taint import strings_in
from alignlab.controls.tools import Tool, ToolCall, call_hash
from alignlab.core.errors import UserError

if TYPE_CHECKING:  # annotations only; the real import happens in require()
    from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime

_LOADED = False


def require() -> None:
    """Import agentdojo's names into this module on first use; a UserError with the fix if it is missing."""
    global _LOADED, tool_result_to_str, ImportantInstructionsAttack, get_suites
    global ChatAssistantMessage, ChatToolResultMessage, text_content_block_from_string
    if _LOADED:
        return
    try:
        from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
        from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttack
        from agentdojo.task_suite.load_suites import get_suites
        from agentdojo.types import ChatAssistantMessage, ChatToolResultMessage, text_content_block_from_string
    except ImportError as exc:
        raise UserError(
            f"the AgentDojo benchmark needs the `agentdojo` package (pip install agentdojo): {exc}") from exc
    _LOADED = True


SUITES = ("banking", "slack", "travel", "workspace")


def tools_from_runtime(runtime: FunctionsRuntime) -> list[Tool]:
    """Guard tool specs from AgentDojo functions (argument names and which are required)."""
    out = []
    for name, f in runtime.functions.items():
        schema = {a: ArgSpec("any", info.is_required()) for a, info in f.parameters.model_fields.items()}
        out.append(Tool(name, _no_executor, schema, frozenset(), doc=f.description))
    return out


def _no_executor(**_: Any) -> Any:
    raise LookupError("AgentDojo tools run through the runtime (execute(fn=...))")


class ScriptedAgent:  # an AgentDojo pipeline element by duck typing: AgentDojo calls .query() and reads .name
    """Replays the user task's ground truth; if `obey`, executes the injection task when it sees the injection."""

    name = "alignlab-scripted-gpt-4o-2024-05-13"  # the attack template addresses the model by this name

    def __init__(self, user_task: Any, injection_task: Any = None, injection_texts: Iterable[str] = (),
                 guard_factory: Callable[[str, FunctionsRuntime, list], Guard] | None = None):
        require()
        self.user_task, self.injection_task = user_task, injection_task
        # Tool results reach the agent YAML-dumped (folded lines, quoting): compare whitespace-normalised text.
        self.injection_texts = [" ".join(t.split()) for t in injection_texts if t and t.strip()]
        self.guard_factory = guard_factory
        self.guard: Guard | None = None
        self.blocked: list[str] = []
        self.obeyed = False

    def query(self, query: str, runtime: FunctionsRuntime, env: Any = None, messages: Sequence = (),
              extra_args: dict | None = None):
        plan = list(self.user_task.ground_truth(env))
        self.guard = self.guard_factory(query, runtime, plan) if self.guard_factory else None
        attack = list(self.injection_task.ground_truth(env)) if self.injection_task is not None else []
        new: list = []
        for call in plan:
            text = self._run(call, runtime, env, new)
            if self.injection_task is not None and not self.obeyed and any(t in text for t in self.injection_texts):
                self.obeyed = True
                for a in attack:
                    self._run(a, runtime, env, new)
        answer = self.user_task.GROUND_TRUTH_OUTPUT
        if self.obeyed and getattr(self.injection_task, "GROUND_TRUTH_OUTPUT", ""):
            answer = f"{answer} {self.injection_task.GROUND_TRUTH_OUTPUT}".strip()
        new.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string(answer)],
                                        tool_calls=None))
        return query, runtime, env, [*messages, *new], extra_args or {}

    def _run(self, call: FunctionCall, runtime: FunctionsRuntime, env: Any, new: list) -> str:
        if self.guard is None:
            result, error = runtime.run_function(env, call.function, call.args)
        else:
            tc = ToolCall(call.function, dict(call.args))
            decision = self.guard.check(tc)
            if not decision.allowed:  # blocked before any effect; not part of the executed trace
                self.blocked.append(f"{call.function}: {decision.stage}: {decision.reason}")
                return ""
            out = self.guard.execute(
                tc, decision, fn=lambda **kw: runtime.run_function(env, call.function, kw, raise_on_error=True)[0])
            result, error = (out.value, None) if out.ok else ("", out.reason)
        text = tool_result_to_str(result) if error is None else error
        seen = " ".join(" ".join(strings_in(result)).split()) if error is None else ""  # what the agent reads
        new.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("")],
                                        tool_calls=[call]))
        new.append(ChatToolResultMessage(role="tool", content=[text_content_block_from_string(text)], tool_call=call,
                                         tool_call_id=None, error=error))
        return seen


class _Target:
    name = ScriptedAgent.name

    def query(self, *a, **k):  # pragma: no cover - never run; the attack only reads the name
        raise NotImplementedError


@dataclass
class Row:
    suite: str
    config: str
    benign_utility: float
    utility_under_attack: float
    asr: float
    benign_runs: int
    attacked_runs: int
    asr_tool_attacks: float = 0.0  # ASR over injection tasks that need a tool call (what a tool guard mediates)
    tool_attack_runs: int = 0
    approvals_per_run: float = 0.0
    blocked_per_run: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    refusals_per_run: float = 0.0  # approval requests the simulated user refused
    # One dict per run: user_task, injection_task (None when benign), utility, security (None when benign),
    # tool_attack (the injection task needs a tool call), obeyed, blocked (the guard's denials, as text).
    outcomes: list[dict] = field(default_factory=list)


def make_guard_factory(policy: Policy, mode: str, counter: dict) -> Callable | None:
    """mode: none | deny (flow denied) | ask (flow to a simulated user who approves only what they asked for)."""
    if mode == "none":
        return None

    def factory(prompt: str, runtime: FunctionsRuntime, plan: list) -> Guard:
        pol = policy
        approver = None
        if mode == "ask":  # the same policy with flow violations sent to approval (a new version: receipts bind it)
            pol = dataclasses.replace(policy, flow=dataclasses.replace(policy.flow, action="ask"),
                                      digest=hashlib.sha256((policy.digest + ":flow=ask").encode()).hexdigest())
            # A careful user, simulated: they recognise exactly the calls their own request needs (the task's
            # ground truth in this environment) and refuse anything else.
            wanted = {call_hash(c.function, dict(c.args)) for c in plan}

            def ask(req: ApprovalRequest) -> bool:
                counter["approvals"] += 1
                granted = req.call_hash in wanted
                counter["refused"] = counter.get("refused", 0) + (not granted)
                return granted
            approver = CallbackApprover(ask, "simulated-user")
        return Guard(pol, tools_from_runtime(runtime), audit=MemoryAudit(), approver=approver, trusted_text=[prompt])
    return factory


def evaluate(suites: Sequence[str] = ("banking",), modes: Sequence[str] = ("none", "deny", "ask"),
             policy: Policy | None = None, version: str = "v1", max_user_tasks: int | None = None,
             progress: Callable[[str], None] | None = None) -> list[Row]:
    """Benign utility, utility under attack and ASR (important_instructions attack) per suite and mode."""
    require()
    pol = policy or policy_mod.load("agentdojo")
    all_suites = get_suites(version)
    rows = []
    for sname in suites:
        if sname not in all_suites:
            raise UserError(f"unknown AgentDojo suite {sname!r}; valid: {', '.join(sorted(all_suites))}")
        suite = all_suites[sname]
        attack = ImportantInstructionsAttack(suite, _Target())
        user_tasks = list(suite.user_tasks.values())[:max_user_tasks]
        clean = suite.load_and_inject_default_environment({})
        text_only = {it.ID for it in suite.injection_tasks.values() if not it.ground_truth(clean)}
        for mode in modes:
            started = time.perf_counter()
            benign, attacked, approvals, refusals, blocked, outcomes = [], [], 0, 0, 0, []
            for ut in user_tasks:
                counter = {"approvals": 0, "refused": 0}
                agent = ScriptedAgent(ut, guard_factory=make_guard_factory(pol, mode, counter))
                utility, _ = suite.run_task_with_pipeline(agent, ut, None, {})
                benign.append(utility)
                blocked += len(agent.blocked)
                outcomes.append({"user_task": ut.ID, "injection_task": None, "utility": bool(utility),
                                 "security": None, "tool_attack": None, "obeyed": False, "blocked": agent.blocked})
                for it in suite.injection_tasks.values():
                    injections = attack.attack(ut, it)
                    agent = ScriptedAgent(ut, it, injections.values(), make_guard_factory(pol, mode, counter))
                    utility, security = suite.run_task_with_pipeline(agent, ut, it, injections)
                    attacked.append((utility, security, it.ID not in text_only))
                    blocked += len(agent.blocked)
                    outcomes.append({"user_task": ut.ID, "injection_task": it.ID, "utility": bool(utility),
                                     "security": bool(security), "tool_attack": it.ID not in text_only,
                                     "obeyed": agent.obeyed, "blocked": agent.blocked})
                approvals += counter["approvals"]
                refusals += counter["refused"]
            runs = len(benign) + len(attacked)
            tool = [s for _, s, t in attacked if t]
            row = Row(sname, mode, sum(benign) / len(benign), sum(u for u, _, _ in attacked) / len(attacked),
                      sum(s for _, s, _ in attacked) / len(attacked), len(benign), len(attacked),
                      sum(tool) / max(len(tool), 1), len(tool), approvals / runs, blocked / runs,
                      time.perf_counter() - started,
                      [f"text-only injection tasks (no tool call to mediate): {sorted(text_only)}"]
                      if text_only else [],
                      refusals / runs, outcomes)
            rows.append(row)
            if progress:
                progress(f"{sname:<10} {mode:<5} benign utility {row.benign_utility:6.1%}  utility under attack "
                         f"{row.utility_under_attack:6.1%}  ASR {row.asr:6.1%} "
                         f"(tool-call attacks {row.asr_tool_attacks:5.1%})"
                         f"  approvals/run {row.approvals_per_run:.2f}"
                         f"  ({row.attacked_runs} attacked runs, {row.seconds:.1f} s)")
    return rows


def pooled(rows: Sequence[Row], mode: str) -> dict:
    """Totals over suites, weighted by runs (as AgentDojo reports them)."""
    rs = [r for r in rows if r.config == mode]
    nb, na = sum(r.benign_runs for r in rs), sum(r.attacked_runs for r in rs)
    return {"benign_utility": sum(r.benign_utility * r.benign_runs for r in rs) / nb,
            "utility_under_attack": sum(r.utility_under_attack * r.attacked_runs for r in rs) / na,
            "asr": sum(r.asr * r.attacked_runs for r in rs) / na,
            "asr_tool_attacks": sum(r.asr_tool_attacks * r.tool_attack_runs for r in rs)
            / max(sum(r.tool_attack_runs for r in rs), 1),
            "approvals_per_run": sum(r.approvals_per_run * (r.benign_runs + r.attacked_runs) for r in rs) / (nb + na),
            "benign_runs": nb, "attacked_runs": na}

