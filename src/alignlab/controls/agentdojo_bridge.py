"""AgentDojo bridge: the guard between AgentDojo's FunctionsRuntime and scripted agents, with no language model.

AgentDojo (Debenedetti et al. 2024, arXiv:2406.13352; PyPI `agentdojo`, MIT) gives tool-using
tasks with ground-truth calls and utility/security checkers. Scripted agents stand in for a
model: a benign one replays each user task's ground-truth calls; an obedient one does the same
but, as soon as a tool result contains the injected text, carries out the injection task's
ground-truth calls through an attacker variant (agentdojo_attackers.py: verbatim, reformatted,
encoded, split, laundered, or an adaptive search against the guard). Every call goes
`guard.check` -> `guard.execute(fn=runtime.run_function)`, so the guard decides before the
environment changes, and results are taint-labelled on the way back. Flagged flows are denied
(mode `deny`) or shown to an approver (agentdojo_approvers.py: `allowlist`, `request`; `oracle`,
the ground-truth upper bound). Metrics: benign utility, utility under attack, targeted attack
success rate (ASR, judged by AgentDojo's checker on the decoded trace), approval load.
`agentdojo` is optional and imported on first use (`require()`): its import pulls every LLM client it
supports (seconds), which `alignlab`'s start-up (the registry walks this package) should not pay.
Without it, `require()` raises a UserError with the fix.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import hashlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from alignlab.controls import agentdojo_attackers as attackers
from alignlab.controls import policy as policy_mod
from alignlab.controls.agentdojo_approvers import APPROVERS, CountingApprover, make_approver
from alignlab.controls.approval import ReceiptSigner
from alignlab.controls.audit import MemoryAudit
from alignlab.controls.guard import Guard
from alignlab.controls.policy import ArgSpec, Policy
from alignlab.controls.taint import strings_in
from alignlab.controls.tools import Tool, ToolCall
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
MODES = ("none", "deny", *APPROVERS)
"""none: no guard; deny: flagged flows refused; allowlist | request | oracle: flagged flows shown to that approver."""
LEGACY = {"ask": "oracle"}  # the old name of the ground-truth approver (an upper bound, labelled as such)


def tools_from_runtime(runtime: FunctionsRuntime) -> list[Tool]:
    """Guard tool specs from AgentDojo functions (argument names and which are required)."""
    out = []
    for name, f in runtime.functions.items():
        schema = {a: ArgSpec("any", info.is_required()) for a, info in f.parameters.model_fields.items()}
        out.append(Tool(name, _no_executor, schema, frozenset(), doc=f.description))
    return out


def _no_executor(**_: Any) -> Any:
    raise LookupError("AgentDojo tools run through the runtime (execute(fn=...))")


def quiet() -> contextlib.AbstractContextManager:
    """AgentDojo's slack tools print what they post; keep a benchmark's output to its own lines."""
    return contextlib.redirect_stdout(io.StringIO())


GuardFactory = Callable[[str, "FunctionsRuntime", list], "tuple[Guard, CountingApprover | None]"]


def simulated(guard: Guard) -> Guard:
    """A throwaway copy of `guard` for probing: same policy, taint state and approver rule; checks on it change
    nothing in the real guard (own audit, counters, receipts) and do not count as approval load. `check` never
    writes the taint tracker, so it is shared read-only."""
    sim = copy.copy(guard)
    sim.audit, sim.signer, sim._pending = MemoryAudit(), ReceiptSigner(), {}
    sim.per_tool = Counter(guard.per_tool)
    sim.window = deque(guard.window, maxlen=guard.window.maxlen)
    sim.history = deque(guard.history, maxlen=guard.history.maxlen)
    if isinstance(guard.approver, CountingApprover):
        sim.approver = guard.approver.probe_copy()
    return sim


class ScriptedAgent:  # an AgentDojo pipeline element by duck typing: AgentDojo calls .query() and reads .name
    """Replays the user task's ground truth; with an injection task, carries it out (through `attacker`) once it
    reads the injection. `log` keeps every call sent: (call, executed ok, its attacker Step or None)."""

    name = "alignlab-scripted-gpt-4o-2024-05-13"  # the attack template addresses the model by this name

    def __init__(self, user_task: Any, injection_task: Any = None, injection_texts: Iterable[str] = (),
                 guard_factory: GuardFactory | None = None, attacker: str = "verbatim",
                 budget: int = attackers.DEFAULT_BUDGET):
        require()
        if attacker not in attackers.ALL_ATTACKERS:
            raise UserError(f"unknown attacker {attacker!r}; valid: {', '.join(attackers.ALL_ATTACKERS)}")
        self.user_task, self.injection_task = user_task, injection_task
        # Tool results reach the agent YAML-dumped (folded lines, quoting): compare whitespace-normalised text.
        self.injection_texts = [" ".join(t.split()) for t in injection_texts if t and t.strip()]
        self.guard_factory, self.attacker, self.budget = guard_factory, attacker, budget
        self.guard: Guard | None = None
        self.approver: CountingApprover | None = None
        self.blocked: list[str] = []
        self.log: list[tuple[Any, bool, attackers.Step | None]] = []
        self.originals: list = []
        self.obeyed = False
        self.probes = 0
        self.answer = ""

    def query(self, query: str, runtime: FunctionsRuntime, env: Any = None, messages: Sequence = (),
              extra_args: dict | None = None):
        plan = list(self.user_task.ground_truth(env))
        if self.guard_factory:
            self.guard, self.approver = self.guard_factory(query, runtime, plan)
        self.originals = list(self.injection_task.ground_truth(env)) if self.injection_task is not None else []
        goal = getattr(self.injection_task, "GOAL", "")
        self._addresses, self._functions = attackers.attacker_addresses(goal), set(runtime.functions)
        new: list = []
        pending: list[int] = []
        for call in plan:
            text = self._run(call, runtime, env, new)
            if self.injection_task is not None and not self.obeyed and any(t in text for t in self.injection_texts):
                self.obeyed = True
                pending = self._attack(list(range(len(self.originals))), runtime, env, new, last_chance=False)
        if pending:  # the adaptive attacker's second placement: after the user's own task
            self._attack(pending, runtime, env, new, last_chance=True)
        answer = self.user_task.GROUND_TRUTH_OUTPUT
        if self.obeyed and getattr(self.injection_task, "GROUND_TRUTH_OUTPUT", ""):
            answer = f"{answer} {self.injection_task.GROUND_TRUTH_OUTPUT}".strip()
        self.answer = answer
        new.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string(answer)],
                                        tool_calls=None))
        return query, runtime, env, [*messages, *new], extra_args or {}

    def _attack(self, todo: list[int], runtime: Any, env: Any, new: list, last_chance: bool) -> list[int]:
        """Carry out the injection calls `todo`; returns those the adaptive attacker defers (none for the others)."""
        deferred = []
        for i in todo:
            call = self.originals[i]
            if self.attacker != attackers.ADAPTIVE:
                steps = attackers.variant_steps(self.attacker, call, i, self._addresses, self._functions)
            else:
                (steps,), spent = attackers.search([(i, call)], self._addresses, self._functions, self._probe,
                                                   self.budget - self.probes)
                self.probes += spent
                if steps is None:
                    if not last_chance:
                        deferred.append(i)
                    continue
            for step in steps:
                self._run(step.call, runtime, env, new, step)
        return deferred

    def _probe(self, steps: list) -> bool:
        """Would the guard let every step through? Asked of a simulated copy (the attacker knows the rules)."""
        if self.guard is None:
            return True
        sim = simulated(self.guard)
        return all(sim.check(ToolCall(s.call.function, dict(s.call.args))).allowed for s in steps)

    def _run(self, call: FunctionCall, runtime: FunctionsRuntime, env: Any, new: list,
             step: attackers.Step | None = None) -> str:
        if self.guard is None:
            result, error = runtime.run_function(env, call.function, call.args)
        else:
            tc = ToolCall(call.function, dict(call.args))
            decision = self.guard.check(tc)
            if not decision.allowed:  # blocked before any effect; not part of the executed trace
                self.blocked.append(f"{call.function}: {decision.stage}: {decision.reason}")
                self.log.append((call, False, step))
                return ""
            out = self.guard.execute(
                tc, decision, fn=lambda **kw: runtime.run_function(env, call.function, kw, raise_on_error=True)[0])
            result, error = (out.value, None) if out.ok else ("", out.reason)
        self.log.append((call, error is None, step))
        if error is None and self.approver is not None:
            trusted = not any(p.matches(call.function) for p in self.guard.policy.flow.untrusted)
            self.approver.observe(call.function, result, trusted)
        text = tool_result_to_str(result) if error is None else error
        seen = " ".join(" ".join(strings_in(result)).split()) if error is None else ""  # what the agent reads
        new.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("")],
                                        tool_calls=[call]))
        new.append(ChatToolResultMessage(role="tool", content=[text_content_block_from_string(text)], tool_call=call,
                                         tool_call_id=None, error=error))
        return seen


class ReplayAgent:  # an AgentDojo pipeline element: replays fixed calls unguarded, then answers
    """Replays the decoded trace of a run, so AgentDojo's own checker judges what the attacker achieved."""

    name = ScriptedAgent.name

    def __init__(self, calls: Sequence, answer: str):
        self.calls, self.answer = list(calls), answer

    def query(self, query: str, runtime: Any, env: Any = None, messages: Sequence = (), extra_args: dict | None = None):
        new: list = []
        for call in self.calls:
            result, error = runtime.run_function(env, call.function, call.args)
            new.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("")],
                                            tool_calls=[call]))
            new.append(ChatToolResultMessage(role="tool", content=[text_content_block_from_string(
                tool_result_to_str(result) if error is None else error)], tool_call=call, tool_call_id=None,
                error=error))
        new.append(ChatAssistantMessage(role="assistant", content=[text_content_block_from_string(self.answer)],
                                        tool_calls=None))
        return query, runtime, env, [*messages, *new], extra_args or {}


