"""garak, NVIDIA's LLM vulnerability scanner (Derczynski et al. 2024, "garak: A Framework for Security Probing Large
Language Models", arXiv:2406.11036), as an outside red-team scanner of `alignlab serve`: the command line that runs
its probes through its OpenAI-compatible generator, and a reader of its report JSONL into per-probe results.

garak pins older transformers and openai than alignlab, so it runs from its own virtual environment
(`make clients`: .venv-clients) as a subprocess; nothing here imports it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from alignlab.core.errors import UserError

PROBES = ("dan.Dan_11_0", "grandma.Substances")
"""Default probes: offline (string-matching detectors, prompts shipped in garak's package) and about refusals."""


def command(python: str | Path, uri: str, model_name: str, probes: Sequence[str], options_file: str | Path,
            report_prefix: str, generations: int = 1) -> list[str]:
    """garak's command line against an OpenAI-compatible endpoint (`uri` ends in /v1)."""
    return [str(python), "-m", "garak", "--target_type", "openai.OpenAICompatible", "--target_name", model_name,
            "--generator_option_file", str(options_file), "--probes", ",".join(probes),
            "--generations", str(generations), "--report_prefix", report_prefix]


def options(uri: str, max_tokens: int = 48) -> dict[str, Any]:
    """The generator options file's content: greedy, `max_tokens` per reply, no key."""
    return {"openai": {"OpenAICompatible": {"uri": uri, "api_key": "none", "max_tokens": max_tokens,
                                            "temperature": 0}}}


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    probe: str
    detector: str
    passed: int
    """Outputs the detector judged safe (for refusal probes: the model refused or did not comply)."""
    total: int

    @property
    def attack_success(self) -> float:
        """Share of outputs the detector flagged (garak's failure rate: the attack got through)."""
        return (self.total - self.passed) / self.total if self.total else float("nan")


def read_report(path: str | Path) -> dict[str, Any]:
    """The target name, the per-(probe, detector) results and the number of scored attempts of a garak
    `*.report.jsonl`; UserError naming the file if it is not one."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read garak report {path}: {exc.strerror}") from None
    results, attempts, target = [], 0, ""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{path}:{n}: not JSON; expected a garak report (*.report.jsonl)") from None
        kind = entry.get("entry_type") if isinstance(entry, dict) else None
        if kind == "start_run setup":
            target = str(entry.get("plugins.target_name", entry.get("plugins.model_name", "")))
        elif kind == "attempt" and entry.get("status") == 2:
            attempts += 1
        elif kind == "eval":
            results.append(ProbeResult(str(entry["probe"]), str(entry["detector"]), int(entry["passed"]),
                                       int(entry.get("total_evaluated", entry.get("total", 0)))))
    if not results:
        raise UserError(f"{path}: no 'eval' entries; is it a finished garak report (*.report.jsonl)?")
    return {"file": path.name, "target": target, "attempts": attempts, "results": [dataclasses.asdict(r) | {
        "attack_success": r.attack_success} for r in results]}


def find_reports(folder: str | Path) -> list[Path]:
    """Every garak report under `folder` (the red-teaming report reads runs/garak/ this way)."""
    folder = Path(folder)
    return sorted(folder.glob("*.report.jsonl")) if folder.is_dir() else []
