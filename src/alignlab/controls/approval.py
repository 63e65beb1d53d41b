"""Approvers (scripted, terminal prompt, callback) and signed, single-use approval receipts.

A receipt binds the sha256 of the canonical call and the policy version, is MAC-ed with a
key only the guard holds, expires, and is consumed at execution; any mismatch fails closed.
This answers the request seen in the public issue trackers of guard layers (OpenAI Agents
SDK, NeMo Guardrails, Invariant) for approvals bound to
the exact arguments, and MCP's "a human should be able to deny tool calls".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, TextIO


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approver sees: the exact call, why it needs approval, and under which policy."""

    tool: str
    args: dict
    call_hash: str
    policy_version: str
    stage: str
    rule: str | None
    reason: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receipt:
    call_hash: str
    policy_version: str
    approver: str
    approved: bool
    issued_at: float
    expires_at: float
    nonce: str
    mac: str = ""

    def payload(self) -> bytes:
        d = asdict(self)
        d.pop("mac")
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


class ReceiptSigner:
    """Issues and checks receipts; each nonce is accepted once."""

    def __init__(self, key: bytes | None = None, ttl_s: float = 300.0, clock: Callable[[], float] = time.time):
        self._key = key or os.urandom(32)
        self.ttl_s = ttl_s
        self.clock = clock
        self._used: set[str] = set()

    def _mac(self, r: Receipt) -> str:
        return hmac.new(self._key, r.payload(), hashlib.sha256).hexdigest()

    def issue(self, req: ApprovalRequest, approver: str, approved: bool) -> Receipt:
        now = self.clock()
        r = Receipt(req.call_hash, req.policy_version, approver, approved, now, now + self.ttl_s, os.urandom(12).hex())
        return Receipt(**{**asdict(r), "mac": self._mac(r)})

    def redeem(self, r: Receipt, call_hash: str, policy_version: str) -> str | None:
        """None if the receipt authorises this exact call now (and consume it); else the reason it does not."""
        if not hmac.compare_digest(r.mac, self._mac(r)):
            return "receipt signature invalid (forged or altered)"
        if not r.approved:
            return "receipt records a refusal"
        if r.nonce in self._used:
            return "receipt already used"
        if r.call_hash != call_hash:
            return "call changed after approval (hash differs)"
        if r.policy_version != policy_version:
            return f"policy changed after approval ({r.policy_version} -> {policy_version})"
        if self.clock() > r.expires_at:
            return "receipt expired"
        self._used.add(r.nonce)
        return None


class Approver:
    """Base class: `decide(request) -> bool`. Anything that raises counts as a refusal (fail closed)."""

    name = "approver"

    def decide(self, request: ApprovalRequest) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


class DenyAll(Approver):
    """The approver used when none is configured: every request is refused."""

    name = "deny-all"

    def decide(self, request: ApprovalRequest) -> bool:
        return False


@dataclass
class ScriptedApprover(Approver):
    """A scripted policy for tests and benchmarks.

    `rule(request) -> bool` decides; or `answers` are consumed in order; `default` when
    neither applies. Every request is kept in `requests` so tests can see what was asked.
    """

    rule: Callable[[ApprovalRequest], bool] | None = None
    answers: list[bool] = field(default_factory=list)
    default: bool = False
    name: str = "scripted"
    requests: list[ApprovalRequest] = field(default_factory=list)

    def decide(self, request: ApprovalRequest) -> bool:
        self.requests.append(request)
        if self.rule is not None:
            return bool(self.rule(request))
        if self.answers:
            return bool(self.answers.pop(0))
        return self.default


class CallbackApprover(Approver):
    """Delegates to any callable (a web hook client, a chat bot, a second model)."""

    def __init__(self, fn: Callable[[ApprovalRequest], bool], name: str = "callback"):
        self.fn, self.name = fn, name

    def decide(self, request: ApprovalRequest) -> bool:
        return self.fn(request) is True  # only a real True approves


class TerminalApprover(Approver):
    """Asks a person at the terminal: shows the exact call; only 'y' or 'yes' approves (EOF refuses)."""

    name = "terminal"

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None, who: str | None = None):
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stderr
        self.name = f"terminal:{who or os.environ.get('USER', 'user')}"

    def decide(self, request: ApprovalRequest) -> bool:
        out = self.stdout
        out.write(f"\n[guard] approval needed ({request.stage}"
                  f"{', rule ' + request.rule if request.rule else ''}): {request.reason}\n")
        out.write(f"  tool: {request.tool}\n")
        for k, v in request.args.items():
            text = repr(v)
            out.write(f"  {k} = {text[:500]}{' ...' if len(text) > 500 else ''}\n")
        if request.labels:
            out.write(f"  taint: {', '.join(request.labels)}\n")
        out.write(f"  call sha256 {request.call_hash[:16]}, policy {request.policy_version}\n  approve? [y/N] ")
        out.flush()
        line = self.stdin.readline()
        return line.strip().lower() in ("y", "yes")


def safe_decide(approver: Approver, request: ApprovalRequest) -> tuple[bool, str]:
    """Ask, failing closed: an exception or a non-bool answer is a refusal."""
    try:
        answer = approver.decide(request)
    except Exception as exc:  # noqa: BLE001 - any approver failure must refuse
        return False, f"approver {approver.name} failed ({type(exc).__name__}: {exc}); refused"
    if answer is not True:
        return False, f"refused by {approver.name}"
    return True, f"approved by {approver.name}"