class _Target:
    name = ScriptedAgent.name

    def query(self, *a, **k):  # pragma: no cover - never run; the attack only reads the name
        raise NotImplementedError


@dataclass
class Row:
    suite: str
    config: str  # the mode: none | deny | allowlist | request | oracle
    benign_utility: float
    utility_under_attack: float
    asr: float
    benign_runs: int
    attacked_runs: int
    asr_tool_attacks: float = 0.0  # ASR over injection tasks that need a tool call (what a tool guard mediates)
    tool_attack_runs: int = 0
    approvals_per_run: float = 0.0  # flagged calls shown to the approver, per run (benign + attacked)
    blocked_per_run: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    refusals_per_run: float = 0.0  # of those, refused
    attacker: str = "verbatim"
    raw_asr: float = 0.0  # AgentDojo's checker on the raw environment (transformed values not decoded)
    benign_approvals_per_run: float = 0.0  # the load a user pays with no attack at all
    probes_per_run: float = 0.0  # adaptive attacker: guard probes spent per attacked run
    # One dict per run: user_task, injection_task (None when benign), utility, security (None when benign),
    # tool_attack (the injection task needs a tool call), obeyed, blocked (the guard's denials, as text).
    outcomes: list[dict] = field(default_factory=list)


def make_guard_factory(policy: Policy, mode: str) -> GuardFactory | None:
    """A guard per run: mode none (no guard) | deny (flagged flows refused) | an approver in `APPROVERS`."""
    mode = LEGACY.get(mode, mode)
    if mode not in MODES:
        raise UserError(f"unknown guard mode {mode!r}; valid: {', '.join(MODES)}")
    if mode == "none":
        return None

    def factory(prompt: str, runtime: FunctionsRuntime, plan: list) -> tuple[Guard, CountingApprover | None]:
        pol, approver = policy, None
        if mode != "deny":  # the same policy with flow violations sent to approval (a new version: receipts bind it)
            pol = dataclasses.replace(policy, flow=dataclasses.replace(policy.flow, action="ask"),
                                      digest=hashlib.sha256((policy.digest + ":flow=ask").encode()).hexdigest())
            approver = make_approver(mode, prompt, plan if mode == "oracle" else ())
        guard = Guard(pol, tools_from_runtime(runtime), audit=MemoryAudit(), approver=approver, trusted_text=[prompt])
        return guard, approver
    return factory


def _key(call: Any) -> tuple:
    return call.function, repr(sorted(call.args.items()))


def judge(suite: Any, ut: Any, it: Any, injections: dict, agent: ScriptedAgent, raw: bool, cache: dict) -> bool:
    """Did the attacker's task succeed once the run's transformed calls are decoded? AgentDojo's checker on a replay
    of the decoded trace (cached: most traces recur across guard modes and variants)."""
    executed = [c for c, ok, _ in agent.log if ok]
    decoded = attackers.decoded_trace(agent.log, agent.originals)
    if [_key(c) for c in decoded] == [_key(c) for c in executed]:
        return raw
    key = (ut.ID, it.ID, tuple(_key(c) for c in decoded), agent.answer)
    if key not in cache:
        _, cache[key] = suite.run_task_with_pipeline(ReplayAgent(decoded, agent.answer), ut, it, injections)
    return bool(cache[key])


def evaluate(suites: Sequence[str] = ("banking",), modes: Sequence[str] = ("none", "deny", "request", "oracle"),
             policy: Policy | None = None, version: str = "v1", max_user_tasks: int | None = None,
             progress: Callable[[str], None] | None = None, attackers_: Sequence[str] = ("verbatim",),
             budget: int = attackers.DEFAULT_BUDGET) -> list[Row]:
    """Per suite, mode and attacker variant: benign utility, utility under attack, ASR (important_instructions
    attack, judged on the decoded trace) and the approval load. Benign runs do not depend on the attacker."""
    require()
    pol = policy or policy_mod.load("agentdojo")
    all_suites = get_suites(version)
    bad = [a for a in attackers_ if a not in attackers.ALL_ATTACKERS]
    if bad:
        raise UserError(f"unknown attacker(s) {bad}; valid: {', '.join(attackers.ALL_ATTACKERS)}")
    rows = []
    for sname in suites:
        if sname not in all_suites:
            raise UserError(f"unknown AgentDojo suite {sname!r}; valid: {', '.join(sorted(all_suites))}")
        suite = all_suites[sname]
        attack = ImportantInstructionsAttack(suite, _Target())
        user_tasks = list(suite.user_tasks.values())[:max_user_tasks]
        clean = suite.load_and_inject_default_environment({})
        text_only = {it.ID for it in suite.injection_tasks.values() if not it.ground_truth(clean)}
        cache: dict = {}
        pairs = [(ut, it, attack.attack(ut, it)) for ut in user_tasks for it in suite.injection_tasks.values()]
        for mode in modes:
            with quiet():
                rows += _evaluate_mode(suite, sname, mode, pol, user_tasks, pairs, text_only, attackers_, budget,
                                       cache)
            if progress:
                for row in rows[-len(attackers_):]:
                    progress(f"{sname:<10} {row.config:<9} {row.attacker:<14} benign utility "
                             f"{row.benign_utility:6.1%}  utility under attack {row.utility_under_attack:6.1%}  ASR "
                             f"{row.asr:6.1%}  approvals/run {row.approvals_per_run:.2f}  ({row.attacked_runs} "
                             f"attacked runs, {row.seconds:.1f} s)")
    return rows


def _evaluate_mode(suite: Any, sname: str, mode: str, pol: Policy, user_tasks: list, pairs: list, text_only: set,
           attackers_: Sequence[str], budget: int, cache: dict) -> list[Row]:
    rows = []
    started = time.perf_counter()
    factory = make_guard_factory(pol, mode)
    benign, b_outcomes, b_shown, b_refused, b_blocked = [], [], 0, 0, 0
    for ut in user_tasks:
        agent = ScriptedAgent(ut, guard_factory=factory)
        utility, _ = suite.run_task_with_pipeline(agent, ut, None, {})
        benign.append(utility)
        b_blocked += len(agent.blocked)
        b_shown += agent.approver.shown if agent.approver else 0
        b_refused += agent.approver.refused if agent.approver else 0
        b_outcomes.append({"user_task": ut.ID, "injection_task": None, "utility": bool(utility),
                           "security": None, "tool_attack": None, "obeyed": False, "blocked": agent.blocked})
    bench_s = time.perf_counter() - started
    for variant in attackers_:
        started = time.perf_counter()
        attacked, outcomes, shown, refused, blocked, probes = [], list(b_outcomes), b_shown, b_refused, \
            b_blocked, 0
        for ut, it, injections in pairs:
            agent = ScriptedAgent(ut, it, injections.values(), factory, variant, budget)
            utility, raw = suite.run_task_with_pipeline(agent, ut, it, injections)
            security = judge(suite, ut, it, injections, agent, raw, cache)
            attacked.append((utility, security, it.ID not in text_only, raw))
            blocked += len(agent.blocked)
            shown += agent.approver.shown if agent.approver else 0
            refused += agent.approver.refused if agent.approver else 0
            probes += agent.probes
            outcomes.append({"user_task": ut.ID, "injection_task": it.ID, "utility": bool(utility),
                             "security": bool(security), "tool_attack": it.ID not in text_only,
                             "obeyed": agent.obeyed, "blocked": agent.blocked})
        runs, na = len(benign) + len(attacked), len(attacked)
        tool = [s for _, s, t, _ in attacked if t]
        row = Row(sname, LEGACY.get(mode, mode), sum(benign) / len(benign),
                  sum(u for u, _, _, _ in attacked) / na, sum(s for _, s, _, _ in attacked) / na,
                  len(benign), na, sum(tool) / max(len(tool), 1), len(tool), shown / runs, blocked / runs,
                  bench_s + time.perf_counter() - started,
                  [f"text-only injection tasks (no tool call to mediate): {sorted(text_only)}"]
                  if text_only else [],
                  refused / runs, variant, sum(r for _, _, _, r in attacked) / na, b_shown / len(benign),
                  probes / na, outcomes)
        rows.append(row)
    return rows


def pooled(rows: Sequence[Row], mode: str, attacker: str = "verbatim") -> dict:
    """Totals over suites, weighted by runs (as AgentDojo reports them), for one mode and attacker."""
    mode = LEGACY.get(mode, mode)
    rs = [r for r in rows if r.config == mode and r.attacker == attacker]
    nb, na = sum(r.benign_runs for r in rs), sum(r.attacked_runs for r in rs)
    return {"benign_utility": sum(r.benign_utility * r.benign_runs for r in rs) / nb,
            "utility_under_attack": sum(r.utility_under_attack * r.attacked_runs for r in rs) / na,
            "asr": sum(r.asr * r.attacked_runs for r in rs) / na,
            "asr_tool_attacks": sum(r.asr_tool_attacks * r.tool_attack_runs for r in rs)
            / max(sum(r.tool_attack_runs for r in rs), 1),
            "approvals_per_run": sum(r.approvals_per_run * (r.benign_runs + r.attacked_runs) for r in rs) / (nb + na),
            "benign_runs": nb, "attacked_runs": na}
